// See smtp_deadline.h. All sums saturate so that a huge configured duration
// or a long message cannot overflow into a deadline in the past.
#include "smtp/smtp_deadline.h"

#include <algorithm>

namespace ferry::smtp {
namespace {
int64_t add(int64_t at, int64_t ms) {
  if (at == SessionDeadlines::kNever || ms >= SessionDeadlines::kNever - at) return SessionDeadlines::kNever;
  return at + ms;
}
}  // namespace

std::string_view to_string(Deadline d) {
  switch (d) {
    case Deadline::command: return "command";
    case Deadline::data: return "data";
    case Deadline::handshake: return "handshake";
    case Deadline::session: return "session";
  }
  return "?";
}

SessionDeadlines::SessionDeadlines(const DeadlineLimits& limits, int64_t now_ms)
    : limits_(limits),
      phase_at_(add(now_ms, limits.command_ms)),
      handshake_at_(add(now_ms, limits.handshake_ms)),
      session_at_(limits.session_ms > 0 ? add(now_ms, limits.session_ms) : kNever) {}

void SessionDeadlines::expect_command(int64_t now_ms) {
  in_content_ = false;
  phase_at_ = add(now_ms, limits_.command_ms);
}

void SessionDeadlines::expect_content(int64_t now_ms) {
  in_content_ = true;
  phase_at_ = add(now_ms, limits_.data_ms);
}

void SessionDeadlines::content_received(int64_t now_ms, uint64_t n) {
  if (!in_content_) return;
  int64_t cap = add(now_ms, limits_.data_ms);
  if (limits_.min_data_rate == 0) {
    phase_at_ = cap;
    return;
  }
  // n is one read (at most a few hundred KiB); the clamp only keeps the
  // multiplication far from overflow.
  uint64_t earned = std::min<uint64_t>(n, uint64_t(1) << 40) * 1000 / limits_.min_data_rate;
  phase_at_ = std::min(add(phase_at_, int64_t(earned)), cap);
}

SessionDeadlines::Next SessionDeadlines::next() const {
  Next n{phase_at_, in_content_ ? Deadline::data : Deadline::command};
  if (handshake_at_ < n.at) n = {handshake_at_, Deadline::handshake};
  if (session_at_ < n.at) n = {session_at_, Deadline::session};
  return n;
}

uint64_t SessionDeadlines::remaining(int64_t now_ms) const {
  int64_t at = next().at;
  return at <= now_ms ? 0 : uint64_t(at - now_ms);
}

}  // namespace ferry::smtp
