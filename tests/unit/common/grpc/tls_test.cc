// The TLS settings' checks that need no certificate: combinations of options and files that do
// not exist or hold no PEM. Valid certificates, handshakes and rotation are in
// tests/integration/common/grpc/tls_test.cc. No sockets: Dialer::Create only reads files.

#include "common/grpc/tls.h"

#include <fstream>
#include <string>

#include "common/grpc/channel.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace leadflow::grpc_util {
namespace {

using ::testing::HasSubstr;

std::string Absent() { return ::testing::TempDir() + "/leadflow-absent.pem"; }

// Written by TlsFilesTest before any test of a suite runs.
std::string NotPem() { return ::testing::TempDir() + "/leadflow-not-pem.txt"; }

class TlsFilesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { std::ofstream(NotPem()) << "hello, I am no certificate\n"; }
};

TEST(ServerTlsTest, PlaintextNeedsNoFiles) {
  EXPECT_TRUE(CheckServerTls({}).ok());
  EXPECT_FALSE(ServerTlsOptions{}.enabled());
}

struct ServerCase {
  std::string name;
  ServerTlsOptions tls;
  std::string message;  // a part of the error
};

void PrintTo(const ServerCase& c, std::ostream* os) { *os << c.name; }

class ServerTlsCheckTest : public TlsFilesTest, public ::testing::WithParamInterface<ServerCase> {};

TEST_P(ServerTlsCheckTest, BadSettingIsInvalidArgument) {
  absl::Status s = CheckServerTls(GetParam().tls);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(s.message(), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Settings, ServerTlsCheckTest,
    ::testing::Values(ServerCase{"ClientCaWithoutCertificate", {"", "", "/ca.crt"}, "client CA"},
                      ServerCase{"CertificateWithoutKey", {"/tls.crt", "", ""}, "private key"},
                      ServerCase{"KeyWithoutCertificate", {"", "/tls.key", ""}, "certificate"},
                      ServerCase{"SubSecondRefresh",
                                 {"/tls.crt", "/tls.key", "", absl::Milliseconds(500)},
                                 "at least 1 s"},
                      ServerCase{"MissingCertificate", {Absent(), "/tls.key", ""}, Absent()},
                      ServerCase{
                          "CertificateFileWithoutPem", {NotPem(), "/tls.key", ""}, NotPem()}),
    [](const ::testing::TestParamInfo<ServerCase>& info) { return info.param.name; });

using ReadPemCertificatesTest = TlsFilesTest;

TEST_F(ReadPemCertificatesTest, ErrorsNameTheFile) {
  absl::StatusOr<std::string> absent = ReadPemCertificates(Absent());
  EXPECT_EQ(absent.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(absent.status().message(), HasSubstr(Absent() + ": cannot read"));
  absl::StatusOr<std::string> not_pem = ReadPemCertificates(NotPem());
  EXPECT_EQ(not_pem.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(not_pem.status().message(), HasSubstr(NotPem() + ": no PEM certificate"));
}

TEST(DialerTest, NoOptionsDialPlaintext) {
  absl::StatusOr<Dialer> dialer = Dialer::Create({});
  ASSERT_TRUE(dialer.ok()) << dialer.status();
  EXPECT_FALSE(dialer->tls());
  EXPECT_FALSE(Dialer().tls());
}

struct ClientCase {
  std::string name;
  ClientTlsOptions tls;
  std::string message;
};

void PrintTo(const ClientCase& c, std::ostream* os) { *os << c.name; }

class DialerCreateTest : public TlsFilesTest, public ::testing::WithParamInterface<ClientCase> {};

TEST_P(DialerCreateTest, BadSettingIsInvalidArgument) {
  absl::StatusOr<Dialer> dialer = Dialer::Create(GetParam().tls);
  EXPECT_EQ(dialer.status().code(), absl::StatusCode::kInvalidArgument) << dialer.status();
  EXPECT_THAT(dialer.status().message(), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Settings, DialerCreateTest,
    ::testing::Values(ClientCase{"ServerNameWithoutTls", {"", "", "", "capture"}, "needs TLS"},
                      ClientCase{"CertificateWithoutKey", {"", "/c.crt", "", ""}, "give both"},
                      ClientCase{"KeyWithoutCertificate", {"", "", "/c.key", ""}, "give both"},
                      ClientCase{"MissingCa", {Absent(), "", "", ""}, Absent()},
                      ClientCase{"CaFileWithoutPem", {NotPem(), "", "", ""}, NotPem()},
                      ClientCase{
                          "MissingClientCertificate", {"", Absent(), "/c.key", ""}, Absent()}),
    [](const ::testing::TestParamInfo<ClientCase>& info) { return info.param.name; });

}  // namespace
}  // namespace leadflow::grpc_util
