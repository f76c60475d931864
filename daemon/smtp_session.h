// One inbound SMTP conversation on the loop. The protocol pieces (framing,
// parsing, dot-unstuffing, SASL) are pure code in lib/smtp; this class holds
// the state between them and does the I/O:
//   smtp_session.cc           input loop, replies, timeouts, TLS, lifecycle
//   smtp_session_commands.cc  the command table: one handler per verb
//   smtp_session_message.cc   DATA/BDAT content, spool commit, the 250
// Replies to pipelined commands are collected and sent in one write.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "net/net_connection.h"
#include "net/net_timer.h"
#include "runtime.h"
#include "smtp/smtp_command.h"
#include "smtp/smtp_data.h"
#include "smtp/smtp_deadline.h"
#include "smtp/smtp_envelope.h"
#include "smtp/smtp_line.h"
#include "smtp/smtp_sasl.h"
#include "spool/spool.h"

namespace ferry {

class Server;

class SmtpSession final : public net::Connection::Handler {
 public:
  enum class State { proxy_header, tls_handshake, command, auth, data, bdat, closing };

  SmtpSession(Server& server, uint64_t id, std::unique_ptr<net::Connection> conn,
              config::ListenerConfig listener, std::shared_ptr<const Runtime> rt);
  ~SmtpSession() override;

  void start();
  // Refuses the connection with a 421 (connection limits).
  void refuse(const smtp::Reply& r);
  // Server shutdown: ends the session at the next command boundary.
  void shutdown();
  // Shutdown timeout: drops the connection now.
  void force_close();
  bool idle() const;

  void on_read(std::string_view data) override;
  void on_tls_ready() override;
  void on_closed(const std::string& reason) override;

  void on_commit(spool::WriteRequest& req);
  void on_auth_result(bool ok, const std::string& user);

  uint64_t id() const { return id_; }
  const std::string& client_ip() const { return client_ip_; }
  static std::string_view to_string(State s);

 private:
  struct Transaction {
    std::optional<smtp::Mailbox> sender;  // nullopt with active: null sender <>
    bool active = false;
    smtp::MailParams params;
    std::vector<smtp::EnvelopeRcpt> rcpts;
    std::string body;
    std::optional<smtp::DataReader> reader;
    uint64_t bdat_remaining = 0;
    bool bdat_last = false;
    bool bdat_failed = false;  // a BDAT chunk came without a valid transaction
  };

  // smtp_session.cc
  void process();
  void process_command_input();
  void send(const smtp::Reply& r);
  void flush();
  void close_with(const smtp::Reply& r, const std::string& reason);
  void protocol_error(const smtp::Reply& r);
  // Arms the one session timer for the earliest running deadline.
  void arm_timer();
  // A complete line was read or the server has answered: the next command
  // line gets a fresh timeouts.command.
  void expect_command();
  void on_deadline();
  int64_t now_ms() const;
  void greet();
  bool waiting() const { return waiting_commit_ || waiting_auth_; }
  std::string_view pending_input() const { return std::string_view(input_).substr(in_pos_); }
  void consume(size_t n);

  // smtp_session_commands.cc
  void dispatch(std::string_view line);
  void cmd_helo(const smtp::Command& c, bool extended);
  void cmd_starttls(const smtp::Command& c);
  void cmd_auth(const smtp::Command& c);
  void auth_line(std::string_view line);
  void auth_step(const smtp::SaslExchange::Step& step);
  void auth_delay_done();
  void cmd_mail(const smtp::Command& c);
  void cmd_rcpt(const smtp::Command& c);
  void cmd_data(const smtp::Command& c);
  void cmd_bdat(const smtp::Command& c);
  void reset_transaction();
  // Stores a "rejected" delivery-log event per recipient of a refused
  // message or recipient, so a search by address shows the refusal.
  void log_rejected(const std::vector<std::string>& rcpts, const smtp::Reply& r, uint64_t size);
  bool auth_offered() const;
  bool may_relay() const;

  // smtp_session_message.cc
  void process_data_input();
  void process_bdat_input();
  void finish_message();
  std::string received_header(const std::string& id) const;

  Server& server_;
  uint64_t id_;
  std::unique_ptr<net::Connection> conn_;
  config::ListenerConfig listener_;
  std::shared_ptr<const Runtime> rt_;
  const config::Config& cfg_;
  State state_ = State::command;
  smtp::SessionDeadlines deadlines_;
  net::Timer timer_;
  net::Timer auth_delay_;

  std::string input_;
  size_t in_pos_ = 0;
  std::string output_;
  smtp::CommandLineReader lines_;

  std::string client_ip_;
  std::string helo_;
  bool esmtp_ = false;
  std::string auth_user_;
  uint64_t errors_ = 0;
  uint64_t auth_failures_ = 0;
  bool waiting_commit_ = false;
  bool waiting_auth_ = false;
  bool shutting_down_ = false;
  bool greeted_ = false;
  std::optional<smtp::SaslExchange> sasl_;
  Transaction txn_;
  uint64_t messages_ = 0;
};

}  // namespace ferry
