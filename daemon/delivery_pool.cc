// See delivery_pool.h.
#include "delivery_pool.h"

#include "smtp_client.h"

namespace ferry {

SmtpClient* ConnectionPool::take(const std::string& key) {
  auto it = idle_.find(key);
  if (it == idle_.end()) return nullptr;
  auto& v = it->second;
  while (!v.empty()) {
    SmtpClient* c = v.back().client;
    v.pop_back();
    if (c->usable()) {
      if (v.empty()) idle_.erase(it);
      return c;
    }
  }
  idle_.erase(it);
  return nullptr;
}

void ConnectionPool::put(const std::string& key, SmtpClient* client, uint64_t idle_ms, size_t max_idle) {
  auto& v = idle_[key];
  if (v.size() >= max_idle) {
    client->quit();
    return;
  }
  auto timer = std::make_unique<net::Timer>(loop_, [this, client] {
    forget(client);
    client->quit();
  });
  timer->start(idle_ms);
  v.push_back(Idle{client, std::move(timer)});
}

void ConnectionPool::forget(SmtpClient* client) {
  for (auto it = idle_.begin(); it != idle_.end(); ++it) {
    auto& v = it->second;
    for (size_t i = 0; i < v.size(); ++i) {
      if (v[i].client == client) {
        v.erase(v.begin() + long(i));
        if (v.empty()) idle_.erase(it);
        return;
      }
    }
  }
}

void ConnectionPool::quit_all() {
  auto all = std::move(idle_);
  idle_.clear();
  for (auto& [key, v] : all)
    for (auto& i : v) i.client->quit();
}

}  // namespace ferry
