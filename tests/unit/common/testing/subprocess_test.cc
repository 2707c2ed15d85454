#include "common/testing/subprocess.h"

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/testing/wait.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace leadflow::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Optional;

class SubprocessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log_ = (std::filesystem::temp_directory_path() /
            absl::StrCat("leadflow-subprocess-", getpid(), "-",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name(), ".log"))
               .string();
    std::filesystem::remove(log_);
  }
  void TearDown() override { std::filesystem::remove(log_); }
  std::string Log() const {
    std::ifstream in(log_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  std::string log_;
};

TEST_F(SubprocessTest, ReportsTheExitCodeAndWritesOutputToTheLog) {
  auto p = Subprocess::Start("sh", {"-c", "echo out; echo err >&2; exit 3"}, {}, log_);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_THAT((*p)->Wait(absl::Seconds(10)), Optional(3));
  EXPECT_FALSE((*p)->Running());
  EXPECT_THAT((*p)->Wait(absl::ZeroDuration()), Optional(3)) << "reaped status is remembered";
  EXPECT_THAT(Log(), HasSubstr("out\nerr\n"));
}

TEST_F(SubprocessTest, PassesExtraEnvironmentVariablesOverTheInheritedOnes) {
  ASSERT_EQ(setenv("LEADFLOW_SUBPROCESS_INHERITED", "parent", 1), 0);
  auto p = Subprocess::Start(
      "sh", {"-c", "echo \"$LEADFLOW_SUBPROCESS_INHERITED $LEADFLOW_SUBPROCESS_EXTRA\""},
      {{"LEADFLOW_SUBPROCESS_EXTRA", "child"}}, log_);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_THAT((*p)->Wait(absl::Seconds(10)), Optional(0));
  EXPECT_EQ(Log(), "parent child\n");

  auto q = Subprocess::Start("sh", {"-c", "echo $LEADFLOW_SUBPROCESS_INHERITED"},
                             {{"LEADFLOW_SUBPROCESS_INHERITED", "override"}}, log_);
  ASSERT_TRUE(q.ok());
  EXPECT_THAT((*q)->Wait(absl::Seconds(10)), Optional(0));
  EXPECT_THAT(Log(), HasSubstr("override\n"));
  unsetenv("LEADFLOW_SUBPROCESS_INHERITED");
}

TEST_F(SubprocessTest, KillEndsARunningChildAndWaitReportsTheSignal) {
  auto p = Subprocess::Start("sleep", {"60"}, {}, log_);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE((*p)->Running());
  EXPECT_EQ((*p)->Wait(absl::Milliseconds(20)), std::nullopt) << "still running";
  ASSERT_TRUE((*p)->Kill(SIGTERM).ok());
  EXPECT_THAT((*p)->Wait(absl::Seconds(10)), Optional(128 + SIGTERM));
  EXPECT_EQ((*p)->Kill(SIGTERM).code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(SubprocessTest, DestructorKillsAndReapsAChildStillRunning) {
  pid_t pid;
  {
    auto p = Subprocess::Start("sleep", {"60"}, {}, log_);
    ASSERT_TRUE(p.ok()) << p.status();
    pid = (*p)->pid();
    ASSERT_EQ(kill(pid, 0), 0);
  }
  // Reaped: the pid no longer exists (not even as a zombie).
  EXPECT_EQ(kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
}

TEST_F(SubprocessTest, MissingExecutableIsNotFound) {
  EXPECT_EQ(Subprocess::Start("leadflow-no-such-binary", {}, {}, log_).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Subprocess::Start("/nonexistent/bin/tool", {}, {}, log_).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(WaitForTest, ReturnsAsSoonAsTheConditionHoldsAndFalseAtTheDeadline) {
  int calls = 0;
  EXPECT_TRUE(WaitFor([&] { return ++calls == 3; }, absl::Seconds(10), absl::Milliseconds(1)));
  EXPECT_EQ(calls, 3);
  const absl::Time start = absl::Now();
  EXPECT_FALSE(WaitFor([] { return false; }, absl::Milliseconds(30), absl::Milliseconds(5)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(30));
  EXPECT_TRUE(WaitFor([] { return true; }, absl::ZeroDuration()));
}

}  // namespace
}  // namespace leadflow::testing
