#include "common/grpc/channel.h"

#include "grpcpp/create_channel.h"

namespace leadflow::grpc_util {

Dialer::Dialer() : credentials_(grpc::InsecureChannelCredentials()) {}

absl::StatusOr<Dialer> Dialer::Create(const ClientTlsOptions& tls) {
  Dialer dialer;
  if (!tls.enabled()) {
    if (!tls.server_name.empty()) {
      return absl::InvalidArgumentError("a TLS server name needs TLS: give the server's CA file");
    }
    return dialer;
  }
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    return absl::InvalidArgumentError(
        "a TLS client certificate needs its key and the key its certificate: give both");
  }
  grpc::SslCredentialsOptions ssl;  // empty roots: the system's
  if (!tls.ca_file.empty()) {
    absl::StatusOr<std::string> roots = ReadPemCertificates(tls.ca_file);
    if (!roots.ok()) return roots.status();
    ssl.pem_root_certs = *std::move(roots);
  }
  if (!tls.cert_file.empty()) {
    absl::StatusOr<PemKeyCertPair> pair = ReadPemKeyCertPair(tls.cert_file, tls.key_file);
    if (!pair.ok()) return pair.status();
    ssl.pem_cert_chain = std::move(pair->cert_chain);
    ssl.pem_private_key = std::move(pair->private_key);
  }
  dialer.credentials_ = grpc::SslCredentials(ssl);
  if (!tls.server_name.empty()) dialer.arguments_.SetSslTargetNameOverride(tls.server_name);
  dialer.tls_ = true;
  return dialer;
}

std::shared_ptr<grpc::Channel> Dialer::Dial(const std::string& target) const {
  return grpc::CreateCustomChannel(target, credentials_, arguments_);
}

}  // namespace leadflow::grpc_util
