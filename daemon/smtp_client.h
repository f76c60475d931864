// One outbound SMTP connection: greeting, EHLO (HELO fallback), STARTTLS
// per delivery.tls, AUTH PLAIN for routes that need it, then transactions
// (MAIL, RCPTs, DATA pipelined when the server offers PIPELINING) with one
// reply kept per recipient. Replies are matched to commands through a queue
// of expectations, which is what makes pipelining and the plain
// one-at-a-time dialogue the same code.
//
// Lifetime: owned by the delivery manager's registry. When the connection
// ends, a pending operation is failed first, then hooks.closed runs (the
// last thing), after which the owner may delete the client.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "net/net_connection.h"
#include "net/net_timer.h"
#include "smtp/smtp_client_proto.h"
#include "smtp/smtp_reply.h"

namespace ferry {

struct ClientSettings {
  std::string helo;
  config::OutTls tls = config::OutTls::may;
  std::shared_ptr<net::TlsContext> tls_ctx;
  std::string sni;  // the MX host name
  // delivery.tls: may and this host's STARTTLS is known to be broken: do not
  // offer to start TLS at all (the plaintext fallback).
  bool skip_starttls = false;
  std::string auth_user, auth_password;
  uint64_t connect_timeout_ms = 30'000;
  uint64_t command_timeout_ms = 300'000;  // RFC 5321 §4.5.3.2: 5 minutes
  uint64_t data_timeout_ms = 600'000;     // final "." reply: 10 minutes
  std::atomic<uint64_t>* tls_counter = nullptr;  // completed handshakes, for /metrics
};

struct OutboundTxn {
  std::string sender;
  std::vector<std::string> rcpts;
  std::vector<std::string> rcpt_params;  // " NOTIFY=... ORCPT=..." per recipient (DSN servers)
  std::string mail_params;               // " RET=... ENVID=..." (DSN servers)
  const std::string* body = nullptr;     // content, CRLF lines, not dot-stuffed
  bool needs_smtputf8 = false;
  bool eight_bit = false;
};

struct TxnResult {
  bool completed = false;            // false: the connection failed; no recipient is final
  std::string error;                 // why, when not completed
  std::vector<smtp::Reply> replies;  // one per recipient when completed
};

class SmtpClient final : public net::Connection::Handler {
 public:
  struct Hooks {
    std::function<void(SmtpClient*)> closed;
  };
  // Ready callback: error empty on success; permanent when the server
  // refused us with 5xx at greeting/EHLO/AUTH.
  using ReadyCb = std::function<void(SmtpClient* client, std::string error, bool permanent)>;
  using TxnCb = std::function<void(TxnResult)>;

  SmtpClient(uint64_t id, std::string host_name, ClientSettings s, Hooks hooks);
  ~SmtpClient() override;

  void open(uv_loop_t* loop, const std::string& ip, uint16_t port, ReadyCb cb);
  void send(OutboundTxn tx, TxnCb cb);
  void quit();

  bool usable() const { return ready_ && !closing_ && !busy_; }
  uint64_t id() const { return id_; }
  uint64_t messages() const { return messages_; }
  const std::string& host_name() const { return host_; }
  const std::string& ip() const { return ip_; }
  std::string tls_version() const { return conn_ ? conn_->tls_version() : ""; }
  // The connection ended between the server's 220 to STARTTLS and its reply
  // to the EHLO inside TLS: the handshake (or the TLS session right after
  // it) failed. What delivery.tls: may falls back to plaintext on.
  bool tls_failed() const { return tls_failed_; }

  void on_read(std::string_view data) override;
  void on_tls_ready() override;
  void on_closed(const std::string& reason) override;

 private:
  using Handler = std::function<void(const smtp::Reply&)>;
  void command(const std::string& line, Handler h, uint64_t timeout_ms = 0);
  void expect(Handler h, uint64_t timeout_ms = 0);
  void after_ehlo();
  void after_tls_refused();
  void ready();
  void fail_open(const std::string& error, bool permanent);
  void finish_txn();
  void fail(const std::string& why);
  TxnResult result_after_close(const std::string& why) const;

  uint64_t id_;
  std::string host_;
  std::string ip_;
  ClientSettings s_;
  Hooks hooks_;
  std::unique_ptr<net::Connection> conn_;
  std::unique_ptr<net::Timer> timer_;
  std::string in_;
  smtp::ReplyReader reader_;
  std::deque<std::pair<Handler, uint64_t>> expect_;
  smtp::Capabilities caps_;
  bool tried_helo_ = false;
  bool in_tls_setup_ = false;  // STARTTLS accepted, EHLO inside TLS not yet answered
  bool tls_failed_ = false;
  bool ready_ = false;
  bool busy_ = false;
  bool closing_ = false;
  uint64_t messages_ = 0;
  ReadyCb ready_cb_;
  // The transaction in flight.
  OutboundTxn tx_;
  TxnCb txn_cb_;
  smtp::Reply mail_reply_;
  std::vector<smtp::Reply> rcpt_replies_;
  size_t next_cmd_ = 0;
  std::vector<std::string> pending_cmds_;  // non-pipelined: sent one by one
};

}  // namespace ferry
