// See net_timer.h.
#include "net/net_timer.h"

namespace ferry::net {

Timer::Timer(uv_loop_t* loop, std::function<void()> fire)
    : handle_(new uv_timer_t), fire_(std::move(fire)) {
  uv_timer_init(loop, handle_);
  handle_->data = this;
}

Timer::~Timer() {
  uv_timer_stop(handle_);
  handle_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(handle_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
}

void Timer::start(uint64_t ms) {
  uv_timer_start(
      handle_,
      [](uv_timer_t* h) {
        // A copy runs, so the callback may destroy its own Timer.
        if (auto* self = static_cast<Timer*>(h->data)) {
          auto fire = self->fire_;
          fire();
        }
      },
      ms, 0);
}

void Timer::stop() { uv_timer_stop(handle_); }

}  // namespace ferry::net
