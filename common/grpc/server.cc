#include "common/grpc/server.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"

namespace leadflow::grpc_util {
namespace {

// The API listener's credentials. With TLS, gRPC's file watcher owns the files from here on: it
// reads them now and every refresh interval, and hands changed ones to new handshakes.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const ServerTlsOptions& tls) {
  if (absl::Status s = CheckServerTls(tls); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("gRPC TLS: ", s.message()));
  }
  if (!tls.enabled()) return grpc::InsecureServerCredentials();
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      tls.key_file, tls.cert_file, tls.client_ca_file,
      static_cast<unsigned int>(std::min<int64_t>(absl::ToInt64Seconds(tls.refresh_interval),
                                                  std::numeric_limits<unsigned int>::max())));
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (tls.client_ca_file.empty()) {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  } else {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

// Builds and starts a server listening on `address`; UNAVAILABLE when it cannot listen.
absl::StatusOr<std::unique_ptr<grpc::Server>> Listen(
    const std::string& address, const std::shared_ptr<grpc::ServerCredentials>& credentials,
    const std::vector<grpc::Service*>& services, int* port) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, credentials, port);
  for (grpc::Service* s : services) builder.RegisterService(s);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || *port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot serve gRPC on ", address));
  }
  return server;
}

}  // namespace

absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(
    const std::string& address, const std::vector<grpc::Service*>& services,
    const GrpcServerOptions& options) {
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      ServerCredentials(options.tls);
  if (!credentials.ok()) return credentials.status();
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  int port = 0;
  absl::StatusOr<std::unique_ptr<grpc::Server>> server =
      Listen(address, *credentials, services, &port);
  if (!server.ok()) return server.status();
  int health_port = 0;
  std::unique_ptr<grpc::Server> health_server;
  if (!options.health_address.empty()) {
    // No services: the default health service (status "" only) and reflection.
    absl::StatusOr<std::unique_ptr<grpc::Server>> h =
        Listen(options.health_address, grpc::InsecureServerCredentials(), {}, &health_port);
    if (!h.ok()) {
      (*server)->Shutdown();
      (*server)->Wait();
      return h.status();
    }
    health_server = *std::move(h);
  }
  return std::unique_ptr<GrpcServer>(
      new GrpcServer(*std::move(server), port, std::move(health_server), health_port));
}

GrpcServer::GrpcServer(std::unique_ptr<grpc::Server> server, int port,
                       std::unique_ptr<grpc::Server> health_server, int health_port)
    : server_(std::move(server)),
      port_(port),
      health_server_(std::move(health_server)),
      health_port_(health_port) {
  SetServing(false);  // until the runtime says the dependencies are up
}

GrpcServer::~GrpcServer() { Shutdown(absl::Seconds(5)); }

void GrpcServer::SetServing(bool serving) {
  if (shut_down_) return;
  for (grpc::Server* s : {server_.get(), health_server_.get()}) {
    if (s == nullptr) continue;
    if (grpc::HealthCheckServiceInterface* health = s->GetHealthCheckService()) {
      health->SetServingStatus(serving);  // every registered name, "" included
    }
  }
}

void GrpcServer::Shutdown(absl::Duration deadline) {
  if (shut_down_) return;
  SetServing(false);
  shut_down_ = true;
  server_->Shutdown(absl::ToChronoTime(absl::Now() + deadline));
  server_->Wait();
  // Probes see NOT_SERVING until the API listener is gone.
  if (health_server_ != nullptr) {
    health_server_->Shutdown(absl::ToChronoTime(absl::Now()));
    health_server_->Wait();
  }
}

}  // namespace leadflow::grpc_util
