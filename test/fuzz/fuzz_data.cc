// libFuzzer: the DATA reader. Invariants checked: it never consumes more
// than it is given, output never exceeds input, and the split of the input
// into pieces does not change the result.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "smtp/smtp_data.h"

using ferry::smtp::DataReader;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  size_t step = data[0] % 16 + 1;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);

  DataReader whole(DataReader::Mode::dot_terminated, 4096);
  std::string out_whole;
  auto r = whole.feed(in, out_whole);
  if (r.consumed > in.size() || out_whole.size() > in.size()) abort();

  DataReader pieces(DataReader::Mode::dot_terminated, 4096);
  std::string out_pieces;
  size_t used = 0;
  bool done = false;
  while (used < in.size() && !done) {
    auto p = pieces.feed(in.substr(used, step), out_pieces);
    used += p.consumed;
    done = p.done;
  }
  if (done != r.done || (done && used != r.consumed)) abort();
  if (whole.error() != pieces.error()) abort();
  if (whole.error() == ferry::smtp::DataError::none && !whole.oversize() && out_whole != out_pieces)
    abort();

  DataReader chunked(DataReader::Mode::chunked, 4096);
  std::string out_chunked;
  chunked.feed(in, out_chunked);
  chunked.finish_chunked();
  return 0;
}
