// See control.h.
#include "control.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>

#include <fmt/format.h>

#include "control_request.h"
#include "util/log.h"

namespace ferry {
namespace {

struct Client {
  uv_pipe_t pipe;
  std::string in;
  bool answered = false;
  ControlServer::Handler* handler;
  std::shared_ptr<bool> alive;
};

void close_client(Client* c) {
  uv_close(reinterpret_cast<uv_handle_t*>(&c->pipe), [](uv_handle_t* h) { delete static_cast<Client*>(h->data); });
}

void answer(Client* c, const nlohmann::json& j) {
  struct W {
    uv_write_t req;
    std::string data;
  };
  auto* w = new W{{}, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n"};
  uv_buf_t b = uv_buf_init(w->data.data(), unsigned(w->data.size()));
  w->req.data = c;
  int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&c->pipe), &b, 1, [](uv_write_t* req, int) {
    auto* self = reinterpret_cast<W*>(req);
    Client* client = static_cast<Client*>(req->data);
    delete self;
    close_client(client);
  });
  if (rc != 0) {
    delete w;
    close_client(c);
  }
}

// One complete request line. This runs inside a libuv read callback, where
// an exception would abort ferryd with every session in it: parse_request
// refuses what handlers cannot take, and the catch below is the last
// resort for a handler bug (answered and logged, never rethrown).
void dispatch(Client* c, std::string_view line) {
  auto req = control::parse_request(line);
  if (!req) return answer(c, control::error_reply(req.error().message));
  // The handler may answer now, later (after a spool commit), or throw
  // after keeping the reply for later: exactly one answer goes out.
  auto done = std::make_shared<bool>(false);
  auto alive = c->alive;
  auto fail = [&](const char* what) {
    log::error("control.internal_error", {{"cmd", req->cmd}, {"error", what}});
    if (*done) return;
    *done = true;
    answer(c, control::error_reply(std::string("internal error: ") + what));
  };
  try {
    (*c->handler)(req->to_json(), [c, alive, done](nlohmann::json resp) {
      if (!*alive || *done) return;  // the server went away (the loop closes the pipe), or answered
      *done = true;
      answer(c, resp);
    });
  } catch (const std::exception& e) {
    fail(e.what());
  } catch (...) {
    fail("unknown exception");
  }
}

}  // namespace

Expected<std::unique_ptr<ControlServer>> ControlServer::listen(uv_loop_t* loop, const std::string& path,
                                                               Handler handler) {
  std::unique_ptr<ControlServer> s(new ControlServer);
  s->loop_ = loop;
  s->path_ = path;
  s->handler_ = std::move(handler);
  std::error_code ec;
  auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  if (ec) return Error(Errc::io, fmt::format("control.socket {}: {}", path, ec.message()));
  // A socket file left by a killed daemon would make bind fail; one that a
  // live daemon answers on means a second ferryd: refuse.
  if (std::filesystem::exists(path, ec)) {  // the throwing exists() aborts start-up on EACCES
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode))
      return Error(Errc::invalid, fmt::format("control.socket {} exists and is not a socket", path));
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path.c_str());
    bool live = fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
    if (fd >= 0) ::close(fd);
    if (live) return Error(Errc::busy, fmt::format("control.socket {} is in use by another ferryd", path));
    ::unlink(path.c_str());
  }
  s->pipe_ = new uv_pipe_t;
  uv_pipe_init(loop, s->pipe_, 0);
  s->pipe_->data = s.get();
  mode_t old = ::umask(0177);  // the socket is created 0600: only the daemon's user may steer it
  int rc = uv_pipe_bind(s->pipe_, path.c_str());
  ::umask(old);
  if (rc == 0)
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(s->pipe_), 64, [](uv_stream_t* server, int status) {
      if (status < 0) return;
      auto* self = static_cast<ControlServer*>(server->data);
      auto* c = new Client{{}, {}, false, &self->handler_, self->alive_};
      uv_pipe_init(server->loop, &c->pipe, 0);
      c->pipe.data = c;
      if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&c->pipe)) != 0) return close_client(c);
      uv_read_start(
          reinterpret_cast<uv_stream_t*>(&c->pipe),
          [](uv_handle_t*, size_t, uv_buf_t* buf) {
            static char chunk[16 * 1024];  // the loop is single-threaded; copied out at once
            *buf = uv_buf_init(chunk, sizeof chunk);
          },
          [](uv_stream_t* st, ssize_t n, const uv_buf_t* buf) {
            auto* c = static_cast<Client*>(st->data);
            if (c->answered) return;
            if (n == UV_EOF && !c->in.empty()) {
              // A request without its newline, then end of input: still one request.
              c->answered = true;
              uv_read_stop(st);
              return dispatch(c, c->in);
            }
            if (n < 0) {
              uv_read_stop(st);
              return close_client(c);
            }
            c->in.append(buf->base, size_t(n));
            size_t nl = c->in.find('\n');
            if (nl == std::string::npos && c->in.size() <= control::kMaxRequest) return;
            c->answered = true;
            uv_read_stop(st);
            // Past the bound with no newline: answered by parse_request, unread.
            dispatch(c, std::string_view(c->in).substr(0, nl));
          });
    });
  if (rc != 0) return Error(Errc::io, fmt::format("control.socket {}: {}", path, uv_strerror(rc)));
  log::info("control.listening", {{"socket", path}});
  return s;
}

ControlServer::~ControlServer() {
  *alive_ = false;
  if (pipe_) {
    pipe_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(pipe_), [](uv_handle_t* h) { delete reinterpret_cast<uv_pipe_t*>(h); });
    ::unlink(path_.c_str());
  }
}

}  // namespace ferry
