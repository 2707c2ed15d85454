#include "common/testing/test_env.h"

#include <set>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace leadflow::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Optional;

TEST(TestEnvTest, ParsesTheStackEnvironmentFile) {
  absl::StatusOr<TestEnv> env = TestEnv::Parse(
      "LEADFLOW_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:19092\n"
      "# comment\n"
      "\n"
      "LEADFLOW_SCORING_REDIS_ADDR=127.0.0.1:16383\n"
      "LEADFLOW_STACK_SERVICES=\n");
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->kafka_bootstrap(), "127.0.0.1:19092");
  EXPECT_THAT(env->Get("LEADFLOW_SCORING_REDIS_ADDR"), Optional(std::string("127.0.0.1:16383")));
  EXPECT_THAT(env->Get("LEADFLOW_STACK_SERVICES"), Optional(std::string("")));
  EXPECT_EQ(env->Get("LEADFLOW_NOPE"), std::nullopt);
}

TEST(TestEnvTest, MissingBootstrapOrMalformedLinesAreErrors) {
  EXPECT_EQ(TestEnv::Parse("LEADFLOW_X=1\n").status().code(), absl::StatusCode::kInvalidArgument);
  absl::Status bad = TestEnv::Parse("LEADFLOW_KAFKA_BOOTSTRAP_SERVERS=b:1\nnot a pair\n").status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.message()), HasSubstr("line 2"));
}

TEST(TestEnvTest, LoadFailsInsteadOfSkippingWhenTheNamedFileIsMissing) {
  const char* saved = std::getenv(kTestEnvVariable);
  const std::string restore = saved != nullptr ? saved : "";
  setenv(kTestEnvVariable, "/nonexistent/stack.env", 1);
  EXPECT_TRUE(TestEnv::Available());
  EXPECT_EQ(TestEnv::Load().status().code(), absl::StatusCode::kNotFound);
  unsetenv(kTestEnvVariable);
  EXPECT_FALSE(TestEnv::Available());
  EXPECT_EQ(TestEnv::Load().status().code(), absl::StatusCode::kFailedPrecondition);
  if (saved != nullptr) setenv(kTestEnvVariable, restore.c_str(), 1);
}

TEST(TestEnvTest, UniqueNamesAreDistinctAndValidTopicNames) {
  std::set<std::string> names;
  for (int i = 0; i < 100; ++i) names.insert(TestEnv::UniqueName("consumer-loop"));
  EXPECT_EQ(names.size(), 100u);
  EXPECT_THAT(*names.begin(), MatchesRegex("consumer-loop-[0-9]+-[0-9]+-[0-9]+"));
}

}  // namespace
}  // namespace leadflow::testing
