// The server side of SASL PLAIN (RFC 4616) and LOGIN (the obsolete but still
// common draft mechanism) as a pure state machine: the session feeds client
// lines in and gets either a 334 challenge to send, credentials to verify, or
// a reply that ends the exchange. Verification itself is not done here.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "smtp/smtp_reply.h"

namespace ferry::smtp {

struct Credentials {
  std::string authzid;  // PLAIN only; must be empty or equal to the user
  std::string user;
  std::string password;
};

class SaslExchange {
 public:
  struct Step {
    enum Kind { challenge, done, failed } kind = failed;
    Reply reply;        // challenge: the 334 line; failed: the error reply
    Credentials creds;  // done
  };

  static bool supported(std::string_view mechanism);
  // Starts an exchange for AUTH <mechanism> [initial-response].
  static std::pair<SaslExchange, Step> start(std::string_view mechanism,
                                             const std::optional<std::string>& initial);
  // Feeds the client's next line (base64, or "*" to cancel).
  Step next(std::string_view line);

 private:
  enum class Mech { plain, login };
  enum class Phase { plain_response, login_user, login_password };
  Step plain(std::string_view b64);

  Mech mech_ = Mech::plain;
  Phase phase_ = Phase::plain_response;
  std::string user_;
};

}  // namespace ferry::smtp
