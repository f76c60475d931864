// Expected<T, E>: a value or an error. C++20 has no std::expected; this is the
// small subset ferry needs. Untrusted input and environment trouble (bad
// client, full disk, DNS down) travel in it; bugs use FERRY_ASSERT instead.
#pragma once

#include <string>
#include <utility>
#include <variant>

#include "util/assert.h"

namespace ferry {

// What went wrong, coarse enough for a caller to choose an SMTP reply.
enum class Errc { generic, io, full, not_found, corrupt, invalid, busy };

struct Error {
  Errc code = Errc::generic;
  std::string message;

  Error() = default;
  Error(std::string msg) : message(std::move(msg)) {}
  Error(Errc c, std::string msg) : code(c), message(std::move(msg)) {}
};

// Wraps an error so that Expected<T, E> can be built from it even when T and
// E could convert into each other.
template <class E>
struct Unexpected {
  E error;
};
template <class E>
Unexpected<std::decay_t<E>> unexpected(E&& e) {
  return {std::forward<E>(e)};
}

template <class T, class E = Error>
class [[nodiscard]] Expected {
 public:
  Expected(T v) : v_(std::in_place_index<0>, std::move(v)) {}
  template <class U>
  Expected(Unexpected<U> e) : v_(std::in_place_index<1>, std::move(e.error)) {}
  Expected(E e) requires(!std::is_same_v<T, E>) : v_(std::in_place_index<1>, std::move(e)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    FERRY_ASSERT(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    FERRY_ASSERT(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    FERRY_ASSERT(ok());
    return std::get<0>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const E& error() const {
    FERRY_ASSERT(!ok());
    return std::get<1>(v_);
  }

 private:
  std::variant<T, E> v_;
};

template <class E>
class [[nodiscard]] Expected<void, E> {
 public:
  Expected() = default;
  template <class U>
  Expected(Unexpected<U> e) : err_(std::move(e.error)), ok_(false) {}
  Expected(E e) : err_(std::move(e)), ok_(false) {}

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const E& error() const {
    FERRY_ASSERT(!ok_);
    return err_;
  }

 private:
  E err_{};
  bool ok_ = true;
};

}  // namespace ferry
