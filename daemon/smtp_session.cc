// Session I/O: the input loop, reply batching, timeouts, TLS start and the
// end of a session. See smtp_session.h for the split.
#include "smtp_session.h"

#include <uv.h>

#include <fmt/format.h>

#include "net/net_proxy.h"
#include "server.h"
#include "util/log.h"

namespace ferry {
namespace {
// Input held while a commit or AUTH check is pending, or while a pipelining
// client is ahead of us; past this, reading pauses (backpressure).
constexpr size_t kMaxBufferedInput = 256 * 1024;

smtp::DeadlineLimits deadline_limits(const config::Config& c) {
  smtp::DeadlineLimits l;
  l.command_ms = c.timeouts.command.count();
  l.data_ms = c.timeouts.data.count();
  l.min_data_rate = c.timeouts.min_data_rate;
  l.handshake_ms = c.timeouts.handshake.count();
  l.session_ms = c.timeouts.session.count();
  return l;
}
}  // namespace

std::string_view SmtpSession::to_string(State s) {
  switch (s) {
    case State::proxy_header: return "proxy_header";
    case State::tls_handshake: return "tls_handshake";
    case State::command: return "command";
    case State::auth: return "auth";
    case State::data: return "data";
    case State::bdat: return "bdat";
    case State::closing: return "closing";
  }
  return "?";
}

SmtpSession::SmtpSession(Server& server, uint64_t id, std::unique_ptr<net::Connection> conn,
                         config::ListenerConfig listener, std::shared_ptr<const Runtime> rt)
    : server_(server),
      id_(id),
      conn_(std::move(conn)),
      listener_(std::move(listener)),
      rt_(std::move(rt)),
      cfg_(rt_->cfg),
      // Counted from the accept: the PROXY header, an implicit TLS
      // handshake and EHLO all run against these.
      deadlines_(deadline_limits(cfg_), int64_t(uv_now(server.loop()))),
      timer_(server.loop(), [this] { on_deadline(); }),
      auth_delay_(server.loop(), [this] { auth_delay_done(); }) {
  client_ip_ = conn_->peer_ip();
  conn_->set_handler(this);
}

SmtpSession::~SmtpSession() = default;

void SmtpSession::start() {
  log::debug("smtp.connect", {{"session", id_}, {"client", client_ip_}, {"listener", listener_.name}});
  conn_->start_reading();
  arm_timer();
  if (listener_.proxy_protocol) {
    state_ = State::proxy_header;
    return;
  }
  if (listener_.tls == config::TlsMode::implicit) {
    state_ = State::tls_handshake;
    conn_->start_tls(rt_->tls);
    return;
  }
  greet();
}

void SmtpSession::greet() {
  greeted_ = true;
  state_ = State::command;
  expect_command();
  send(smtp::Reply{220, "", cfg_.server.hostname + " ESMTP ferry"});
  flush();
}

void SmtpSession::refuse(const smtp::Reply& r) {
  state_ = State::closing;
  if (listener_.tls == config::TlsMode::implicit) {
    conn_->close("refused: " + r.summary());  // a plaintext 421 would be noise to a TLS client
    return;
  }
  conn_->write(r.wire());
  conn_->close_after_flush("refused: " + r.summary());
}

bool SmtpSession::idle() const {
  return state_ == State::command && !txn_.active && !waiting();
}

void SmtpSession::shutdown() {
  shutting_down_ = true;
  if (idle() || state_ == State::proxy_header || state_ == State::tls_handshake) {
    close_with(smtp::reply(421, "4.3.2", cfg_.server.hostname + " Service shutting down"),
               "shutdown");
  }
}

void SmtpSession::force_close() {
  state_ = State::closing;
  timer_.stop();
  conn_->close("shutdown timeout");
}

int64_t SmtpSession::now_ms() const { return int64_t(uv_now(server_.loop())); }

// One timer, re-armed for the earliest deadline; partial input never moves
// a deadline (that is what let a trickling client hold its slot forever),
// so the timer is re-armed only when a deadline changes.
void SmtpSession::arm_timer() { timer_.start(deadlines_.remaining(now_ms())); }

void SmtpSession::expect_command() {
  deadlines_.expect_command(now_ms());
  arm_timer();
}

void SmtpSession::on_deadline() {
  auto which = deadlines_.next().which;
  log::info("smtp.timeout", {{"session", id_}, {"client", client_ip_}, {"state", to_string(state_)},
                             {"deadline", smtp::to_string(which)}});
  std::string text = cfg_.server.hostname + " Error: timeout exceeded";
  if (which == smtp::Deadline::handshake) text += " before MAIL or AUTH";
  if (which == smtp::Deadline::session) text += "; session too long";
  close_with(smtp::reply(421, "4.4.2", text), std::string("timeout (") + std::string(smtp::to_string(which)) + ")");
}

void SmtpSession::on_read(std::string_view data) {
  if (state_ == State::closing) return;
  if (in_pos_ > 0 && in_pos_ == input_.size()) {
    input_.clear();
    in_pos_ = 0;
  }
  input_.append(data);
  if (state_ == State::data || state_ == State::bdat) {
    // Content earns time back at timeouts.min_data_rate; command bytes never do.
    deadlines_.content_received(now_ms(), data.size());
    arm_timer();
  }
  process();
}

void SmtpSession::consume(size_t n) {
  in_pos_ += n;
  if (in_pos_ >= input_.size()) {
    input_.clear();
    in_pos_ = 0;
  } else if (in_pos_ > 64 * 1024 && in_pos_ > input_.size() / 2) {
    input_.erase(0, in_pos_);
    in_pos_ = 0;
  }
}

void SmtpSession::process() {
  while (state_ != State::closing && !waiting() && in_pos_ < input_.size()) {
    size_t before = input_.size() - in_pos_;
    State state_before = state_;
    switch (state_) {
      case State::proxy_header: {
        auto h = net::parse_proxy_v2(pending_input());
        if (h.status == net::ProxyHeader::Status::need_more) break;
        if (h.status == net::ProxyHeader::Status::error) {
          log::warn("smtp.proxy_error", {{"session", id_}, {"client", client_ip_}, {"error", h.error}});
          state_ = State::closing;
          conn_->close("bad PROXY header");
          return;
        }
        consume(h.consumed);
        if (!h.local) client_ip_ = h.client_ip;
        if (listener_.tls == config::TlsMode::implicit) {
          // Bytes after the header are the TLS ClientHello: hand them over.
          state_ = State::tls_handshake;
          conn_->start_tls(rt_->tls);
          std::string rest(pending_input());
          consume(rest.size());
          if (!rest.empty()) conn_->reinject(rest);
          return;
        }
        greet();
        break;
      }
      case State::tls_handshake:
        return;  // bytes go to OpenSSL, not here
      case State::command:
      case State::auth:
        process_command_input();
        break;
      case State::data:
        process_data_input();
        break;
      case State::bdat:
        process_bdat_input();
        break;
      case State::closing:
        return;
    }
    if (input_.size() - in_pos_ == before && state_ == state_before) break;  // needs more input
  }
  flush();
  if (input_.size() - in_pos_ > kMaxBufferedInput)
    conn_->pause_reading();
  else if (state_ != State::closing)
    conn_->start_reading();
}

void SmtpSession::process_command_input() {
  size_t max = state_ == State::auth ? 12288 : 512;
  auto scan = lines_.next(pending_input(), max);
  // Copied before consume(), which may release the buffer the view points into.
  std::string line(scan.line);
  consume(scan.consumed);
  if (scan.status == smtp::LineScan::Status::need_more) return;
  // A whole line (good or bad) came in: the next one gets its own
  // timeouts.command, counted from now.
  expect_command();
  switch (scan.status) {
    case smtp::LineScan::Status::need_more:
      return;
    case smtp::LineScan::Status::error:
      switch (scan.error) {
        case smtp::LineError::bare_lf:
          protocol_error(smtp::reply(500, "5.5.2", "Bare LF in command; lines must end with CRLF"));
          break;
        case smtp::LineError::bare_cr:
          protocol_error(smtp::reply(500, "5.5.2", "Bare CR in command; lines must end with CRLF"));
          break;
        case smtp::LineError::too_long:
          protocol_error(smtp::reply(500, state_ == State::auth ? "5.5.6" : "5.5.2", "Line too long"));
          break;
        case smtp::LineError::nul:
          protocol_error(smtp::reply(500, "5.5.2", "NUL byte in command"));
          break;
        case smtp::LineError::none:
          break;
      }
      if (state_ == State::auth) {
        sasl_.reset();
        state_ = State::command;
      }
      return;
    case smtp::LineScan::Status::line:
      if (state_ == State::auth)
        auth_line(line);
      else
        dispatch(line);
      return;
  }
}

void SmtpSession::send(const smtp::Reply& r) { output_ += r.wire(); }

void SmtpSession::flush() {
  if (output_.empty()) return;
  conn_->write(output_);
  output_.clear();
}

void SmtpSession::protocol_error(const smtp::Reply& r) {
  send(r);
  if (++errors_ >= cfg_.limits.max_errors) {
    log::info("smtp.too_many_errors", {{"session", id_}, {"client", client_ip_}, {"last", r.summary()}});
    close_with(smtp::reply(421, "4.7.0", cfg_.server.hostname + " Error: too many errors"),
               "too many errors");
  }
}

void SmtpSession::close_with(const smtp::Reply& r, const std::string& reason) {
  if (state_ == State::closing) return;
  send(r);
  flush();
  state_ = State::closing;
  timer_.stop();
  conn_->close_after_flush(reason);
}

void SmtpSession::on_tls_ready() {
  server_.metrics().tls_in++;
  log::debug("smtp.tls", {{"session", id_}, {"client", client_ip_}, {"version", conn_->tls_version()},
                          {"cipher", conn_->tls_cipher()}});
  if (!greeted_) {
    greet();  // implicit TLS: the greeting comes after the handshake
  } else {
    state_ = State::command;  // STARTTLS: the client speaks first (EHLO)
    expect_command();
  }
}

void SmtpSession::on_closed(const std::string& reason) {
  log::debug("smtp.disconnect", {{"session", id_}, {"client", client_ip_}, {"reason", reason},
                                 {"messages", messages_}});
  if (txn_.active && !waiting_commit_)
    log::info("smtp.lost_transaction", {{"session", id_}, {"client", client_ip_}, {"reason", reason}});
  state_ = State::closing;
  // Last statement: the server deletes this session.
  server_.session_closed(id_, conn_->peer_ip());
}

}  // namespace ferry
