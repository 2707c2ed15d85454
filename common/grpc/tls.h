#pragma once

// TLS settings for leadflow's gRPC servers (GrpcServer) and clients (Dialer, channel.h), and the
// one place that reads and checks their PEM files.
//
// Server: plaintext unless `cert_file` and `key_file` are set. With `client_ca_file` too, the
// server asks every client for a certificate and refuses one that does not present a certificate
// signed by that CA (mutual TLS). The files are re-read every `refresh_interval` while the server
// runs, so a certificate rewritten on disk (cert-manager renewing a mounted Secret) is used for
// new connections without a restart; connections already open keep the old one. Replace the
// files atomically (write elsewhere, then rename, as kubelet does for a Secret volume): a key read
// together with the previous certificate fails handshakes until the next refresh.
//
// Client: plaintext unless `ca_file` or `cert_file` is set. The server is verified against
// `ca_file` (the system's roots when it is empty) and must carry `server_name`, or the target's
// host when that is empty, in its certificate. `cert_file` / `key_file` are the client's own
// certificate for a server that requires one.
//
// The structs are plain values; the functions read files only, no sockets, and are thread-safe.

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace leadflow::grpc_util {

struct ServerTlsOptions {
  // PEM certificate chain, leaf first (cert-manager's tls.crt). Empty with key_file: plaintext.
  std::string cert_file;
  // PEM private key of the leaf certificate (tls.key).
  std::string key_file;
  // PEM CA bundle clients' certificates must chain to (ca.crt); empty: no client certificate.
  std::string client_ca_file;
  // How often the three files are re-read; whole seconds, at least one.
  absl::Duration refresh_interval = absl::Seconds(60);

  bool enabled() const { return !cert_file.empty() || !key_file.empty(); }
};

struct ClientTlsOptions {
  // PEM CA bundle to verify the server against; empty: the system's roots.
  std::string ca_file;
  // PEM client certificate chain and its key, for mutual TLS; both or neither.
  std::string cert_file;
  std::string key_file;
  // The name the server's certificate must carry instead of the target's host; needs TLS.
  std::string server_name;

  bool enabled() const { return !ca_file.empty() || !cert_file.empty() || !key_file.empty(); }
};

// A certificate chain and its private key, as PEM text.
struct PemKeyCertPair {
  std::string cert_chain;
  std::string private_key;
};

// The PEM certificates in `path` (at least one). INVALID_ARGUMENT naming the file when it cannot
// be read or holds no certificate, or something in it does not parse.
absl::StatusOr<std::string> ReadPemCertificates(const std::string& path);

// A certificate chain and the private key of its first (leaf) certificate. INVALID_ARGUMENT
// naming the file that cannot be read or parsed, or both files when the key is not the leaf's.
absl::StatusOr<PemKeyCertPair> ReadPemKeyCertPair(const std::string& cert_path,
                                                  const std::string& key_path);

// Checks a server setting before the server starts: cert and key both set or both empty, every
// file readable and valid, the key the certificate's, a client CA only with a certificate, a
// refresh interval of at least one second. OK for plaintext. INVALID_ARGUMENT otherwise.
absl::Status CheckServerTls(const ServerTlsOptions& tls);

}  // namespace leadflow::grpc_util
