// lib/msg: the Received: header.
#include <doctest/doctest.h>

#include "msg/msg_received.h"

using namespace ferry::msg;

TEST_CASE("Received header names TLS and protocol, never the recipient") {
  ReceivedInfo in;
  in.helo = "app1.example";
  in.client_ip = "192.0.2.7";
  in.by_host = "relay.example.net";
  in.id = "01JD0000000000000000000000";
  in.authenticated = true;
  in.tls_version = "TLSv1.3";
  in.tls_cipher = "TLS_AES_256_GCM_SHA384";
  in.tls_bits = 256;
  in.unix_ms = 1'795'420'996'000;  // 2026-11-23 08:03:16 UTC
  std::string h = build_received(in);
  CHECK(h ==
        "Received: from app1.example ([192.0.2.7])\r\n"
        "\tby relay.example.net (ferry) with ESMTPSA id 01JD0000000000000000000000\r\n"
        "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits));\r\n"
        "\tMon, 23 Nov 2026 08:03:16 +0000\r\n");
  in.tls_version.clear();
  in.authenticated = false;
  in.helo = "evil\r\nBcc: x";
  h = build_received(in);
  CHECK(h.find("with ESMTP id") != std::string::npos);
  CHECK(h.find("evilBcc: x") != std::string::npos);  // CR LF stripped
}
