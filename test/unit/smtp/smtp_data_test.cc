// lib/smtp: DATA dot-unstuffing and the smuggling defence; SASL; replies.
#include <doctest/doctest.h>

#include "smtp/smtp_data.h"
#include "smtp/smtp_reply.h"
#include "smtp/smtp_sasl.h"
#include "util/base64.h"

using namespace ferry::smtp;

namespace {
struct Fed {
  std::string out;
  bool done = false;
  size_t consumed = 0;
  DataError error = DataError::none;
};
// Feeds input in pieces of `step` bytes, like a socket would.
Fed feed(std::string_view in, size_t step, uint64_t max = 1 << 20) {
  DataReader r(DataReader::Mode::dot_terminated, max);
  Fed f;
  while (f.consumed < in.size() && !f.done) {
    auto piece = in.substr(f.consumed, step);
    auto res = r.feed(piece, f.out);
    f.consumed += res.consumed;
    f.done = res.done;
  }
  f.error = r.error();
  return f;
}
}  // namespace

TEST_CASE("DATA: unstuffing and termination, at every split point") {
  std::string in = "Subject: x\r\n\r\n..leading dot\r\n.\r\nMAIL FROM:<next>\r\n";
  for (size_t step = 1; step <= in.size(); ++step) {
    CAPTURE(step);
    auto f = feed(in, step);
    CHECK(f.done);
    CHECK(f.error == DataError::none);
    CHECK(f.out == "Subject: x\r\n\r\n.leading dot\r\n");
    CHECK(in.substr(f.consumed) == "MAIL FROM:<next>\r\n");
  }
}

TEST_CASE("DATA: empty message") {
  auto f = feed(".\r\n", 1);
  CHECK(f.done);
  CHECK(f.out.empty());
}

TEST_CASE("DATA: smuggling sequences never end the message") {
  // Each of these would end DATA in a lax server and start a second,
  // smuggled transaction. Here they are content errors, and only the real
  // CRLF.CRLF ends the data.
  for (std::string bad : {"\n.\n", "\r.\n", "\n.\r\n", "\r.\r\n", ".\n"}) {
    CAPTURE(bad);
    std::string in = "Subject: a\r\n\r\nbody" + bad + "MAIL FROM:<evil@x>\r\nRCPT TO:<v@y>\r\nDATA\r\n\r\n.\r\n";
    for (size_t step : {size_t(1), size_t(3), in.size()}) {
      auto f = feed(in, step);
      CHECK(f.done);
      CHECK(f.consumed == in.size());  // everything up to the real end was data
      CHECK(f.error != DataError::none);
    }
  }
}

TEST_CASE("DATA: bare CR and LF in the middle of a line are errors") {
  CHECK(feed("a\rb\r\n.\r\n", 1).error == DataError::bare_cr);
  CHECK(feed("a\nb\r\n.\r\n", 1).error == DataError::bare_lf);
  CHECK(feed("a\r\r\n.\r\n", 1).error == DataError::bare_cr);
}

TEST_CASE("DATA: a NUL byte anywhere is refused, and never ends the data") {
  using namespace std::string_literals;
  // smtpsmug A8 / A11: NUL before or after the final dot, then a smuggled
  // transaction. Only the real CRLF.CRLF ends the data.
  for (std::string bad : {"\r\n\0.\r\n"s, "\r\n.\0\r\n"s, "\0"s, "\r\n\0\r\n"s, "\r\n.\0.\r\n"s}) {
    CAPTURE(bad);
    std::string in = "Subject: a\r\n\r\nbody" + bad + "MAIL FROM:<evil@x>\r\nRCPT TO:<v@y>\r\nDATA\r\n\r\n.\r\n";
    for (size_t step : {size_t(1), size_t(2), in.size()}) {
      CAPTURE(step);
      auto f = feed(in, step);
      CHECK(f.done);
      CHECK(f.consumed == in.size());
      CHECK(f.error == DataError::nul);
    }
  }
  CHECK(feed("a\0b\r\n.\r\n"s, 1).error == DataError::nul);
  // The first problem is the one reported.
  CHECK(feed("a\nb\0\r\n.\r\n"s, 1).error == DataError::bare_lf);
}

TEST_CASE("BDAT: a NUL byte is refused too") {
  using namespace std::string_literals;
  DataReader r(DataReader::Mode::chunked, 1 << 20);
  std::string out;
  r.feed("Subject: a\r\n\r\nbo\0dy\r\n"s, out);
  r.finish_chunked();
  CHECK(r.error() == DataError::nul);
}

TEST_CASE("DATA: line length limit is 998 + CRLF") {
  std::string ok(998, 'x');
  CHECK(feed(ok + "\r\n.\r\n", 64).error == DataError::none);
  CHECK(feed(ok + "x\r\n.\r\n", 64).error == DataError::line_too_long);
  // A leading stuffing dot counts as sent but 998 content bytes after it
  // make a 999-octet line on the wire.
  CHECK(feed("." + ok + "\r\n.\r\n", 64).error == DataError::line_too_long);
}

TEST_CASE("DATA: size limit keeps consuming to the end") {
  DataReader r(DataReader::Mode::dot_terminated, 10);
  std::string out;
  auto res = r.feed("0123456789ABCDEF\r\n.\r\nQUIT\r\n", out);
  CHECK(res.done);
  CHECK(r.oversize());
  CHECK(res.consumed == 21);
}

TEST_CASE("BDAT chunks: no dot handling, CRLF still enforced") {
  DataReader r(DataReader::Mode::chunked, 1000);
  std::string out;
  r.feed(".\r\n", out);
  r.feed("line\r\n", out);
  r.finish_chunked();
  CHECK(r.error() == DataError::none);
  CHECK(out == ".\r\nline\r\n");
  DataReader bad(DataReader::Mode::chunked, 1000);
  bad.feed("a\nb\r\n", out);
  CHECK(bad.error() == DataError::bare_lf);
  DataReader tail(DataReader::Mode::chunked, 1000);
  tail.feed("no newline at end", out);
  tail.finish_chunked();
  CHECK(tail.error() != DataError::none);
}

TEST_CASE("replies in wire form") {
  CHECK(reply(250, "2.1.0", "Ok").wire() == "250 2.1.0 Ok\r\n");
  CHECK(Reply{250, "", "relay.example\nPIPELINING\nSIZE 100"}.wire() ==
        "250-relay.example\r\n250-PIPELINING\r\n250 SIZE 100\r\n");
  CHECK(reply(550, "5.7.1", "no").summary() == "550 5.7.1 no");
}

TEST_CASE("SASL PLAIN") {
  using ferry::base64_encode;
  auto [x, s] = SaslExchange::start("PLAIN", base64_encode(std::string("\0alice\0secret", 13)));
  REQUIRE(s.kind == SaslExchange::Step::done);
  CHECK(s.creds.user == "alice");
  CHECK(s.creds.password == "secret");

  auto [x2, s2] = SaslExchange::start("PLAIN", std::nullopt);
  CHECK(s2.kind == SaslExchange::Step::challenge);
  CHECK(s2.reply.wire() == "334 \r\n");
  auto s3 = x2.next(base64_encode(std::string("bob\0bob\0pw", 10)));
  CHECK(s3.kind == SaslExchange::Step::done);
  CHECK(s3.creds.authzid == "bob");

  auto [x4, s4] = SaslExchange::start("PLAIN", std::string("notbase64!"));
  CHECK(s4.kind == SaslExchange::Step::failed);
  CHECK(s4.reply.code == 501);
  auto [x5, s5] = SaslExchange::start("PLAIN", base64_encode("no-nuls"));
  CHECK(s5.kind == SaslExchange::Step::failed);
  auto [x6, s6] = SaslExchange::start("CRAM-MD5", std::nullopt);
  CHECK(s6.reply.code == 504);
}

TEST_CASE("SASL LOGIN and cancel") {
  using ferry::base64_encode;
  auto [x, s] = SaslExchange::start("LOGIN", std::nullopt);
  CHECK(s.reply.wire() == "334 VXNlcm5hbWU6\r\n");
  s = x.next(base64_encode("alice"));
  CHECK(s.reply.wire() == "334 UGFzc3dvcmQ6\r\n");
  s = x.next(base64_encode("pw"));
  REQUIRE(s.kind == SaslExchange::Step::done);
  CHECK(s.creds.user == "alice");
  CHECK(s.creds.password == "pw");

  auto [y, t] = SaslExchange::start("LOGIN", std::nullopt);
  t = y.next("*");
  CHECK(t.kind == SaslExchange::Step::failed);
  CHECK(t.reply.code == 501);
}
