// The command table: one handler per verb, each checking the session state
// it needs and answering with RFC 5321 / 3463 codes. Order of checks in
// MAIL and RCPT matters: sequence first, then authentication, then syntax,
// then policy, so that a client learns the most useful thing first.
#include <openssl/crypto.h>

#include <fmt/format.h>

#include "server.h"
#include "smtp_session.h"
#include "util/log.h"
#include "util/strings.h"

namespace ferry {

using smtp::reply;

namespace {

// {verb, needs no argument} rows; handlers are members, dispatched below.
bool takes_no_argument(smtp::Verb v) {
  switch (v) {
    case smtp::Verb::data:
    case smtp::Verb::rset:
    case smtp::Verb::quit:
    case smtp::Verb::starttls:
      return true;
    default:
      return false;
  }
}

}  // namespace

bool SmtpSession::auth_offered() const {
  return listener_.auth != config::AuthMode::none && rt_->users &&
         (conn_->tls_active() || listener_.allow_plaintext_auth);
}

bool SmtpSession::may_relay() const {
  if (!auth_user_.empty()) return true;
  if (listener_.auth == config::AuthMode::required) return false;
  for (const auto& net : cfg_.relay.trusted_networks)
    if (net.contains(client_ip_)) return true;
  return false;
}

void SmtpSession::reset_transaction() { txn_ = Transaction{}; }

void SmtpSession::dispatch(std::string_view line) {
  auto cmd = smtp::parse_command(line);
  if (takes_no_argument(cmd.verb) && !cmd.arg.empty()) {
    protocol_error(reply(501, "5.5.4", fmt::format("Syntax: {} takes no arguments", smtp::to_string(cmd.verb))));
    return;
  }
  if (shutting_down_ && cmd.verb != smtp::Verb::quit && !txn_.active) {
    close_with(reply(421, "4.3.2", cfg_.server.hostname + " Service shutting down"), "shutdown");
    return;
  }
  switch (cmd.verb) {
    case smtp::Verb::helo: return cmd_helo(cmd, false);
    case smtp::Verb::ehlo: return cmd_helo(cmd, true);
    case smtp::Verb::starttls: return cmd_starttls(cmd);
    case smtp::Verb::auth: return cmd_auth(cmd);
    case smtp::Verb::mail: return cmd_mail(cmd);
    case smtp::Verb::rcpt: return cmd_rcpt(cmd);
    case smtp::Verb::data: return cmd_data(cmd);
    case smtp::Verb::bdat: return cmd_bdat(cmd);
    case smtp::Verb::rset:
      reset_transaction();
      return send(reply(250, "2.0.0", "Ok"));
    case smtp::Verb::noop:
      return send(reply(250, "2.0.0", "Ok"));
    case smtp::Verb::quit:
      return close_with(reply(221, "2.0.0", "Bye"), "quit");
    case smtp::Verb::vrfy:
      return send(reply(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery"));
    case smtp::Verb::expn:
      return protocol_error(reply(502, "5.5.1", "EXPN not available"));
    case smtp::Verb::help:
      return send(reply(214, "2.0.0", "ferry: see RFC 5321"));
    case smtp::Verb::unknown:
      // HTTP verbs here mean a browser or proxy was pointed at us: hang up.
      if (istarts_with(line, "GET ") || istarts_with(line, "POST ") || istarts_with(line, "CONNECT "))
        return close_with(reply(421, "4.7.0", "This is an SMTP server"), "HTTP request");
      return protocol_error(reply(500, "5.5.1", "Command unrecognized"));
  }
}

void SmtpSession::cmd_helo(const smtp::Command& c, bool extended) {
  auto name = smtp::parse_helo(c.arg);
  if (!name) return protocol_error(name.error());
  helo_ = *name;
  esmtp_ = extended;
  reset_transaction();
  if (!extended) return send(reply(250, "", cfg_.server.hostname));
  std::string text = cfg_.server.hostname;
  text += "\nPIPELINING";
  text += fmt::format("\nSIZE {}", cfg_.limits.max_message_size);
  text += "\n8BITMIME\nSMTPUTF8\nENHANCEDSTATUSCODES\nCHUNKING\nDSN";
  if (listener_.tls == config::TlsMode::starttls && !conn_->tls_active() && rt_->tls)
    text += "\nSTARTTLS";
  if (auth_offered() && auth_user_.empty()) text += "\nAUTH PLAIN LOGIN";
  send(smtp::Reply{250, "", text});
}

void SmtpSession::cmd_starttls(const smtp::Command&) {
  if (listener_.tls != config::TlsMode::starttls || !rt_->tls)
    return protocol_error(reply(502, "5.5.1", "STARTTLS not offered here"));
  if (conn_->tls_active()) return protocol_error(reply(503, "5.5.1", "TLS already active"));
  send(reply(220, "2.0.0", "Ready to start TLS"));
  flush();
  // Anything the client pipelined after STARTTLS arrived in plaintext and
  // must not be executed inside the TLS session (CVE-2011-0411).
  if (in_pos_ < input_.size()) {
    log::warn("smtp.starttls_injection", {{"session", id_}, {"client", client_ip_},
                                          {"bytes", input_.size() - in_pos_}});
    consume(input_.size() - in_pos_);
  }
  // RFC 3207 §4.2: forget everything learnt before TLS.
  helo_.clear();
  esmtp_ = false;
  reset_transaction();
  state_ = State::tls_handshake;
  conn_->start_tls(rt_->tls);
}

void SmtpSession::cmd_auth(const smtp::Command& c) {
  if (listener_.auth == config::AuthMode::none || !rt_->users)
    return protocol_error(reply(502, "5.5.1", "AUTH not available here"));
  if (!conn_->tls_active() && !listener_.allow_plaintext_auth)
    return protocol_error(reply(538, "5.7.11", "Encryption required: issue STARTTLS first"));
  if (helo_.empty()) return protocol_error(reply(503, "5.5.1", "Send EHLO first"));
  if (!auth_user_.empty()) return protocol_error(reply(503, "5.5.1", "Already authenticated"));
  if (txn_.active) return protocol_error(reply(503, "5.5.1", "AUTH not allowed during a mail transaction"));
  if (server_.auth_locked_ms(client_ip_) > 0)
    return close_with(reply(421, "4.7.0", cfg_.server.hostname +
                                              " Too many authentication failures from your address; try again later"),
                      "auth lockout");
  auto args = smtp::parse_auth(c.arg);
  if (!args) return protocol_error(args.error());
  auto [exchange, step] = smtp::SaslExchange::start(args->mechanism, args->initial);
  sasl_ = std::move(exchange);
  auth_step(step);
}

void SmtpSession::auth_line(std::string_view line) {
  FERRY_ASSERT(sasl_.has_value());
  auth_step(sasl_->next(line));
}

void SmtpSession::auth_step(const smtp::SaslExchange::Step& step) {
  switch (step.kind) {
    case smtp::SaslExchange::Step::challenge:
      state_ = State::auth;
      send(step.reply);
      return;
    case smtp::SaslExchange::Step::failed:
      state_ = State::command;
      sasl_.reset();
      return protocol_error(step.reply);
    case smtp::SaslExchange::Step::done: {
      state_ = State::command;
      sasl_.reset();
      if (!step.creds.authzid.empty() && step.creds.authzid != step.creds.user) {
        on_auth_result(false, step.creds.user);
        return;
      }
      waiting_auth_ = true;
      timer_.stop();  // the hash takes its time; the client is not idle
      server_.verify_password(id_, rt_->users, step.creds.user, step.creds.password);
      return;
    }
  }
}

void SmtpSession::on_auth_result(bool ok, const std::string& user) {
  if (ok) {
    waiting_auth_ = false;
    auth_user_ = user;
    server_.auth_succeeded(client_ip_);
    log::info("smtp.auth", {{"session", id_}, {"client", client_ip_}, {"user", user}});
    send(reply(235, "2.7.0", "Authentication successful"));
    deadlines_.end_handshake();
    expect_command();
    process();
    return;
  }
  server_.metrics().auth_failures++;
  server_.auth_failed(client_ip_);
  ++auth_failures_;
  log::warn("smtp.auth_failed", {{"session", id_}, {"client", client_ip_}, {"user", printable(user, 64)},
                                 {"failures", auth_failures_}});
  // The delay is a timer, not a sleep: the loop keeps serving others while
  // this client waits for its answer.
  auth_delay_.start(uint64_t(cfg_.auth.failure_delay.count()));
}

void SmtpSession::auth_delay_done() {
  waiting_auth_ = false;
  if (auth_failures_ >= cfg_.auth.max_failures) {
    close_with(reply(421, "4.7.0", cfg_.server.hostname + " Too many authentication failures"),
               "auth failures");
    return;
  }
  send(reply(535, "5.7.8", "Authentication credentials invalid"));
  expect_command();
  process();
}

void SmtpSession::cmd_mail(const smtp::Command& c) {
  if (helo_.empty()) return protocol_error(reply(503, "5.5.1", "Send EHLO/HELO first"));
  if (txn_.active) return protocol_error(reply(503, "5.5.1", "Nested MAIL command"));
  if (listener_.auth == config::AuthMode::required && auth_user_.empty()) {
    if (!auth_offered())
      return protocol_error(reply(530, "5.7.0", "Must issue a STARTTLS command first"));
    return protocol_error(reply(530, "5.7.0", "Authentication required"));
  }
  auto m = smtp::parse_mail_from(c.arg);
  if (!m) return protocol_error(m.error());
  if (m->params.size && *m->params.size > cfg_.limits.max_message_size)
    return protocol_error(reply(552, "5.3.4", "Message size exceeds fixed maximum message size"));
  if (m->sender && m->sender->utf8 && !m->params.smtputf8)
    return protocol_error(reply(553, "5.6.7", "Sender address needs SMTPUTF8"));
  if (int64_t wait = server_.limit_messages(auth_user_, client_ip_); wait > 0) {
    log::info("smtp.rate_limited", {{"session", id_}, {"client", client_ip_}, {"user", auth_user_}, {"what", "messages"}});
    return send(reply(450, "4.7.1", fmt::format("Message rate limit exceeded for {}; try again in {}s",
                                                auth_user_.empty() ? "your address" : "user " + auth_user_,
                                                (wait + 999) / 1000)));
  }
  txn_.active = true;
  txn_.sender = m->sender;
  txn_.params = m->params;
  deadlines_.end_handshake();
  arm_timer();
  send(reply(250, "2.1.0", "Ok"));
}

void SmtpSession::cmd_rcpt(const smtp::Command& c) {
  if (!txn_.active) return protocol_error(reply(503, "5.5.1", "Need MAIL command first"));
  auto r = smtp::parse_rcpt_to(c.arg);
  if (!r) return protocol_error(r.error());
  if (r->rcpt.utf8 && !txn_.params.smtputf8)
    return protocol_error(reply(553, "5.6.7", "Recipient address needs SMTPUTF8"));
  if (!may_relay()) {
    log::info("smtp.relay_denied", {{"session", id_}, {"client", client_ip_}, {"rcpt", r->rcpt.str()}});
    server_.metrics().rejected++;
    return protocol_error(reply(554, "5.7.1", "Relay access denied"));
  }
  if (txn_.rcpts.size() >= cfg_.limits.max_recipients)
    return send(reply(452, "4.5.3", "Too many recipients"));
  if (server_.suppressed(r->rcpt.str())) {
    log::info("smtp.suppressed", {{"session", id_}, {"client", client_ip_}, {"rcpt", r->rcpt.str()}});
    server_.metrics().rejected++;
    smtp::Reply refused = reply(550, "5.7.1",
                                "<" + r->rcpt.str() + ">: recipient is on the suppression list after a hard bounce; "
                                "remove it with ferryctl suppress remove");
    log_rejected({r->rcpt.str()}, refused, 0);
    return protocol_error(refused);
  }
  if (int64_t wait = server_.limit_recipients(auth_user_, client_ip_); wait > 0) {
    log::info("smtp.rate_limited", {{"session", id_}, {"client", client_ip_}, {"user", auth_user_}, {"what", "recipients"}});
    return send(reply(450, "4.7.1", fmt::format("Recipient rate limit exceeded; try again in {}s", (wait + 999) / 1000)));
  }
  smtp::EnvelopeRcpt rc;
  rc.address = r->rcpt.str();
  rc.orcpt = r->params.orcpt;
  rc.notify = r->params.notify;
  txn_.rcpts.push_back(std::move(rc));
  send(reply(250, "2.1.5", "Ok"));
}

void SmtpSession::cmd_data(const smtp::Command&) {
  // RFC 2920 §3.1: DATA ends a pipelined group, so a client must wait for
  // our 354 before sending content. Bytes already buffered after the DATA
  // line were sent blind: a bulk-mail bot, or a smuggling probe counting on
  // a lax parser. Postfix ≥ 3.9 (smtpd_forbid_unauth_pipelining) answers
  // this and hangs up; so do we. Authenticated clients are exempt, as in
  // Postfix: they are our own users' (sometimes sloppy) programs, and their
  // content is parsed with the same strict CRLF.CRLF either way, so refusing
  // them would lose mail and buy no safety.
  if (auth_user_.empty() && in_pos_ < input_.size()) {
    log::warn("smtp.pipelining_violation", {{"session", id_}, {"client", client_ip_}, {"command", "DATA"},
                                            {"bytes", input_.size() - in_pos_}});
    server_.metrics().rejected++;
    smtp::Reply refused = reply(554, "5.5.0", "Error: SMTP protocol synchronization");
    std::vector<std::string> rcpts;
    for (const auto& rc : txn_.rcpts) rcpts.push_back(rc.address);
    log_rejected(rcpts, refused, 0);
    reset_transaction();
    consume(input_.size() - in_pos_);  // never read as commands
    return close_with(refused, "pipelining violation");
  }
  if (!txn_.active) return protocol_error(reply(503, "5.5.1", "Need MAIL command first"));
  if (txn_.rcpts.empty()) return protocol_error(reply(554, "5.5.1", "No valid recipients"));
  if (txn_.reader) return protocol_error(reply(503, "5.5.1", "DATA after BDAT"));
  txn_.reader.emplace(smtp::DataReader::Mode::dot_terminated, cfg_.limits.max_message_size);
  txn_.body.reserve(std::min<uint64_t>(txn_.params.size.value_or(16 * 1024), cfg_.limits.max_message_size) + 1024);
  state_ = State::data;
  deadlines_.expect_content(now_ms());
  arm_timer();
  send(reply(354, "", "End data with <CR><LF>.<CR><LF>"));
}

void SmtpSession::cmd_bdat(const smtp::Command& c) {
  auto b = smtp::parse_bdat(c.arg);
  if (!b) {
    // Without a valid size we cannot know where the chunk ends, so whatever
    // follows cannot be trusted as commands: close.
    return close_with(reply(501, "5.5.4", "Bad BDAT syntax; closing"), "bad BDAT");
  }
  // The chunk's bytes are always consumed, even when the command is refused,
  // so that they are never read as commands.
  txn_.bdat_remaining = b->size;
  txn_.bdat_last = b->last;
  txn_.bdat_failed = !txn_.active || txn_.rcpts.empty();
  if (!txn_.bdat_failed && !txn_.reader)
    txn_.reader.emplace(smtp::DataReader::Mode::chunked, cfg_.limits.max_message_size);
  state_ = State::bdat;
  deadlines_.expect_content(now_ms());
  arm_timer();
  if (b->size == 0) process_bdat_input();
}

}  // namespace ferry
