// When an inbound SMTP session must have made progress, as pure arithmetic
// on monotonic milliseconds: the session asks next() and arms one timer.
// Deadlines are never pushed back by partial input (a client trickling one
// byte at a time gains nothing); only a complete command line, or message
// content arriving at min_data_rate or faster, buys more time.
#pragma once

#include <cstdint>
#include <string_view>

namespace ferry::smtp {

struct DeadlineLimits {
  int64_t command_ms = 0;      // one whole command line, from when we start waiting for it
  int64_t data_ms = 0;         // message content: the most time a stall may use up
  uint64_t min_data_rate = 0;  // bytes/s that earn content time back; 0: any read refills it all
  int64_t handshake_ms = 0;    // connect → first accepted MAIL or successful AUTH
  int64_t session_ms = 0;      // connect → end of session; 0: no cap
};

enum class Deadline { command, data, handshake, session };
std::string_view to_string(Deadline d);

class SessionDeadlines {
 public:
  SessionDeadlines(const DeadlineLimits& limits, int64_t now_ms);

  // The session now waits for a new command line (after the greeting, a
  // reply, a TLS handshake, the end of message content).
  void expect_command(int64_t now_ms);
  // DATA or a BDAT chunk starts: content time begins at data_ms.
  void expect_content(int64_t now_ms);
  // n bytes of content arrived: time is used up by the clock and earned
  // back at n / min_data_rate seconds, never beyond now + data_ms
  // (Postfix's smtpd_per_record_deadline with smtpd_min_data_rate).
  void content_received(int64_t now_ms, uint64_t n);
  // The greeting → EHLO → STARTTLS → AUTH phase is over (MAIL accepted or
  // AUTH succeeded); its budget no longer applies.
  void end_handshake() { handshake_at_ = kNever; }

  struct Next {
    int64_t at;  // absolute, same clock as the now_ms arguments
    Deadline which;
  };
  Next next() const;  // the earliest deadline still running
  // Milliseconds from now until next(), 0 when it has passed.
  uint64_t remaining(int64_t now_ms) const;

  static constexpr int64_t kNever = INT64_MAX;

 private:
  DeadlineLimits limits_;
  int64_t phase_at_;      // command or content deadline
  bool in_content_ = false;
  int64_t handshake_at_;
  int64_t session_at_;
};

}  // namespace ferry::smtp
