#pragma once

// Dialer: opens client channels to leadflow's gRPC servers with one transport setting —
// plaintext, TLS verified against a CA, or mutual TLS with a client certificate (tls.h,
// ClientTlsOptions). Every tool and test that dials a service builds its channels here, so the
// credentials are built in one place.
//
// Create() reads and checks the files once (errors name the file), so a bad flag fails before
// any call; Dial() never fails: connection and handshake errors surface on the calls
// (UNAVAILABLE). A default-constructed Dialer dials plaintext.
//
// Thread safety: a Dialer is an immutable value; Dial() from any thread.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/grpc/tls.h"
#include "grpcpp/channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace leadflow::grpc_util {

class Dialer {
 public:
  Dialer();
  // INVALID_ARGUMENT naming the file or option when `tls` cannot be used: an unreadable or
  // invalid file, a certificate without its key (or the reverse), a server name without TLS.
  static absl::StatusOr<Dialer> Create(const ClientTlsOptions& tls);

  // A channel to `target` ("host:port").
  std::shared_ptr<grpc::Channel> Dial(const std::string& target) const;
  bool tls() const { return tls_; }

 private:
  std::shared_ptr<grpc::ChannelCredentials> credentials_;
  grpc::ChannelArguments arguments_;
  bool tls_ = false;
};

}  // namespace leadflow::grpc_util
