// A listening TCP socket on the loop. Port 0 binds an ephemeral port; the
// bound address is reported so that tests and logs know it.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>

#include "util/expected.h"

namespace ferry::net {

class Listener {
 public:
  using OnAccept = std::function<void(uv_stream_t* server)>;
  static Expected<std::unique_ptr<Listener>> bind(uv_loop_t* loop, const std::string& host,
                                                  uint16_t port, OnAccept on_accept);
  ~Listener();  // closes the socket; accepted connections are unaffected

  const std::string& bound_address() const { return bound_; }  // "127.0.0.1:34567"
  const uv_stream_t* handle() const { return reinterpret_cast<const uv_stream_t*>(tcp_); }

 private:
  Listener() = default;
  uv_tcp_t* tcp_ = nullptr;
  OnAccept on_accept_;
  std::string bound_;
};

}  // namespace ferry::net
