// A libuv timer owned by an object: restartable, and safe to destroy at any
// time (the handle is freed in its close callback, after the owner is gone).
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>

namespace ferry::net {

class Timer {
 public:
  Timer(uv_loop_t* loop, std::function<void()> fire);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  void start(uint64_t ms);  // (re)arms, one shot
  void stop();
  bool active() const { return uv_is_active(reinterpret_cast<const uv_handle_t*>(handle_)) != 0; }

 private:
  uv_timer_t* handle_;
  std::function<void()> fire_;
};

}  // namespace ferry::net
