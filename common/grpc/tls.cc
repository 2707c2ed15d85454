#include "common/grpc/tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"

namespace leadflow::grpc_util {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Bio = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

// The one place OpenSSL's error queue becomes a Status: the queue's last entry, then emptied so
// the next call starts clean.
absl::Status OpenSslError(const std::string& path, const char* what) {
  const unsigned long code = ERR_peek_last_error();
  char reason[256] = "unknown error";
  if (code != 0) ERR_error_string_n(code, reason, sizeof(reason));
  ERR_clear_error();
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what, " (", reason, ")"));
}

// True when the last queued error is PEM's "no start line": the end of the PEM blocks, not a
// broken one.
bool AtEndOfPem() {
  const unsigned long code = ERR_peek_last_error();
  return ERR_GET_LIB(code) == ERR_LIB_PEM && ERR_GET_REASON(code) == PEM_R_NO_START_LINE;
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (f == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": cannot read: ", std::strerror(errno)));
  }
  std::string contents;
  char buffer[8192];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), f.get())) > 0) contents.append(buffer, n);
  if (std::ferror(f.get())) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": cannot read: ", std::strerror(errno)));
  }
  return contents;
}

Bio MemoryBio(const std::string& pem) {
  return Bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// The certificates of `pem` (read from `path`), at least one; the first is returned.
absl::StatusOr<X509Ptr> ParseCertificates(const std::string& path, const std::string& pem) {
  ERR_clear_error();
  Bio bio = MemoryBio(pem);
  X509Ptr first;
  for (;;) {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (cert == nullptr) break;
    if (first == nullptr) first = std::move(cert);
  }
  if (!AtEndOfPem()) return OpenSslError(path, "not a valid PEM certificate");
  ERR_clear_error();
  if (first == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": no PEM certificate in the file"));
  }
  return first;
}

// No passphrase prompt on the terminal: an encrypted key fails to load instead (gRPC could not
// use it either).
int NoPassphrase(char*, int, int, void*) { return 0; }

}  // namespace

absl::StatusOr<std::string> ReadPemCertificates(const std::string& path) {
  absl::StatusOr<std::string> pem = ReadWholeFile(path);
  if (!pem.ok()) return pem.status();
  absl::StatusOr<X509Ptr> first = ParseCertificates(path, *pem);
  if (!first.ok()) return first.status();
  return pem;
}

absl::StatusOr<PemKeyCertPair> ReadPemKeyCertPair(const std::string& cert_path,
                                                  const std::string& key_path) {
  PemKeyCertPair pair;
  absl::StatusOr<std::string> cert_pem = ReadWholeFile(cert_path);
  if (!cert_pem.ok()) return cert_pem.status();
  absl::StatusOr<X509Ptr> leaf = ParseCertificates(cert_path, *cert_pem);
  if (!leaf.ok()) return leaf.status();
  absl::StatusOr<std::string> key_pem = ReadWholeFile(key_path);
  if (!key_pem.ok()) return key_pem.status();
  ERR_clear_error();
  Bio bio = MemoryBio(*key_pem);
  Pkey key(PEM_read_bio_PrivateKey(bio.get(), nullptr, &NoPassphrase, nullptr));
  if (key == nullptr) {
    return OpenSslError(key_path, "not an unencrypted PEM private key");
  }
  if (X509_check_private_key(leaf->get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat(key_path, ": not the private key of the first certificate in ", cert_path));
  }
  pair.cert_chain = *std::move(cert_pem);
  pair.private_key = *std::move(key_pem);
  return pair;
}

absl::Status CheckServerTls(const ServerTlsOptions& tls) {
  if (!tls.enabled()) {
    if (!tls.client_ca_file.empty()) {
      return absl::InvalidArgumentError(
          "a client CA needs TLS: set the server's certificate and key as well");
    }
    return absl::OkStatus();
  }
  if (tls.cert_file.empty() || tls.key_file.empty()) {
    return absl::InvalidArgumentError("TLS needs both a certificate and its private key");
  }
  if (tls.refresh_interval < absl::Seconds(1)) {
    return absl::InvalidArgumentError("the TLS refresh interval must be at least 1 s");
  }
  absl::StatusOr<PemKeyCertPair> pair = ReadPemKeyCertPair(tls.cert_file, tls.key_file);
  if (!pair.ok()) return pair.status();
  if (!tls.client_ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadPemCertificates(tls.client_ca_file);
    if (!ca.ok()) return ca.status();
  }
  return absl::OkStatus();
}

}  // namespace leadflow::grpc_util
