// `leadctl load --baseline` at a small scale against the five service binaries (real Kafka,
// real redis-servers), so the load tool, its verifier and the raw-bus baseline cannot rot: every
// lead sent is captured and then routed or nurtured, and no effect is doubled. Requires
// LEADFLOW_TEST_ENV.

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/testing/kafka_test_client.h"
#include "common/testing/subprocess.h"
#include "common/testing/test_env.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/pipeline_stack.h"

namespace leadflow::e2e {
namespace {

using ::testing::HasSubstr;

// leadctl against the shared broker of LEADFLOW_TEST_ENV, from a scratch directory holding the
// endpoints file it reads (as scripts/stack.sh writes it) and its output.
class LoadToolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::TestEnv::Available()) GTEST_SKIP() << "LEADFLOW_TEST_ENV not set";
    absl::StatusOr<testing::TestEnv> env = testing::TestEnv::Load();
    ASSERT_TRUE(env.ok()) << env.status();
    bootstrap_ = env->kafka_bootstrap();
    ASSERT_TRUE(testing::WaitForKafka(testing::KafkaProps(bootstrap_), absl::Seconds(30)).ok());
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    prefix_ = testing::TestEnv::UniqueName(test->name()) + ".";
    dir_ = std::filesystem::temp_directory_path() / ("leadflow-" + prefix_ + "tool");
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  // Writes the endpoints file: the broker, plus `more` lines (NAME=value).
  std::string WriteEnvFile(const std::string& more = "") {
    const std::string env_file = (dir_ / "stack.env").string();
    std::ofstream(env_file) << "LEADFLOW_KAFKA_BOOTSTRAP_SERVERS=" << bootstrap_ << "\n" << more;
    return env_file;
  }

  // Runs leadctl with `args` until it exits (at most `timeout`); its exit code (-1: it did not
  // exit) and everything it printed.
  std::pair<int, std::string> RunLeadctl(const std::vector<std::string>& args,
                                         absl::Duration timeout) {
    const std::string log = (dir_ / "leadctl.log").string();
    absl::StatusOr<std::unique_ptr<testing::Subprocess>> leadctl = testing::Subprocess::Start(
        absl::StrCat(LEADFLOW_BINARY_DIR, "/tools/leadctl/leadctl"), args, {}, log);
    if (!leadctl.ok()) return {-1, leadctl.status().ToString()};
    std::optional<int> code = (*leadctl)->Wait(timeout);
    std::stringstream output;
    output << std::ifstream(log).rdbuf();
    return {code.value_or(-1), output.str()};
  }

  std::string bootstrap_;
  std::string prefix_;
  std::filesystem::path dir_;
};

TEST_F(LoadToolTest, EveryLeadIsCapturedAndRoutedOrNurturedAndNothingIsDoubled) {
  absl::StatusOr<std::unique_ptr<PipelineStack>> stack = PipelineStack::Start(bootstrap_, prefix_);
  ASSERT_TRUE(stack.ok()) << stack.status();
  const std::string env_file = WriteEnvFile(
      absl::StrCat("LEADFLOW_CAPTURE_GRPC_ADDR=", (*stack)->GrpcAddress("capture"), "\n"));
  const std::string json = (dir_ / "report.json").string();
  const auto [code, output] =
      RunLeadctl({"load", "--env", env_file, "--prefix", prefix_, "--leads", "150", "--rate", "50",
                  "--grpc-fraction", "0.2", "--duplicate-fraction", "0.1", "--settle-seconds",
                  "240", "--baseline", "--json", json},
                 absl::Minutes(8));
  ASSERT_EQ(code, 0) << output;
  EXPECT_THAT(output, HasSubstr("unaccounted 0"));
  EXPECT_THAT(output, HasSubstr("duplicate effects 0"));

  nlohmann::json report = nlohmann::json::parse(std::ifstream(json));
  EXPECT_EQ(report["leads_sent"], 150);
  EXPECT_EQ(report["captured"], 150);
  // Every request id sent is found on leads.captured (a wrong id scheme would list them all).
  EXPECT_TRUE(report["missing_request_ids"].empty()) << report["missing_request_ids"].dump();
  EXPECT_EQ(report["routed"].get<int>() + report["nurtured"].get<int>(), 150);
  EXPECT_EQ(report["activities_tracked"], 450);
  EXPECT_GT(report["routed"].get<int>(), 0);
  EXPECT_GT(report["latency_ms"]["p50"].get<double>(), 0);
  EXPECT_GT(report["end_to_end_per_second"].get<double>(), 0);
  // The raw-bus baseline: every message through the 4 pass-through hops.
  EXPECT_EQ(report["bus"]["hops"], 4);
  EXPECT_EQ(report["bus"]["delivered"], report["bus"]["messages"]);
  EXPECT_GT(report["bus"]["messages_per_second"].get<double>(), 0);
  EXPECT_GT(report["bus_fraction"].get<double>(), 0);
}

// `leadctl bus`: the raw bus alone, one hop, with a producer queue far smaller than the messages
// sent (librdkafka's queue.buffering.max.messages), so a full queue must be waited out and not
// drop a message.
TEST_F(LoadToolTest, BusCarriesEveryMessageThroughOneHopPastAFullProducerQueue) {
  const auto [code, output] =
      RunLeadctl({"bus", "--env", WriteEnvFile(), "--prefix", prefix_, "--hops", "1", "--messages",
                  "20000", "--queue-messages", "500"},
                 absl::Minutes(4));
  ASSERT_EQ(code, 0) << output;
  EXPECT_THAT(output, HasSubstr("through 1 hops (20000 of 20000 messages"));
}

}  // namespace
}  // namespace leadflow::e2e
