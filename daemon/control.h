// The control socket (control.socket): a Unix stream socket, mode 0600,
// that ferryctl talks to. One request per connection: a JSON object on one
// line, answered by one JSON object {"ok": true, "result": ...} or
// {"ok": false, "error": "..."}; then the daemon closes. Requests are
// checked (control_request.h) before a handler sees them: bad JSON, a
// wrong type or an unknown command gets an error answer, never a crash.
// The commands themselves live in control_commands.cc.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "util/expected.h"

namespace ferry {

class ControlServer {
 public:
  // handler answers a request, {"cmd": known command, "args": its checked
  // arguments}; it may answer later through the callback.
  using Reply = std::function<void(nlohmann::json)>;
  using Handler = std::function<void(const nlohmann::json& request, Reply reply)>;

  static Expected<std::unique_ptr<ControlServer>> listen(uv_loop_t* loop, const std::string& path,
                                                         Handler handler);
  ~ControlServer();

 private:
  ControlServer() = default;
  uv_loop_t* loop_ = nullptr;
  uv_pipe_t* pipe_ = nullptr;
  std::string path_;
  Handler handler_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace ferry
