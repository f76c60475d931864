// OpenSSL's error queue, per thread, handled in one place. The queue is
// shared by every SSL object on the loop thread: an entry left behind by one
// connection makes SSL_get_error report SSL_ERROR_SSL on the next connection
// that merely wants more bytes, which then closes for no reason. So: clear
// before every SSL I/O call, and drain (into the error text) after a failure.
#pragma once

#include <string>

namespace ferry::net {

// Empties this thread's OpenSSL error queue (ERR_clear_error).
void tls_clear_errors();

// After an SSL call failed with SSL_get_error() == ssl_error: the reasons
// OpenSSL queued, drained, as short text ("sslv3 alert handshake failure",
// "wrong version number"); when the queue is empty, what ssl_error means
// ("connection closed by peer" for SSL_ERROR_SYSCALL/ZERO_RETURN).
std::string tls_failure_text(int ssl_error);

}  // namespace ferry::net
