// lib/smtp: command framing, command and address parsing, ESMTP parameters.
#include <doctest/doctest.h>

#include "smtp/smtp_command.h"
#include "smtp/smtp_line.h"

using namespace ferry::smtp;

TEST_CASE("command framing: only CRLF ends a line") {
  struct Case {
    std::string in;
    LineScan::Status status;
    LineError error;
    std::string line;
  } cases[] = {
      {"NOOP\r\n", LineScan::Status::line, LineError::none, "NOOP"},
      {"NOOP\n", LineScan::Status::error, LineError::bare_lf, ""},
      {"NO\rOP\r\n", LineScan::Status::error, LineError::bare_cr, ""},
      {"NOOP", LineScan::Status::need_more, LineError::none, ""},
      {"NOOP\r", LineScan::Status::need_more, LineError::none, ""},
      {"\r\n", LineScan::Status::line, LineError::none, ""},
      {std::string("NO\0OP\r\n", 7), LineScan::Status::error, LineError::nul, ""},
      {std::string("MAIL FROM:<a@b>\0\r\n", 18), LineScan::Status::error, LineError::nul, ""},
  };
  for (const auto& c : cases) {
    CommandLineReader r;
    auto s = r.next(c.in, 512);
    CAPTURE(c.in);
    CHECK(s.status == c.status);
    CHECK(s.error == c.error);
    if (s.status == LineScan::Status::line) CHECK(std::string(s.line) == c.line);
  }
}

TEST_CASE("command framing: overlong lines are dropped and reported once") {
  CommandLineReader r;
  std::string big(600, 'A');
  auto s = r.next(big, 512);
  CHECK(s.status == LineScan::Status::need_more);
  CHECK(s.consumed == 600);
  CHECK(r.discarding());
  s = r.next("AAAA\r\nNOOP\r\n", 512);
  CHECK(s.status == LineScan::Status::error);
  CHECK(s.error == LineError::too_long);
  CHECK(s.consumed == 6);
  s = r.next("NOOP\r\n", 512);
  CHECK(s.status == LineScan::Status::line);
  // Exactly 512 with CRLF is fine; 513 is not.
  CommandLineReader r2;
  CHECK(r2.next(std::string(510, 'x') + "\r\n", 512).status == LineScan::Status::line);
  CHECK(r2.next(std::string(511, 'x') + "\r\n", 512).error == LineError::too_long);
}

TEST_CASE("verbs are case-insensitive") {
  CHECK(parse_command("ehlo client.example").verb == Verb::ehlo);
  CHECK(parse_command("MaIl FROM:<a@b>").verb == Verb::mail);
  CHECK(parse_command("STARTTLS").verb == Verb::starttls);
  CHECK(parse_command("XYZZY").verb == Verb::unknown);
  CHECK(parse_command("DATA").arg.empty());
  CHECK(parse_command("MAIL FROM:<a@b>").arg == "FROM:<a@b>");
}

TEST_CASE("MAIL FROM parsing") {
  auto m = parse_mail_from("FROM:<alice@example.com> SIZE=1000 BODY=8BITMIME RET=HDRS ENVID=abc+2B1");
  REQUIRE(m.ok());
  CHECK(m->sender->local == "alice");
  CHECK(m->sender->domain == "example.com");
  CHECK(*m->params.size == 1000);
  CHECK(m->params.body == BodyType::eightbitmime);
  CHECK(m->params.ret == DsnRet::hdrs);
  CHECK(m->params.envid == "abc+2B1");

  auto null = parse_mail_from("FROM:<>");
  REQUIRE(null.ok());
  CHECK_FALSE(null->sender.has_value());

  CHECK(parse_mail_from("FROM: <a@b.c>").ok());  // tolerated space
  CHECK(parse_mail_from("from:<a@b.c>").ok());
  CHECK(parse_mail_from("FROM:<@relay.example:a@b.c>").ok());  // source route ignored
  CHECK(parse_mail_from("FROM:<\"john doe\"@b.c>").ok());

  struct Bad {
    const char* arg;
    int code;
  } bad[] = {
      {"FROM:a@b.c", 501},
      {"FROM:<a@b.c", 501},
      {"TO:<a@b.c>", 501},
      {"FROM:<a>", 501},
      {"FROM:<a..b@c.d>", 501},
      {"FROM:<a@-b.c>", 501},
      {"FROM:<a@b.c>x", 501},
      {"FROM:<a@b.c> SIZE=abc", 501},
      {"FROM:<a@b.c> SIZE=1 SIZE=2", 501},
      {"FROM:<a@b.c> BODY=BINARYMIME", 501},
      {"FROM:<a@b.c> FOO=1", 555},
      {"FROM:<a@b.c> SMTPUTF8=yes", 501},
      {"FROM:<a@b.c> ENVID=a=b", 501},
      {"FROM:<a@[300.1.1.1]>", 501},
  };
  for (const auto& b : bad) {
    CAPTURE(b.arg);
    auto r = parse_mail_from(b.arg);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == b.code);
  }
}

TEST_CASE("UTF-8 addresses are recognised") {
  auto m = parse_mail_from("FROM:<j\xC3\xB6rg@b\xC3\xBC" "cher.example> SMTPUTF8");
  REQUIRE(m.ok());
  CHECK(m->sender->utf8);
  CHECK(m->params.smtputf8);
  auto ascii = parse_mail_from("FROM:<jorg@example.com>");
  CHECK_FALSE(ascii->sender->utf8);
  CHECK_FALSE(parse_mail_from("FROM:<j\xC3@example.com>").ok());  // invalid UTF-8
}

TEST_CASE("RCPT TO parsing with DSN parameters") {
  auto r = parse_rcpt_to("TO:<bob@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob+40example.org");
  REQUIRE(r.ok());
  CHECK(r->rcpt.str() == "bob@example.org");
  CHECK(r->params.notify == (kNotifySuccess | kNotifyFailure));
  CHECK(r->params.orcpt == "rfc822;bob+40example.org");
  CHECK(parse_rcpt_to("TO:<bob@[192.0.2.1]>").ok());
  CHECK(parse_rcpt_to("TO:<bob@[IPv6:2001:db8::1]>").ok());
  CHECK_FALSE(parse_rcpt_to("TO:<>").ok());
  CHECK_FALSE(parse_rcpt_to("TO:<b@c.d> NOTIFY=NEVER,SUCCESS").ok());
  CHECK_FALSE(parse_rcpt_to("TO:<b@c.d> NOTIFY=SOMETIMES").ok());
  CHECK_FALSE(parse_rcpt_to("TO:<b@c.d> ORCPT=nosemicolon").ok());
  CHECK_FALSE(parse_rcpt_to(std::string("TO:<") + std::string(65, 'a') + "@c.d>").ok());
}

TEST_CASE("BDAT and AUTH arguments") {
  auto b = parse_bdat("1024 LAST");
  REQUIRE(b.ok());
  CHECK(b->size == 1024);
  CHECK(b->last);
  CHECK_FALSE(parse_bdat("").ok());
  CHECK_FALSE(parse_bdat("-1").ok());
  CHECK_FALSE(parse_bdat("10 FIRST").ok());
  auto a = parse_auth("plain dGVzdA==");
  REQUIRE(a.ok());
  CHECK(a->mechanism == "PLAIN");
  CHECK(*a->initial == "dGVzdA==");
  CHECK_FALSE(parse_auth("").ok());
}

TEST_CASE("EHLO argument") {
  CHECK(parse_helo("client.example").ok());
  CHECK(parse_helo("[192.0.2.1]").ok());
  CHECK(parse_helo("my_laptop extra words").value() == "my_laptop");
  CHECK_FALSE(parse_helo("").ok());
}
