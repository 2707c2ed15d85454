// GrpcServer with TLS and mutual TLS, dialed through Dialer, on loopback: who gets through to
// the health service and who does not, what a bad file does at start, and a certificate renewed
// on disk taking effect without a restart. The certificates are made at test time by the
// `openssl` CLI in a temporary directory: two CAs, server certificates for localhost /
// 127.0.0.1, client certificates.

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/grpc/channel.h"
#include "common/grpc/server.h"
#include "common/grpc/tls.h"
#include "common/testing/subprocess.h"
#include "common/testing/wait.h"
#include "gmock/gmock.h"
#include "google/protobuf/wrappers.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "gtest/gtest.h"

namespace leadflow::grpc_util {
namespace {

namespace fs = std::filesystem;
using ::leadflow::testing::Subprocess;
using ::leadflow::testing::WaitFor;
using ::testing::HasSubstr;

constexpr int kServing = 1;     // grpc.health.v1.HealthCheckResponse.SERVING
constexpr int kNotServing = 2;  // NOT_SERVING

// Profiles for `openssl req -x509 -extensions <profile>`.
constexpr char kOpensslConfig[] = R"([req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
)";

// A temporary directory of throwaway PEM files, removed with the object.
class Pki {
 public:
  static absl::StatusOr<std::unique_ptr<Pki>> Create() {
    std::string pattern = (fs::temp_directory_path() / "leadflow-tls-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) return absl::InternalError("mkdtemp failed");
    auto pki = std::unique_ptr<Pki>(new Pki(pattern));
    std::ofstream(pki->Path("openssl.cnf")) << kOpensslConfig;
    return pki;
  }
  ~Pki() { fs::remove_all(dir_); }

  std::string Path(const std::string& file) const { return (fs::path(dir_) / file).string(); }
  const std::string& dir() const { return dir_; }

  // <name>.crt and <name>.key: a self-signed CA.
  absl::Status MakeCa(const std::string& name) { return MakeCert(name, "ca", {}); }
  // <name>.crt and <name>.key, signed by the CA `ca`; `profile` is "server" or "client".
  absl::Status MakeLeaf(const std::string& name, const std::string& ca,
                        const std::string& profile) {
    return MakeCert(name, profile, {"-CA", Path(ca + ".crt"), "-CAkey", Path(ca + ".key")});
  }

 private:
  explicit Pki(std::string dir) : dir_(std::move(dir)) {}

  absl::Status MakeCert(const std::string& name, const std::string& profile,
                        std::vector<std::string> signer) {
    std::vector<std::string> args = {"req",
                                     "-x509",
                                     "-config",
                                     Path("openssl.cnf"),
                                     "-extensions",
                                     profile,
                                     "-newkey",
                                     "ec",
                                     "-pkeyopt",
                                     "ec_paramgen_curve:P-256",
                                     "-nodes",
                                     "-days",
                                     "2",
                                     "-subj",
                                     "/CN=" + name,
                                     "-keyout",
                                     Path(name + ".key"),
                                     "-out",
                                     Path(name + ".crt")};
    args.insert(args.end(), signer.begin(), signer.end());
    const std::string log = Path("openssl.log");
    absl::StatusOr<std::unique_ptr<Subprocess>> openssl =
        Subprocess::Start("openssl", args, {}, log);
    if (!openssl.ok()) return openssl.status();
    const std::optional<int> code = (*openssl)->Wait(absl::Seconds(60));
    if (code != 0) {
      std::ifstream in(log);
      const std::string output((std::istreambuf_iterator<char>(in)), {});
      return absl::InternalError(absl::StrCat("openssl for ", name, " failed: ", output));
    }
    return absl::OkStatus();
  }

  std::string dir_;
};

// grpc.health.v1.Health/Check over `channel`: the ServingStatus, or the call's error. The health
// messages have the wire format of protobuf's wrappers (HealthCheckRequest {string service = 1}
// is a StringValue, HealthCheckResponse {ServingStatus status = 1} an Int32Value), so no
// health.proto is needed.
absl::StatusOr<int> HealthOf(const std::shared_ptr<grpc::Channel>& channel) {
  grpc::TemplatedGenericStub<google::protobuf::StringValue, google::protobuf::Int32Value> stub(
      channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  google::protobuf::StringValue request;  // service "": the server as a whole
  google::protobuf::Int32Value response;
  grpc::Status status;
  absl::Notification done;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&](grpc::Status s) {
                   status = std::move(s);
                   done.Notify();
                 });
  done.WaitForNotification();
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  }
  return response.value();
}

class GrpcTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Pki>> pki = Pki::Create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *std::move(pki);
    for (const char* ca : {"ca", "other_ca"}) {
      absl::Status s = pki_->MakeCa(ca);
      ASSERT_TRUE(s.ok()) << s;
    }
    for (const auto& [name, ca, profile] :
         {std::tuple{"server", "ca", "server"}, std::tuple{"client", "ca", "client"},
          std::tuple{"stranger", "other_ca", "client"}}) {
      absl::Status s = pki_->MakeLeaf(name, ca, profile);
      ASSERT_TRUE(s.ok()) << s;
    }
  }

  ServerTlsOptions ServerTls(bool mutual) const {
    ServerTlsOptions tls;
    tls.cert_file = pki_->Path("server.crt");
    tls.key_file = pki_->Path("server.key");
    if (mutual) tls.client_ca_file = pki_->Path("ca.crt");
    tls.refresh_interval = absl::Seconds(1);
    return tls;
  }

  // Starts a SERVING server on 127.0.0.1 with `options` as server_.
  void StartServer(const GrpcServerOptions& options) {
    absl::StatusOr<std::unique_ptr<GrpcServer>> server =
        GrpcServer::Start("127.0.0.1:0", {}, options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    server_->SetServing(true);
  }
  void StartTlsServer(bool mutual) {
    GrpcServerOptions options;
    options.tls = ServerTls(mutual);
    StartServer(options);
  }

  // The health status a fresh client with `tls` gets from `port` (default: the API port).
  absl::StatusOr<int> Health(const ClientTlsOptions& tls, int port = 0) const {
    absl::StatusOr<Dialer> dialer = Dialer::Create(tls);
    if (!dialer.ok()) return dialer.status();
    return HealthOf(dialer->Dial(absl::StrCat("127.0.0.1:", port != 0 ? port : server_->port())));
  }
  ClientTlsOptions Trusting(const std::string& ca) const {
    ClientTlsOptions tls;
    tls.ca_file = pki_->Path(ca + ".crt");
    return tls;
  }
  ClientTlsOptions WithCertificate(const std::string& ca, const std::string& client) const {
    ClientTlsOptions tls = Trusting(ca);
    tls.cert_file = pki_->Path(client + ".crt");
    tls.key_file = pki_->Path(client + ".key");
    return tls;
  }

  std::unique_ptr<Pki> pki_;
  std::unique_ptr<GrpcServer> server_;
};

TEST_F(GrpcTlsTest, PlaintextStaysTheDefault) {
  StartServer({});
  EXPECT_EQ(Health({}).value_or(-1), kServing);
  EXPECT_FALSE(Health(Trusting("ca")).ok());
}

TEST_F(GrpcTlsTest, ClientTrustingTheCaReachesTheHealthService) {
  StartTlsServer(/*mutual=*/false);
  absl::StatusOr<int> health = Health(Trusting("ca"));
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, kServing);
  // A client certificate is not asked for, and not in the way when one is given.
  EXPECT_EQ(Health(WithCertificate("ca", "client")).value_or(-1), kServing);
}

TEST_F(GrpcTlsTest, ServerNameOverrideIsWhatTheCertificateMustCarry) {
  StartTlsServer(/*mutual=*/false);
  ClientTlsOptions tls = Trusting("ca");
  tls.server_name = "localhost";  // the certificate's DNS name, dialing 127.0.0.1
  EXPECT_EQ(Health(tls).value_or(-1), kServing);
  tls.server_name = "capture.leadflow.svc";  // not in the certificate
  EXPECT_FALSE(Health(tls).ok());
}

TEST_F(GrpcTlsTest, MutualTlsAdmitsAClientCertificateSignedByTheClientCa) {
  StartTlsServer(/*mutual=*/true);
  absl::StatusOr<int> health = Health(WithCertificate("ca", "client"));
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, kServing);
}

// Clients a TLS server must turn away: the handshake fails, and with it the call (UNAVAILABLE).
struct RefusedCase {
  std::string name;
  bool mutual;              // the server asks for client certificates signed by "ca"
  std::string trust_ca;     // the CA the client verifies the server against; "": plaintext
  std::string client_cert;  // the client's certificate; "": none
};

void PrintTo(const RefusedCase& c, std::ostream* os) { *os << c.name; }

class GrpcTlsRefusedTest : public GrpcTlsTest, public ::testing::WithParamInterface<RefusedCase> {};

TEST_P(GrpcTlsRefusedTest, ClientIsRefused) {
  StartTlsServer(GetParam().mutual);
  ClientTlsOptions tls;
  if (!GetParam().trust_ca.empty()) tls = Trusting(GetParam().trust_ca);
  if (!GetParam().client_cert.empty()) {
    tls = WithCertificate(GetParam().trust_ca, GetParam().client_cert);
  }
  absl::StatusOr<int> health = Health(tls);
  EXPECT_EQ(health.status().code(), absl::StatusCode::kUnavailable) << health.status();
}

INSTANTIATE_TEST_SUITE_P(
    Clients, GrpcTlsRefusedTest,
    ::testing::Values(RefusedCase{"PlaintextClient", false, "", ""},
                      RefusedCase{"ClientTrustingAnotherCa", false, "other_ca", ""},
                      RefusedCase{"MutualTlsClientWithoutCertificate", true, "ca", ""},
                      RefusedCase{"MutualTlsClientCertificateFromAnotherCa", true, "ca",
                                  "stranger"},
                      RefusedCase{"MutualTlsClientTrustingAnotherCa", true, "other_ca", "client"}),
    [](const ::testing::TestParamInfo<RefusedCase>& info) { return info.param.name; });

TEST_F(GrpcTlsTest, HealthListenerIsPlaintextAndFollowsTheServingStatus) {
  GrpcServerOptions options;
  options.tls = ServerTls(/*mutual=*/true);
  options.health_address = "127.0.0.1:0";
  StartServer(options);
  ASSERT_NE(server_->health_port(), 0);
  EXPECT_EQ(Health({}, server_->health_port()).value_or(-1), kServing);
  server_->SetServing(false);
  EXPECT_EQ(Health({}, server_->health_port()).value_or(-1), kNotServing);
  // The API listener still takes only mutual TLS.
  EXPECT_FALSE(Health({}).ok());
  EXPECT_EQ(Health(WithCertificate("ca", "client")).value_or(-1), kNotServing);
}

// A directory laid out as kubelet mounts a Secret: each <name> is a symlink to ..data/<name>,
// ..data a symlink to the current version's directory. Publish() swaps ..data in one rename, so
// a reader sees the old files or the new ones, never a mix (what cert-manager's renewals look
// like from inside the pod).
class SecretMount {
 public:
  explicit SecretMount(fs::path dir) : dir_(std::move(dir)) { fs::create_directories(dir_); }

  // Makes copies of `files` (name in the mount -> source file) the mount's contents.
  void Publish(const std::map<std::string, std::string>& files) {
    const std::string version = absl::StrCat("..v", ++versions_);
    fs::create_directory(dir_ / version);
    for (const auto& [name, source] : files) {
      fs::copy_file(source, dir_ / version / name);
      if (!fs::is_symlink(dir_ / name)) fs::create_symlink(fs::path("..data") / name, dir_ / name);
    }
    fs::create_directory_symlink(version, dir_ / "..data_tmp");
    fs::rename(dir_ / "..data_tmp", dir_ / "..data");  // atomic
  }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

 private:
  fs::path dir_;
  int versions_ = 0;
};

// The server must use a renewed certificate (here: from a new CA) for new connections within a
// few refresh intervals, without a restart.
TEST_F(GrpcTlsTest, RenewedCertificateOnDiskIsUsedWithoutRestart) {
  SecretMount mount(pki_->Path("mount"));
  mount.Publish({{"tls.crt", pki_->Path("server.crt")}, {"tls.key", pki_->Path("server.key")}});
  GrpcServerOptions options;
  options.tls.cert_file = mount.Path("tls.crt");
  options.tls.key_file = mount.Path("tls.key");
  options.tls.refresh_interval = absl::Seconds(1);
  StartServer(options);
  ASSERT_EQ(Health(Trusting("ca")).value_or(-1), kServing);
  ASSERT_TRUE(pki_->MakeCa("new_ca").ok());
  ASSERT_TRUE(pki_->MakeLeaf("new_server", "new_ca", "server").ok());
  EXPECT_FALSE(Health(Trusting("new_ca")).ok());  // not before the renewal

  mount.Publish(
      {{"tls.crt", pki_->Path("new_server.crt")}, {"tls.key", pki_->Path("new_server.key")}});
  EXPECT_TRUE(WaitFor([&] { return Health(Trusting("new_ca")).value_or(-1) == kServing; },
                      absl::Seconds(30), absl::Milliseconds(100)));
  // New connections no longer present the old certificate.
  EXPECT_TRUE(WaitFor([&] { return !Health(Trusting("ca")).ok(); }, absl::Seconds(10),
                      absl::Milliseconds(100)));
}

// The client CA is re-read like the certificate: clients of a CA put in its place get through.
TEST_F(GrpcTlsTest, ReplacedClientCaOnDiskIsUsedWithoutRestart) {
  SecretMount mount(pki_->Path("mount"));
  mount.Publish({{"ca.crt", pki_->Path("ca.crt")}});
  GrpcServerOptions options;
  options.tls = ServerTls(/*mutual=*/true);
  options.tls.client_ca_file = mount.Path("ca.crt");
  StartServer(options);
  ASSERT_EQ(Health(WithCertificate("ca", "client")).value_or(-1), kServing);
  EXPECT_FALSE(Health(WithCertificate("ca", "stranger")).ok());

  mount.Publish({{"ca.crt", pki_->Path("other_ca.crt")}});
  EXPECT_TRUE(
      WaitFor([&] { return Health(WithCertificate("ca", "stranger")).value_or(-1) == kServing; },
              absl::Seconds(30), absl::Milliseconds(100)));
  EXPECT_TRUE(WaitFor([&] { return !Health(WithCertificate("ca", "client")).ok(); },
                      absl::Seconds(10), absl::Milliseconds(100)));
}

struct BadFileCase {
  std::string name;
  // Changes a good mutual-TLS setting into a bad one; returns the file the error must name.
  std::function<std::string(ServerTlsOptions&, const Pki&)> spoil;
};

void PrintTo(const BadFileCase& c, std::ostream* os) { *os << c.name; }

class GrpcTlsBadFileTest : public GrpcTlsTest, public ::testing::WithParamInterface<BadFileCase> {};

TEST_P(GrpcTlsBadFileTest, BadFileStopsTheStartNamingTheFile) {
  ServerTlsOptions tls = ServerTls(/*mutual=*/true);
  const std::string named = GetParam().spoil(tls, *pki_);
  GrpcServerOptions options;
  options.tls = tls;
  absl::StatusOr<std::unique_ptr<GrpcServer>> server =
      GrpcServer::Start("127.0.0.1:0", {}, options);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(server.status().message(), HasSubstr(named));
}

std::string Garbage(const Pki& pki) {
  const std::string path = pki.Path("garbage.pem");
  std::ofstream(path) << "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n"
                         "-----END CERTIFICATE-----\n";
  return path;
}

INSTANTIATE_TEST_SUITE_P(
    Files, GrpcTlsBadFileTest,
    ::testing::Values(
        BadFileCase{
            "MissingCertificate",
            [](ServerTlsOptions& t, const Pki& p) { return t.cert_file = p.Path("absent.crt"); }},
        BadFileCase{"MissingKey", [](ServerTlsOptions& t,
                                     const Pki& p) { return t.key_file = p.Path("absent.key"); }},
        BadFileCase{"MissingClientCa",
                    [](ServerTlsOptions& t, const Pki& p) {
                      return t.client_ca_file = p.Path("absent-ca.crt");
                    }},
        BadFileCase{"BrokenCertificate",
                    [](ServerTlsOptions& t, const Pki& p) { return t.cert_file = Garbage(p); }},
        BadFileCase{"BrokenClientCa", [](ServerTlsOptions& t,
                                         const Pki& p) { return t.client_ca_file = Garbage(p); }},
        BadFileCase{"KeyInPlaceOfCertificate",
                    [](ServerTlsOptions& t, const Pki&) { return t.cert_file = t.key_file; }},
        BadFileCase{"CertificateInPlaceOfKey",
                    [](ServerTlsOptions& t, const Pki&) { return t.key_file = t.cert_file; }},
        BadFileCase{
            "KeyOfAnotherCertificate",
            [](ServerTlsOptions& t, const Pki& p) { return t.key_file = p.Path("client.key"); }}),
    [](const ::testing::TestParamInfo<BadFileCase>& info) { return info.param.name; });

TEST_F(GrpcTlsTest, DialerRefusesBadClientFilesNamingThem) {
  ClientTlsOptions tls = WithCertificate("ca", "client");
  tls.key_file = pki_->Path("stranger.key");
  absl::StatusOr<Dialer> dialer = Dialer::Create(tls);
  EXPECT_EQ(dialer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(dialer.status().message(), HasSubstr(tls.key_file));
  tls = Trusting("ca");
  tls.ca_file = Garbage(*pki_);
  dialer = Dialer::Create(tls);
  EXPECT_EQ(dialer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(dialer.status().message(), HasSubstr(tls.ca_file));
}

}  // namespace
}  // namespace leadflow::grpc_util
