// `leadctl load --baseline` at a small scale against the five service binaries (real Kafka,
// real redis-servers), so the load tool, its verifier and the raw-bus baseline cannot rot: every
// lead sent is captured and then routed or nurtured, and no effect is doubled. Requires
// LEADFLOW_TEST_ENV.

#include <filesystem>
#include <fstream>
#include <sstream>

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

TEST(LoadToolTest, EveryLeadIsCapturedAndRoutedOrNurturedAndNothingIsDoubled) {
  if (!testing::TestEnv::Available()) GTEST_SKIP() << "LEADFLOW_TEST_ENV not set";
  absl::StatusOr<testing::TestEnv> env = testing::TestEnv::Load();
  ASSERT_TRUE(env.ok()) << env.status();
  ASSERT_TRUE(
      testing::WaitForKafka(testing::KafkaProps(env->kafka_bootstrap()), absl::Seconds(30)).ok());
  const std::string prefix = testing::TestEnv::UniqueName("load") + ".";
  absl::StatusOr<std::unique_ptr<PipelineStack>> stack =
      PipelineStack::Start(env->kafka_bootstrap(), prefix);
  ASSERT_TRUE(stack.ok()) << stack.status();

  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("leadflow-" + prefix + "tool");
  std::filesystem::create_directories(dir);
  const std::string env_file = (dir / "stack.env").string();
  std::ofstream(env_file) << "LEADFLOW_KAFKA_BOOTSTRAP_SERVERS=" << env->kafka_bootstrap()
                          << "\nLEADFLOW_CAPTURE_GRPC_ADDR=" << (*stack)->GrpcAddress("capture")
                          << "\n";
  const std::string log = (dir / "leadctl.log").string();
  const std::string json = (dir / "report.json").string();
  absl::StatusOr<std::unique_ptr<testing::Subprocess>> leadctl =
      testing::Subprocess::Start(absl::StrCat(LEADFLOW_BINARY_DIR, "/tools/leadctl/leadctl"),
                                 {"load", "--env", env_file, "--prefix", prefix, "--leads", "150",
                                  "--rate", "50", "--grpc-fraction", "0.2", "--duplicate-fraction",
                                  "0.1", "--settle-seconds", "240", "--baseline", "--json", json},
                                 {}, log);
  ASSERT_TRUE(leadctl.ok()) << leadctl.status();
  std::optional<int> code = (*leadctl)->Wait(absl::Minutes(8));
  std::stringstream output;
  output << std::ifstream(log).rdbuf();
  ASSERT_EQ(code.value_or(-1), 0) << output.str();
  EXPECT_THAT(output.str(), HasSubstr("unaccounted 0"));
  EXPECT_THAT(output.str(), HasSubstr("duplicate effects 0"));

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
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

// `leadctl bus`: the raw bus alone, one hop, with a producer queue far smaller than the messages
// sent (librdkafka's queue.buffering.max.messages), so a full queue must be waited out and not
// drop a message.
TEST(LoadToolTest, BusCarriesEveryMessageThroughOneHopPastAFullProducerQueue) {
  if (!testing::TestEnv::Available()) GTEST_SKIP() << "LEADFLOW_TEST_ENV not set";
  absl::StatusOr<testing::TestEnv> env = testing::TestEnv::Load();
  ASSERT_TRUE(env.ok()) << env.status();
  ASSERT_TRUE(
      testing::WaitForKafka(testing::KafkaProps(env->kafka_bootstrap()), absl::Seconds(30)).ok());
  const std::string prefix = testing::TestEnv::UniqueName("bus") + ".";
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("leadflow-" + prefix + "tool");
  std::filesystem::create_directories(dir);
  const std::string env_file = (dir / "stack.env").string();
  std::ofstream(env_file) << "LEADFLOW_KAFKA_BOOTSTRAP_SERVERS=" << env->kafka_bootstrap() << "\n";
  const std::string log = (dir / "leadctl.log").string();
  absl::StatusOr<std::unique_ptr<testing::Subprocess>> leadctl =
      testing::Subprocess::Start(absl::StrCat(LEADFLOW_BINARY_DIR, "/tools/leadctl/leadctl"),
                                 {"bus", "--env", env_file, "--prefix", prefix, "--hops", "1",
                                  "--messages", "20000", "--queue-messages", "500"},
                                 {}, log);
  ASSERT_TRUE(leadctl.ok()) << leadctl.status();
  std::optional<int> code = (*leadctl)->Wait(absl::Minutes(4));
  std::stringstream output;
  output << std::ifstream(log).rdbuf();
  ASSERT_EQ(code.value_or(-1), 0) << output.str();
  EXPECT_THAT(output.str(), HasSubstr("through 1 hops (20000 of 20000 messages"));
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace leadflow::e2e
