// lib/smtp client side: reply reading, EHLO capabilities, dot-stuffing.
#include <doctest/doctest.h>

#include <vector>

#include "smtp/smtp_client_proto.h"
#include "smtp/smtp_data.h"

using namespace ferry::smtp;

TEST_CASE("reply reader: single, multi-line, split input") {
  std::string in = "250-mx.example\r\n250-PIPELINING\r\n250 SIZE 1000\r\n550 5.1.1 <x@y>: no such user\r\n";
  for (size_t step = 1; step <= in.size(); ++step) {
    ReplyReader rr;
    std::string buf;
    std::vector<Reply> got;
    size_t fed = 0;
    while (fed < in.size() || !buf.empty()) {
      if (fed < in.size()) {
        buf += in.substr(fed, step);
        fed += step;
      }
      auto r = rr.next(buf);
      REQUIRE(r.status != ReplyReader::Result::Status::error);
      if (r.status == ReplyReader::Result::Status::need_more) {
        if (fed >= in.size()) break;
        continue;
      }
      got.push_back(r.reply);
      buf.erase(0, r.consumed);
    }
    REQUIRE(got.size() == 2);
    CHECK(got[0].code == 250);
    CHECK(got[0].text == "mx.example\nPIPELINING\nSIZE 1000");
    CHECK(got[1].code == 550);
    CHECK(got[1].enhanced == "5.1.1");
    CHECK(got[1].text == "<x@y>: no such user");
  }
}

TEST_CASE("reply reader: errors") {
  ReplyReader a;
  CHECK(a.next("hello\r\n").status == ReplyReader::Result::Status::error);
  ReplyReader b;
  CHECK(b.next("250-a\r\n251 b\r\n").status == ReplyReader::Result::Status::error);
  ReplyReader c;
  CHECK(c.next("250 ok\n").status == ReplyReader::Result::Status::error);
  ReplyReader d;
  CHECK(d.next("250").status == ReplyReader::Result::Status::need_more);
  ReplyReader e;
  CHECK(e.next("250\r\n").reply.code == 250);
}

TEST_CASE("EHLO capabilities") {
  Reply r{250, "", "mx.example\nPIPELINING\nSIZE 52428800\n8BITMIME\nSTARTTLS\nAUTH PLAIN login\nDSN\nSMTPUTF8"};
  auto c = parse_ehlo(r);
  CHECK(c.pipelining);
  CHECK(c.starttls);
  CHECK(c.eightbitmime);
  CHECK(c.dsn);
  CHECK(c.smtputf8);
  CHECK(*c.size == 52428800);
  CHECK(c.auth == "PLAIN LOGIN");
  CHECK_FALSE(c.chunking);
}

TEST_CASE("dot-stuffing round-trips through the DATA reader") {
  for (std::string body : {std::string("a\r\n.b\r\n..c\r\n.\r\n"), std::string(".start\r\n"),
                           std::string("no final crlf"), std::string("")}) {
    std::string wire = dot_stuff(body);
    DataReader r(DataReader::Mode::dot_terminated, 1 << 20);
    std::string out;
    auto res = r.feed(wire, out);
    CHECK(res.done);
    CHECK(res.consumed == wire.size());
    std::string expect = body;
    if (!expect.empty() && expect.substr(expect.size() >= 2 ? expect.size() - 2 : 0) != "\r\n") expect += "\r\n";
    CHECK(out == expect);
  }
}
