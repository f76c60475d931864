// lib/util: base64, ids, byte codec, UTF-8 checks, log line format.
#include <doctest/doctest.h>

#include <set>
#include <vector>

#include "util/base64.h"
#include "util/bytes.h"
#include "util/ids.h"
#include "util/log.h"
#include "util/strings.h"

using namespace ferry;

TEST_CASE("base64 round trip and strictness") {
  for (std::string s : std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\0user\0pw", 8)})
    CHECK(base64_decode(base64_encode(s)) == s);
  CHECK(base64_encode("Username:") == "VXNlcm5hbWU6");
  CHECK_FALSE(base64_decode("abc").has_value());     // bad length
  CHECK_FALSE(base64_decode("ab!d").has_value());    // bad char
  CHECK_FALSE(base64_decode("a===").has_value());    // bad padding
  CHECK_FALSE(base64_decode("YR==").has_value());    // non-canonical bits
  CHECK_FALSE(base64_decode("YQ==YQ==").has_value());  // padding in the middle
}

TEST_CASE("message ids are unique, sortable and well-formed") {
  IdGenerator g;
  std::string prev;
  std::set<std::string> seen;
  for (int i = 0; i < 5000; ++i) {
    std::string id = g.next(1'700'000'000'000 + i / 100);  // many ids per millisecond
    CHECK(valid_message_id(id));
    CHECK(id > prev);
    CHECK(seen.insert(id).second);
    prev = id;
  }
  // A clock that steps back does not break ordering.
  std::string later = g.next(1'600'000'000'000);
  CHECK(later > prev);
  CHECK_FALSE(valid_message_id("short"));
  CHECK_FALSE(valid_message_id("0000000000000000000000000U"));  // U is not Crockford
}

TEST_CASE("byte codec refuses truncated input") {
  ByteWriter w;
  w.u8(7);
  w.varint(300);
  w.str("hello");
  w.u64(0x0102030405060708ull);
  std::string data = w.take();
  ByteReader r(data);
  uint8_t a;
  uint64_t b, d;
  std::string c;
  CHECK(r.u8(a));
  CHECK(r.varint(b));
  CHECK(r.str(c));
  CHECK(r.u64(d));
  CHECK(r.done());
  CHECK(a == 7);
  CHECK(b == 300);
  CHECK(c == "hello");
  CHECK(d == 0x0102030405060708ull);
  for (size_t cut = 0; cut < data.size(); ++cut) {
    ByteReader t(std::string_view(data).substr(0, cut));
    bool all = t.u8(a) && t.varint(b) && t.str(c) && t.u64(d);
    CHECK_FALSE(all);
  }
  CHECK(from_be64(be64(12345)) == 12345);
  CHECK(be64(1) < be64(256));
}

TEST_CASE("utf8 validation") {
  CHECK(valid_utf8("plain"));
  CHECK(valid_utf8("j\xC3\xB6rg"));
  CHECK(valid_utf8("\xF0\x9F\x98\x80"));
  CHECK_FALSE(valid_utf8("\xC0\xAF"));          // overlong '/'
  CHECK_FALSE(valid_utf8("\xED\xA0\x80"));      // surrogate
  CHECK_FALSE(valid_utf8("\xC3"));              // truncated
  CHECK_FALSE(valid_utf8("\xF5\x80\x80\x80"));  // > U+10FFFF
}

TEST_CASE("log lines are one line, quoted where needed") {
  auto text = log::format_line(log::Format::text, log::Level::info, "smtp.reject",
                               {{"client", "1.2.3.4"}, {"reply", "550 no\r\nway"}, {"n", 3}}, 0);
  CHECK(text == "1970-01-01T00:00:00.000Z info smtp.reject client=1.2.3.4 reply=\"550 no\\x0d\\x0away\" n=3\n");
  auto json = log::format_line(log::Format::json, log::Level::warn, "x", {{"k", "a\"b"}, {"n", 3}}, 1500);
  CHECK(json == "{\"ts\":\"1970-01-01T00:00:01.500Z\",\"level\":\"warn\",\"event\":\"x\",\"k\":\"a\\\"b\",\"n\":3}\n");
}

#include "util/json_fields.h"

TEST_CASE("typed JSON reads: fallback when missing, an error naming the field when mistyped, never a throw") {
  using nlohmann::json;
  json j = json::parse(R"({"s": "x", "i": 7, "big": 18446744073709551615, "f": 1.5, "b": true, "n": null, "a": [1]})");
  CHECK(*json_field::get_string(j, "s") == "x");
  CHECK(*json_field::get_string(j, "missing", "dflt") == "dflt");
  CHECK(json_field::get_string(j, "i").error().message == "'i' must be a string, not an integer");
  CHECK(json_field::get_string(j, "n").error().message == "'n' must be a string, not null");
  CHECK(*json_field::get_int(j, "i") == 7);
  CHECK(json_field::get_int(j, "f").error().message == "'f' must be an integer, not a fractional number");
  CHECK(json_field::get_int(j, "big").error().message == "'big' is too large");
  CHECK(*json_field::get_bool(j, "b"));
  CHECK(json_field::get_bool(j, "s").error().message == "'s' must be true or false, not a string");
  // Not an object: no fields at all (value() would throw type_error here).
  for (const json& other : {json(5), json::array(), json("str"), json()}) {
    CHECK(*json_field::get_string(other, "s", "d") == "d");
    CHECK(json_field::string_or(other, "s", "d") == "d");
  }
  CHECK(json_field::string_or(j, "a", "d") == "d");
  CHECK(json_field::text(j["a"]) == "[1]");
  CHECK(json_field::text(json("\xff")) == "\xff");  // strings as they are
}
