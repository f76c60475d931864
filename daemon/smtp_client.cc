// See smtp_client.h.
#include "smtp_client.h"

#include <fmt/format.h>

#include "util/base64.h"
#include "util/log.h"

namespace ferry {

using smtp::Reply;

SmtpClient::SmtpClient(uint64_t id, std::string host_name, ClientSettings s, Hooks hooks)
    : id_(id), host_(std::move(host_name)), s_(std::move(s)), hooks_(std::move(hooks)) {}

SmtpClient::~SmtpClient() = default;

void SmtpClient::open(uv_loop_t* loop, const std::string& ip, uint16_t port, ReadyCb cb) {
  ip_ = ip;
  ready_cb_ = std::move(cb);
  busy_ = true;
  timer_ = std::make_unique<net::Timer>(loop, [this] { fail("timeout waiting for " + host_ + " [" + ip_ + "]"); });
  net::Connection::connect(loop, ip, port, s_.connect_timeout_ms,
                           [this](std::unique_ptr<net::Connection> c, std::string error) {
                             if (!c) {
                               // Never connected: no on_closed will come, so report and close here.
                               closing_ = true;
                               auto cb = std::move(ready_cb_);
                               cb(this, fmt::format("connect to {}[{}]: {}", host_, ip_, error), false);
                               hooks_.closed(this);  // last statement
                               return;
                             }
                             conn_ = std::move(c);
                             conn_->set_handler(this);
                             conn_->start_reading();
                             expect([this](const Reply& r) {
                               if (r.code != 220) return fail_open("greeting: " + r.summary(), r.permanent());
                               command("EHLO " + s_.helo, [this](const Reply& e) {
                                 if (e.code == 250) {
                                   caps_ = smtp::parse_ehlo(e);
                                   return after_ehlo();
                                 }
                                 if (tried_helo_ || e.code == 421) return fail_open("EHLO: " + e.summary(), false);
                                 tried_helo_ = true;
                                 command("HELO " + s_.helo, [this](const Reply& h) {
                                   if (h.code != 250) return fail_open("HELO: " + h.summary(), h.permanent());
                                   caps_ = smtp::Capabilities{};
                                   after_ehlo();
                                 });
                               });
                             });
                           });
}

void SmtpClient::after_ehlo() {
  bool want_tls = s_.tls != config::OutTls::none && s_.tls_ctx && !s_.skip_starttls;
  if (!conn_->tls_active() && want_tls && caps_.starttls) {
    command("STARTTLS", [this](const Reply& r) {
      if (r.code != 220) {
        if (s_.tls == config::OutTls::may) return after_tls_refused();
        return fail_open("STARTTLS: " + r.summary(), false);
      }
      in_.clear();  // nothing the server sent before TLS may count after it
      in_tls_setup_ = true;
      // No reply is expected during the handshake, so nothing else bounds
      // it: a server that stalls there must time out like any command.
      timer_->start(s_.command_timeout_ms);
      conn_->start_tls_client(s_.tls_ctx, s_.sni, s_.tls == config::OutTls::verify);
    });
    return;
  }
  if (!conn_->tls_active() && (s_.tls == config::OutTls::encrypt || s_.tls == config::OutTls::verify))
    return fail_open(fmt::format("{}[{}] does not offer STARTTLS, and delivery.tls requires TLS", host_, ip_), false);
  if (!s_.auth_user.empty()) {
    // Credentials never travel in clear, whatever the server offers, unless
    // the admin turned TLS off for delivery altogether.
    if (!conn_->tls_active() && s_.tls != config::OutTls::none)
      return fail_open(fmt::format("{}[{}] offers no STARTTLS; not sending credentials in clear", host_, ip_), false);
    std::string creds = std::string(1, '\0') + s_.auth_user + std::string(1, '\0') + s_.auth_password;
    command("AUTH PLAIN " + base64_encode(creds), [this](const Reply& r) {
      if (r.code != 235) return fail_open("AUTH: " + r.summary(), false);
      ready();
    });
    return;
  }
  ready();
}

void SmtpClient::after_tls_refused() {
  // delivery.tls: may and the server refused STARTTLS after offering it:
  // carry on in plaintext, as opportunistic TLS allows.
  caps_.starttls = false;
  after_ehlo();
}

void SmtpClient::on_tls_ready() {
  if (s_.tls_counter) (*s_.tls_counter)++;
  command("EHLO " + s_.helo, [this](const Reply& e) {
    in_tls_setup_ = false;
    if (e.code != 250) return fail_open("EHLO after STARTTLS: " + e.summary(), false);
    caps_ = smtp::parse_ehlo(e);
    after_ehlo();
  });
}

void SmtpClient::ready() {
  ready_ = true;
  busy_ = false;
  timer_->stop();
  auto cb = std::move(ready_cb_);
  if (cb) cb(this, "", false);
}

void SmtpClient::fail_open(const std::string& error, bool permanent) {
  auto cb = std::move(ready_cb_);
  busy_ = false;
  quit();
  if (cb) cb(this, fmt::format("{}[{}]: {}", host_, ip_, error), permanent);
}

void SmtpClient::fail(const std::string& why) {
  if (closing_) return;
  closing_ = true;
  if (conn_) conn_->close(why);  // on_closed reports to whoever waits
}

void SmtpClient::command(const std::string& line, Handler h, uint64_t timeout_ms) {
  conn_->write(line + "\r\n");
  expect(std::move(h), timeout_ms);
}

void SmtpClient::expect(Handler h, uint64_t timeout_ms) {
  expect_.emplace_back(std::move(h), timeout_ms ? timeout_ms : s_.command_timeout_ms);
  if (expect_.size() == 1) timer_->start(expect_.front().second);
}

void SmtpClient::on_read(std::string_view data) {
  in_.append(data);
  while (!in_.empty() && !closing_) {
    auto r = reader_.next(in_);
    if (r.status == smtp::ReplyReader::Result::Status::need_more) return;
    if (r.status == smtp::ReplyReader::Result::Status::error) return fail("protocol error: " + r.error);
    in_.erase(0, r.consumed);
    if (expect_.empty()) return fail("unexpected reply: " + r.reply.summary());
    auto h = std::move(expect_.front().first);
    expect_.pop_front();
    if (expect_.empty())
      timer_->stop();
    else
      timer_->start(expect_.front().second);
    h(r.reply);
  }
}

void SmtpClient::send(OutboundTxn tx, TxnCb cb) {
  FERRY_ASSERT(usable());
  busy_ = true;
  tx_ = std::move(tx);
  txn_cb_ = std::move(cb);
  rcpt_replies_.assign(tx_.rcpts.size(), Reply{});
  mail_reply_ = Reply{};

  auto refuse_all = [&](const Reply& r) {
    busy_ = false;
    TxnResult res;
    res.completed = true;
    res.replies.assign(tx_.rcpts.size(), r);
    auto done = std::move(txn_cb_);
    done(std::move(res));
  };
  uint64_t size = tx_.body->size();
  if (caps_.size && *caps_.size > 0 && size > *caps_.size)
    return refuse_all(smtp::reply(552, "5.3.4", fmt::format("message size {} exceeds the limit of {}[{}] ({})",
                                                            size, host_, ip_, *caps_.size)));
  if (tx_.needs_smtputf8 && !caps_.smtputf8)
    return refuse_all(smtp::reply(553, "5.6.7", fmt::format("{}[{}] does not support SMTPUTF8", host_, ip_)));
  if (tx_.eight_bit && caps_.esmtp && !caps_.eightbitmime)
    return refuse_all(smtp::reply(554, "5.6.3", fmt::format("{}[{}] does not accept 8-bit data", host_, ip_)));

  std::vector<std::string> cmds;
  if (messages_ > 0) cmds.push_back("RSET");
  std::string mail = "MAIL FROM:<" + tx_.sender + ">";
  if (caps_.size) mail += fmt::format(" SIZE={}", size);
  if (tx_.eight_bit && caps_.eightbitmime) mail += " BODY=8BITMIME";
  if (tx_.needs_smtputf8) mail += " SMTPUTF8";
  if (caps_.dsn) mail += tx_.mail_params;
  cmds.push_back(mail);
  for (size_t i = 0; i < tx_.rcpts.size(); ++i)
    cmds.push_back("RCPT TO:<" + tx_.rcpts[i] + ">" + (caps_.dsn ? tx_.rcpt_params[i] : ""));
  cmds.push_back("DATA");
  pending_cmds_ = std::move(cmds);
  next_cmd_ = 0;

  bool has_rset = messages_ > 0;
  size_t first_rcpt = has_rset ? 2 : 1;
  size_t data_index = pending_cmds_.size() - 1;
  // One handler per command, by index; each sends the next command when
  // the server does not pipeline.
  auto send_next = [this] {
    if (next_cmd_ < pending_cmds_.size()) conn_->write(pending_cmds_[next_cmd_++] + "\r\n");
  };
  for (size_t i = 0; i < pending_cmds_.size(); ++i) {
    Handler h;
    if (has_rset && i == 0) {
      h = [this, send_next](const Reply& r) {
        if (r.code != 250) return fail("RSET: " + r.summary());
        if (!caps_.pipelining) send_next();
      };
    } else if (i == first_rcpt - 1) {
      h = [this, send_next](const Reply& r) {
        mail_reply_ = r;
        if (!caps_.pipelining) {
          if (!r.positive()) {
            // Without pipelining nothing else was sent: end here.
            expect_.clear();
            timer_->stop();
            return finish_txn();
          }
          send_next();
        }
      };
    } else if (i < data_index) {
      size_t k = i - first_rcpt;
      h = [this, k, send_next](const Reply& r) {
        rcpt_replies_[k] = r;
        if (!caps_.pipelining) send_next();
      };
    } else {
      h = [this](const Reply& r) {
        bool any = false;
        for (const auto& rr : rcpt_replies_) any |= rr.positive();
        if (r.code != 354) {
          if (any || mail_reply_.positive())
            for (auto& rr : rcpt_replies_)
              if (rr.positive()) rr = r;  // DATA refused: accepted recipients get its reply
          return finish_txn();
        }
        if (!any || !mail_reply_.positive()) {
          // A server that says 354 with no valid recipient: end the data at once.
          command(".", [this](const Reply&) { finish_txn(); });
          return;
        }
        conn_->write(smtp::dot_stuff(*tx_.body));
        expect([this](const Reply& fin) {
          for (auto& rr : rcpt_replies_)
            if (rr.positive()) rr = fin;
          finish_txn();
        }, s_.data_timeout_ms);
      };
    }
    expect(std::move(h));
  }
  if (caps_.pipelining) {
    std::string all;
    for (const auto& c : pending_cmds_) all += c + "\r\n";
    next_cmd_ = pending_cmds_.size();
    conn_->write(all);
  } else {
    send_next();
  }
}

void SmtpClient::finish_txn() {
  busy_ = false;
  ++messages_;
  TxnResult res;
  res.completed = true;
  res.replies.resize(rcpt_replies_.size());
  for (size_t i = 0; i < rcpt_replies_.size(); ++i) {
    if (!mail_reply_.positive())
      res.replies[i] = mail_reply_;
    else if (rcpt_replies_[i].code == 0)
      res.replies[i] = smtp::reply(451, "4.4.2", "no reply to RCPT");
    else
      res.replies[i] = rcpt_replies_[i];
  }
  auto done = std::move(txn_cb_);
  if (done) done(std::move(res));
}

void SmtpClient::quit() {
  if (closing_ || !conn_) return;
  closing_ = true;
  ready_ = false;
  timer_->stop();
  conn_->write("QUIT\r\n");
  conn_->close_after_flush("quit");
}

void SmtpClient::on_closed(const std::string& reason) {
  closing_ = true;
  ready_ = false;
  if (timer_) timer_->stop();
  if (in_tls_setup_) tls_failed_ = true;
  std::string why = fmt::format("{}[{}]: {}", host_, ip_, reason);
  if (auto cb = std::move(ready_cb_)) cb(this, why, false);
  if (auto cb = std::move(txn_cb_)) cb(result_after_close(why));
  hooks_.closed(this);  // last statement: the owner deletes this client
}

TxnResult SmtpClient::result_after_close(const std::string& why) const {
  // A server that answers 421 to MAIL or a (pipelined) RCPT and hangs up
  // has told us why (RFC 5321 §3.8): that reply is the outcome of every
  // recipient it did not refuse for good, not "connection lost". Nothing
  // was delivered, since no DATA was answered.
  const Reply* closing = mail_reply_.code == 421 ? &mail_reply_ : nullptr;
  for (const auto& r : rcpt_replies_)
    if (!closing && r.code == 421) closing = &r;
  TxnResult res;
  if (!closing) {
    res.completed = false;
    res.error = "connection lost: " + why;
    return res;
  }
  res.completed = true;
  res.replies.resize(rcpt_replies_.size());
  for (size_t i = 0; i < rcpt_replies_.size(); ++i)
    res.replies[i] = mail_reply_.positive() && rcpt_replies_[i].permanent() ? rcpt_replies_[i] : *closing;
  return res;
}

}  // namespace ferry
