// lib/msg: header scan and DSN layout.
#include <doctest/doctest.h>

#include "msg/msg_dsn.h"
#include "msg/msg_headers.h"

using namespace ferry::msg;

TEST_CASE("header scan: Received count, folded Subject, body offset") {
  std::string m =
      "Received: from a\r\n\tby b; date\r\nreceived: x\r\nSubject: Hello\r\n  world\r\n"
      "X-Other: y\r\n\r\nbody\r\nReceived: not a header\r\n";
  auto s = scan_headers(m);
  CHECK(s.received == 2);
  CHECK(s.subject == "Hello  world");
  CHECK(m.substr(s.header_end) == "body\r\nReceived: not a header\r\n");
  CHECK_FALSE(s.eight_bit);
  CHECK(scan_headers("Subject: caf\xC3\xA9\r\n\r\n").eight_bit);
}

TEST_CASE("DSN: multipart/report with one part per RFC 3464") {
  DsnInfo in;
  in.reporting_mta = "relay.test";
  in.to = "app@example.com";
  in.envid = "ENV-1";
  in.arrival_ms = 0;
  in.now_ms = 60000;
  in.message_id = "DSN1";
  in.boundary = "BOUNDARY";
  in.rcpts.push_back({"nobody@example.org", "rfc822;nobody@example.org", "failed", "5.1.1",
                      "mx.example.org", "550 5.1.1 no such user"});
  std::string original = "Subject: hi\r\nFrom: app@example.com\r\n\r\nsecret body\r\n";
  std::string dsn = build_dsn(in, original);
  CHECK(dsn.find("Content-Type: multipart/report; report-type=delivery-status;") != std::string::npos);
  CHECK(dsn.find("Reporting-MTA: dns; relay.test\r\n") != std::string::npos);
  CHECK(dsn.find("Original-Envelope-Id: ENV-1\r\n") != std::string::npos);
  CHECK(dsn.find("Final-Recipient: rfc822; nobody@example.org\r\n") != std::string::npos);
  CHECK(dsn.find("Original-Recipient: rfc822; nobody@example.org\r\n") != std::string::npos);
  CHECK(dsn.find("Action: failed\r\nStatus: 5.1.1\r\n") != std::string::npos);
  CHECK(dsn.find("Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n") != std::string::npos);
  CHECK(dsn.find("Content-Type: text/rfc822-headers") != std::string::npos);
  CHECK(dsn.find("Subject: hi\r\n") != std::string::npos);
  CHECK(dsn.find("secret body") == std::string::npos);  // headers only by default
  CHECK(dsn.find("Auto-Submitted: auto-replied") != std::string::npos);
  CHECK(dsn.size() > 10);
  CHECK(dsn.substr(dsn.size() - 14) == "--BOUNDARY--\r\n");
  in.return_full = true;
  CHECK(build_dsn(in, original).find("secret body") != std::string::npos);
}
