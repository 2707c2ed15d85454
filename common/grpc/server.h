#pragma once

// GrpcServer: runs a service's gRPC API with grpc.health.v1 and server reflection.
//
// Health: the overall status ("") and each registered service's name report SERVING only while
// the runtime says the service can do its work (dependencies up, not shutting down).
// Shutdown(): health goes NOT_SERVING first, then in-flight calls get `deadline` to finish.
//
// Transport: plaintext, or TLS / mutual TLS as `options.tls` says (tls.h): the files are checked
// before anything listens, so a bad one stops the start with an error naming it, never a
// silent fallback to plaintext; afterwards gRPC re-reads them every refresh interval
// (grpc::experimental::FileWatcherCertificateProvider), so a renewed certificate needs no
// restart. Kubernetes' gRPC probes speak plaintext only: `options.health_address` adds a
// plaintext listener that serves grpc.health.v1 (and reflection) alone, with the same status.
//
// Ownership: services added must outlive the server. Thread safety: SetServing() from any thread.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/grpc/tls.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"

namespace leadflow::grpc_util {

struct GrpcServerOptions {
  // The API listener's TLS; the default is plaintext.
  ServerTlsOptions tls;
  // "host:port" of a plaintext listener with only health (and reflection); empty: none.
  std::string health_address;
};

class GrpcServer {
 public:
  // `address`: "host:port"; port 0 picks a free port (see port(), health_port()).
  // Errors: INVALID_ARGUMENT for a bad TLS setting or file (named), UNAVAILABLE when an address
  // cannot be listened on.
  static absl::StatusOr<std::unique_ptr<GrpcServer>> Start(
      const std::string& address, const std::vector<grpc::Service*>& services,
      const GrpcServerOptions& options = {});
  ~GrpcServer();

  void SetServing(bool serving);
  void Shutdown(absl::Duration deadline);
  int port() const { return port_; }
  // The health listener's port; 0 without one.
  int health_port() const { return health_port_; }
  grpc::Server& server() { return *server_; }

 private:
  GrpcServer(std::unique_ptr<grpc::Server> server, int port,
             std::unique_ptr<grpc::Server> health_server, int health_port);
  std::unique_ptr<grpc::Server> server_;
  int port_;
  std::unique_ptr<grpc::Server> health_server_;  // null without options.health_address
  int health_port_;
  bool shut_down_ = false;
};

}  // namespace leadflow::grpc_util
