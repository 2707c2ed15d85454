#pragma once

// GrpcServer: runs a service's gRPC API with grpc.health.v1 and server reflection.
//
// Health: the overall status ("") and each registered service's name report SERVING only while
// the runtime says the service can do its work (dependencies up, not shutting down).
// Shutdown(): health goes NOT_SERVING first, then in-flight calls get `deadline` to finish.
//
// Ownership: services added must outlive the server. Thread safety: SetServing() from any thread.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"

namespace leadflow::grpc_util {

class GrpcServer {
 public:
  // `address`: "host:port"; port 0 picks a free port (see port()).
  static absl::StatusOr<std::unique_ptr<GrpcServer>> Start(
      const std::string& address, const std::vector<grpc::Service*>& services);
  ~GrpcServer();

  void SetServing(bool serving);
  void Shutdown(absl::Duration deadline);
  int port() const { return port_; }
  grpc::Server& server() { return *server_; }

 private:
  GrpcServer(std::unique_ptr<grpc::Server> server, int port);
  std::unique_ptr<grpc::Server> server_;
  int port_;
  bool shut_down_ = false;
};

}  // namespace leadflow::grpc_util
