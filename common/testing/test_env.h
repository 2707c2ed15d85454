#pragma once

// TestEnv: the environment integration tests run against, written by `scripts/stack.sh up` as
// KEY=VALUE lines and named by the LEADFLOW_TEST_ENV variable (scripts/test.sh sets it).
//
// Policy: a test that needs the stack calls GTEST_SKIP() only when LEADFLOW_TEST_ENV is absent
// (a plain `ctest` on a laptop). When it is set, the stack is meant to be there, so a missing
// file, a missing key or an unreachable broker must FAIL the test, never skip it:
//
//   if (!TestEnv::Available()) GTEST_SKIP() << "LEADFLOW_TEST_ENV not set";
//   absl::StatusOr<TestEnv> env = TestEnv::Load();
//   ASSERT_TRUE(env.ok()) << env.status();
//   ASSERT_TRUE(WaitForKafka(env->kafka_bootstrap(), absl::Seconds(30)).ok());
//
// Tests share one broker: every topic and consumer group a test creates takes a UniqueName()
// prefix, like a deployment's LEADFLOW_TOPIC_PREFIX.

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace leadflow::testing {

inline constexpr char kTestEnvVariable[] = "LEADFLOW_TEST_ENV";

class TestEnv {
 public:
  // True when LEADFLOW_TEST_ENV is set (even if the file turns out to be unusable).
  static bool Available();
  // Reads the file LEADFLOW_TEST_ENV names. FAILED_PRECONDITION when the variable is unset,
  // NOT_FOUND when the file cannot be read, INVALID_ARGUMENT for a malformed line or a missing
  // LEADFLOW_KAFKA_BOOTSTRAP_SERVERS.
  static absl::StatusOr<TestEnv> Load();
  // Parses KEY=VALUE text (blank lines and '#' comments allowed).
  static absl::StatusOr<TestEnv> Parse(std::string_view text);

  const std::string& kafka_bootstrap() const { return kafka_bootstrap_; }
  // Any other key of the file, e.g. LEADFLOW_SCORING_REDIS_ADDR.
  std::optional<std::string> Get(const std::string& key) const;

  // "<base>-<pid>-<microseconds>-<counter>": unique across processes sharing the broker and
  // across calls in one process; valid as a topic name and a consumer group id when `base` is.
  static std::string UniqueName(std::string_view base);

 private:
  std::map<std::string, std::string> values_;
  std::string kafka_bootstrap_;
};

}  // namespace leadflow::testing
