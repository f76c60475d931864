// ferryctl: the admin CLI. This version has `passwd`; the commands that
// talk to a running ferryd over the control socket come with it.
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include <openssl/crypto.h>

#include "auth/auth_users.h"

namespace {

void usage(FILE* out) {
  std::fprintf(out,
               "usage: ferryctl [-c FILE | -s SOCKET] COMMAND\n"
               "commands:\n"
               "  passwd   read a password (twice on a terminal, once from a pipe)\n"
               "           and print an argon2id hash for auth.users_file\n");
}

bool read_password(const char* prompt, std::string& out) {
  bool tty = isatty(STDIN_FILENO);
  termios old{};
  if (tty) {
    std::fprintf(stderr, "%s", prompt);
    tcgetattr(STDIN_FILENO, &old);
    termios quiet = old;
    quiet.c_lflag &= ~tcflag_t(ECHO);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  }
  bool ok = bool(std::getline(std::cin, out));
  if (tty) {
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    std::fprintf(stderr, "\n");
  }
  return ok;
}

int cmd_passwd() {
  std::string pw, again;
  if (!read_password("Password: ", pw)) {
    std::fprintf(stderr, "ferryctl: no password given\n");
    return 1;
  }
  if (isatty(STDIN_FILENO)) {
    if (!read_password("Again: ", again) || again != pw) {
      std::fprintf(stderr, "ferryctl: passwords do not match\n");
      return 1;
    }
  }
  if (pw.empty()) {
    std::fprintf(stderr, "ferryctl: empty password refused\n");
    return 1;
  }
  auto h = ferry::auth::hash_password(pw);
  OPENSSL_cleanse(pw.data(), pw.size());
  OPENSSL_cleanse(again.data(), again.size());
  if (!h) {
    std::fprintf(stderr, "ferryctl: %s\n", h.error().message.c_str());
    return 1;
  }
  std::printf("%s\n", h->c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int i = 1;
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "-c" || a == "-s") && i + 1 < argc) {
      ++i;  // used by the control-socket commands
    } else if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    } else {
      break;
    }
  }
  if (i >= argc) {
    usage(stderr);
    return 2;
  }
  std::string cmd = argv[i];
  if (cmd == "passwd") return cmd_passwd();
  std::fprintf(stderr, "ferryctl: unknown command '%s'\n", cmd.c_str());
  usage(stderr);
  return 2;
}
