// Message content: DATA and BDAT bytes through the pure DataReader, then the
// spool commit. The 250 is sent only from on_commit, after the writer
// thread's transaction has returned: mail accepted is mail owed.
#include <fmt/format.h>

#include "delivery_log.h"
#include "msg/msg_headers.h"
#include "msg/msg_received.h"
#include "server.h"
#include "smtp_session.h"
#include "util/log.h"

namespace ferry {

using smtp::reply;

void SmtpSession::process_data_input() {
  auto r = txn_.reader->feed(pending_input(), txn_.body);
  consume(r.consumed);
  if (r.done) finish_message();
}

void SmtpSession::process_bdat_input() {
  std::string_view in = pending_input();
  size_t take = size_t(std::min<uint64_t>(txn_.bdat_remaining, in.size()));
  if (!txn_.bdat_failed) txn_.reader->feed(in.substr(0, take), txn_.body);
  consume(take);
  txn_.bdat_remaining -= take;
  if (txn_.bdat_remaining > 0) return;
  state_ = State::command;
  expect_command();
  if (txn_.bdat_failed) {
    txn_.bdat_failed = false;
    return protocol_error(reply(503, "5.5.1", "BDAT without a valid MAIL and RCPT"));
  }
  if (!txn_.bdat_last) {
    send(reply(250, "2.0.0", fmt::format("{} octets received", txn_.reader->size())));
    return;
  }
  txn_.reader->finish_chunked();
  finish_message();
}

std::string SmtpSession::received_header(const std::string& id) const {
  msg::ReceivedInfo info;
  info.helo = helo_;
  info.client_ip = client_ip_;
  info.by_host = cfg_.server.hostname;
  info.id = id;
  info.esmtp = esmtp_;
  info.authenticated = !auth_user_.empty();
  info.smtputf8 = txn_.params.smtputf8;
  info.tls_version = conn_->tls_version();
  info.tls_cipher = conn_->tls_cipher();
  info.tls_bits = conn_->tls_bits();
  info.unix_ms = server_.clock().now_ms();
  return msg::build_received(info);
}

void SmtpSession::finish_message() {
  state_ = State::command;
  expect_command();
  const auto& reader = *txn_.reader;
  auto reject = [&](const smtp::Reply& r, const char* why) {
    log::info("smtp.rejected", {{"session", id_}, {"client", client_ip_}, {"reason", why},
                                {"reply", r.summary()}});
    server_.metrics().rejected++;
    std::vector<std::string> rcpts;
    for (const auto& rc : txn_.rcpts) rcpts.push_back(rc.address);
    log_rejected(rcpts, r, reader.size());
    reset_transaction();
    protocol_error(r);
  };
  switch (reader.error()) {
    case smtp::DataError::bare_lf:
      return reject(reply(550, "5.6.0", "Message contains a bare LF; lines must end with CRLF"), "bare LF");
    case smtp::DataError::bare_cr:
      return reject(reply(550, "5.6.0", "Message contains a bare CR; lines must end with CRLF"), "bare CR");
    case smtp::DataError::line_too_long:
      return reject(reply(550, "5.6.0", "Message has a line longer than 998 characters"), "line too long");
    case smtp::DataError::nul:
      return reject(reply(550, "5.6.0", "Message contains a NUL byte"), "NUL");
    case smtp::DataError::none:
      break;
  }
  if (reader.oversize())
    return reject(reply(552, "5.3.4", "Message size exceeds fixed maximum message size"), "too big");

  auto req = std::make_unique<spool::WriteRequest>();
  smtp::Envelope env;
  env.id = server_.new_message_id();
  env.sender = txn_.sender ? txn_.sender->str() : "";
  env.rcpts = std::move(txn_.rcpts);
  env.created_ms = server_.clock().now_ms();
  env.next_attempt_ms = env.created_ms;
  env.body = txn_.params.body;
  env.smtputf8 = txn_.params.smtputf8;
  env.ret = txn_.params.ret;
  env.envid = txn_.params.envid;
  env.client_ip = client_ip_;
  env.helo = helo_;
  env.auth_user = auth_user_;
  env.listener = listener_.name;
  std::string body = received_header(env.id);
  body.reserve(body.size() + txn_.body.size());
  body += txn_.body;
  env.size = body.size();
  // One stored "received" event per recipient, so that a search by address
  // finds it; stderr gets one line per message from on_commit.
  std::vector<spool::LogEvent> events;
  std::string subject = cfg_.delivery_log.subject ? msg::scan_headers(body).subject : "";
  for (const auto& r : env.rcpts) {
    EventInfo ev;
    ev.event = "received";
    ev.ts_ms = env.created_ms;
    ev.env = &env;
    ev.rcpt = r.address;
    ev.subject = subject;
    ev.tls = conn_->tls_version();
    ev.stderr_line = false;
    events.push_back(log_event(ev));
  }
  req->op = spool::InsertMessage{std::move(env), std::move(body), std::move(events)};
  Server* server = &server_;
  uint64_t sid = id_;
  req->done = [server, sid, tls = conn_->tls_version()](spool::WriteRequest& r) {
    // A committed message is owed whoever still waits for the reply: it
    // enters delivery here, not in the session, which may be gone.
    if (r.result.ok()) server->accepted(std::get<spool::InsertMessage>(r.op).envelope, tls);
    if (SmtpSession* s = server->find_session(sid)) {
      s->on_commit(r);
      return;
    }
    // The client left before the commit returned (it may send the message
    // again if it retries: RFC 1047).
    if (r.result.ok())
      log::info("smtp.queued_after_disconnect",
                {{"id", std::get<spool::InsertMessage>(r.op).envelope.id}});
  };
  txn_.body.clear();
  txn_.body.shrink_to_fit();
  waiting_commit_ = true;
  timer_.stop();
  server_.submit(std::move(req));
}

void SmtpSession::log_rejected(const std::vector<std::string>& rcpts, const smtp::Reply& r, uint64_t size) {
  if (rcpts.empty()) return;
  smtp::Envelope env;  // no id: nothing was queued
  env.sender = txn_.sender ? txn_.sender->str() : "";
  env.client_ip = client_ip_;
  env.auth_user = auth_user_;
  env.size = size;
  std::vector<spool::LogEvent> events;
  for (const auto& a : rcpts) {
    EventInfo ev;
    ev.event = "rejected";
    ev.ts_ms = server_.clock().now_ms();
    ev.env = &env;
    ev.rcpt = a;
    ev.tls = conn_->tls_version();
    ev.reply = &r;
    ev.stderr_line = false;  // the caller logged the refusal
    events.push_back(log_event(ev));
  }
  auto req = std::make_unique<spool::WriteRequest>();
  req->op = spool::AppendLog{std::move(events)};
  server_.submit(std::move(req));
}

void SmtpSession::on_commit(spool::WriteRequest& req) {
  waiting_commit_ = false;
  const auto& ins = std::get<spool::InsertMessage>(req.op);
  const auto& env = ins.envelope;
  if (req.result.ok()) {  // Server::accepted has logged and queued it
    ++messages_;
    send(reply(250, "2.0.0", "Ok: queued as " + env.id));
  } else if (req.result.error().code == Errc::full) {
    log::warn("smtp.spool_full", {{"session", id_}, {"client", client_ip_}, {"size", env.size}});
    server_.metrics().rejected++;
    send(reply(452, "4.3.1", "Insufficient system storage"));
  } else {
    log::error("smtp.spool_error", {{"session", id_}, {"error", req.result.error().message}});
    server_.metrics().rejected++;
    send(reply(451, "4.3.0", "Local error in processing"));
  }
  reset_transaction();
  if (shutting_down_) {
    close_with(reply(421, "4.3.2", cfg_.server.hostname + " Service shutting down"), "shutdown");
    return;
  }
  expect_command();  // the next command's deadline counts from this reply
  process();
}

}  // namespace ferry
