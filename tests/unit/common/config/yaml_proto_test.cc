#include "common/config/yaml_proto.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "leadflow/config/v1/routing_rules.pb.h"
#include "leadflow/config/v1/scoring_rules.pb.h"

namespace leadflow::config {
namespace {

using ::leadflow::config::v1::RoutingRules;
using ::leadflow::config::v1::ScoringRules;
using ::testing::HasSubstr;

TEST(YamlProtoTest, NumbersBoolsAndStringsMapToTheirProtoTypes) {
  ScoringRules rules;
  absl::Status s = ParseYamlProto(R"yaml(
version: "2026.1"
engagement:
  - id: pricing-views
    activity_type: page_view
    page_category: pricing
    points: 5
    max_points: 12.5
    window_days: 7
    once: false
    min_count: 3
  - id: demo
    activity_type: demo_request
    points: -2.5e1
    once: true
thresholds:
  warm: 20
  qualified: 50.5
  sales_ready: 80
)yaml",
                                  &rules);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(rules.version(), "2026.1");
  ASSERT_EQ(rules.engagement_size(), 2);
  const auto& pricing = rules.engagement(0);
  EXPECT_EQ(pricing.id(), "pricing-views");
  EXPECT_EQ(pricing.activity_type(), "page_view");
  EXPECT_EQ(pricing.page_category(), "pricing");
  EXPECT_DOUBLE_EQ(pricing.points(), 5);
  EXPECT_DOUBLE_EQ(pricing.max_points(), 12.5);
  EXPECT_EQ(pricing.window_days(), 7);
  EXPECT_FALSE(pricing.once());
  EXPECT_EQ(pricing.min_count(), 3);
  EXPECT_DOUBLE_EQ(rules.engagement(1).points(), -25);
  EXPECT_TRUE(rules.engagement(1).once());
  EXPECT_DOUBLE_EQ(rules.thresholds().warm(), 20);
  EXPECT_DOUBLE_EQ(rules.thresholds().qualified(), 50.5);
  EXPECT_DOUBLE_EQ(rules.thresholds().sales_ready(), 80);
}

TEST(YamlProtoTest, ARecursiveAliasIsAnErrorNotAHang) {
  ScoringRules rules;
  absl::Status s = ParseYamlProto("version: &x [*x]\n", &rules);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("recursive alias"));
}

TEST(YamlProtoTest, InvalidUtf8IsAnErrorNotACrash) {
  ScoringRules rules;
  absl::Status s = ParseYamlProto("version: \"v\xff\xfe\"\n", &rules);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("not valid UTF-8"));
}

TEST(YamlProtoTest, QuotedScalarsStayStrings) {
  ScoringRules rules;
  absl::Status s = ParseYamlProto(R"yaml(
version: "3"
fit:
  - id: '42'
    reason: "true"
    when:
      - field: company_size
        equals: "500"
)yaml",
                                  &rules);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(rules.version(), "3");
  ASSERT_EQ(rules.fit_size(), 1);
  EXPECT_EQ(rules.fit(0).id(), "42");
  EXPECT_EQ(rules.fit(0).reason(), "true");
  EXPECT_EQ(rules.fit(0).when(0).equals(), "500");
}

TEST(YamlProtoTest, EnumsAreGivenByName) {
  RoutingRules rules;
  absl::Status s = ParseYamlProto(R"yaml(
version: v1
default_team: uk
teams:
  - id: uk
    strategy: STRATEGY_LEAST_LOADED
    sla_minutes: 15
    reps:
      - id: alice
        weight: 2
        working_hours:
          - days: [1, 2, 3, 4, 5]
            start: "09:00"
            end: "17:30"
  - id: us
    strategy: STRATEGY_WEIGHTED_ROUND_ROBIN
)yaml",
                                  &rules);
  ASSERT_TRUE(s.ok()) << s;
  ASSERT_EQ(rules.teams_size(), 2);
  EXPECT_EQ(rules.teams(0).strategy(), leadflow::config::v1::STRATEGY_LEAST_LOADED);
  EXPECT_EQ(rules.teams(1).strategy(), leadflow::config::v1::STRATEGY_WEIGHTED_ROUND_ROBIN);
  EXPECT_EQ(rules.teams(0).sla_minutes(), 15);
  EXPECT_EQ(rules.teams(0).reps(0).weight(), 2);
  EXPECT_EQ(rules.teams(0).reps(0).working_hours(0).days_size(), 5);
  EXPECT_EQ(rules.teams(0).reps(0).working_hours(0).end(), "17:30");
}

TEST(YamlProtoTest, LowerCamelFieldNamesAreAcceptedToo) {
  RoutingRules rules;
  absl::Status s = ParseYamlProto("defaultTeam: uk\nrouteAt: qualified\n", &rules);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(rules.default_team(), "uk");
  EXPECT_EQ(rules.route_at(), "qualified");
}

TEST(YamlProtoTest, UnknownEnumNameIsRejectedWithTheName) {
  RoutingRules rules;
  absl::Status s = ParseYamlProto("teams:\n  - id: uk\n    strategy: STRATEGY_RANDOM\n", &rules);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("STRATEGY_RANDOM"));
}

TEST(YamlProtoTest, UnknownFieldIsRejectedWithItsName) {
  ScoringRules rules;
  absl::Status s = ParseYamlProto("thresholds:\n  warm: 10\n  lukewarm: 5\n", &rules);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("lukewarm"));
}

TEST(YamlProtoTest, WrongTypeIsRejected) {
  ScoringRules rules;
  absl::Status s = ParseYamlProto("thresholds:\n  warm: high\n", &rules);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
}

TEST(YamlProtoTest, YamlSyntaxErrorReportsTheLine) {
  ScoringRules rules;
  absl::Status s =
      ParseYamlProto("version: v1\nthresholds:\n  warm: [10, 20\n  qualified: 5\n", &rules);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("YAML syntax error at line"));
  EXPECT_THAT(std::string(s.message()), ::testing::ContainsRegex("line [34],"));
}

TEST(YamlProtoTest, DocumentMustBeAMapping) {
  ScoringRules rules;
  for (const char* yaml : {"- a\n- b\n", "just a string\n", ""}) {
    absl::Status s = ParseYamlProto(yaml, &rules);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << yaml;
    EXPECT_THAT(s.message(), HasSubstr("must be a mapping")) << yaml;
  }
}

// Temporary rule files with explicitly distinct modification times: file systems record mtimes
// with coarse granularity, and two writes in one tick would look unchanged.
class RuleFile {
 public:
  RuleFile() {
    path_ = (std::filesystem::temp_directory_path() /
             absl::StrCat("leadflow-yaml-", getpid(), "-", counter_++, ".yaml"))
                .string();
  }
  ~RuleFile() {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }
  void Write(const std::string& text) {
    std::ofstream(path_, std::ios::trunc) << text;
    mtime_ += std::chrono::seconds(1);
    std::filesystem::last_write_time(path_, mtime_);
  }
  const std::string& path() const { return path_; }

 private:
  static inline std::atomic<int> counter_{0};
  std::string path_;
  std::filesystem::file_time_type mtime_ =
      std::filesystem::file_time_type::clock::now() - std::chrono::hours(1);
};

// A compiled form with a semantic check, as the services' compile functions do.
struct CompiledScoring {
  ScoringRules rules;
};

int g_loads = 0;

absl::StatusOr<std::shared_ptr<const CompiledScoring>> LoadScoring(const std::string& path) {
  ++g_loads;
  auto compiled = std::make_shared<CompiledScoring>();
  if (absl::Status s = LoadYamlProto(path, &compiled->rules); !s.ok()) return s;
  const auto& t = compiled->rules.thresholds();
  if (!(t.warm() < t.qualified())) {
    return absl::InvalidArgumentError("thresholds: warm must be below qualified");
  }
  return compiled;
}

TEST(ReloadableTest, KeepsTheRunningRulesOnAnInvalidReloadAndPicksUpAValidChange) {
  RuleFile file;
  file.Write("version: v1\nthresholds: {warm: 10, qualified: 50}\n");
  absl::StatusOr<std::unique_ptr<Reloadable<CompiledScoring>>> r =
      Reloadable<CompiledScoring>::Create(file.path(), LoadScoring);
  ASSERT_TRUE(r.ok()) << r.status();
  Reloadable<CompiledScoring>& reloadable = **r;
  EXPECT_EQ(reloadable.Current()->rules.version(), "v1");

  // Syntax error: rejected with the path and line, old rules stay.
  file.Write("version: v2\nthresholds: {warm: 10, qualified: [\n");
  absl::Status s = reloadable.ReloadIfChanged();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr(file.path()));
  EXPECT_EQ(reloadable.Current()->rules.version(), "v1");

  // Schema error (unknown field).
  file.Write("version: v3\nthresholds: {warm: 10, qualified: 50, boiling: 99}\n");
  s = reloadable.ReloadIfChanged();
  EXPECT_THAT(s.message(), HasSubstr("boiling"));
  EXPECT_EQ(reloadable.Current()->rules.version(), "v1");

  // Semantic error from the compile step.
  file.Write("version: v4\nthresholds: {warm: 60, qualified: 50}\n");
  s = reloadable.ReloadIfChanged();
  EXPECT_THAT(s.message(), HasSubstr("warm must be below qualified"));
  EXPECT_EQ(reloadable.Current()->rules.version(), "v1");

  // A valid change is picked up.
  file.Write("version: v5\nthresholds: {warm: 15, qualified: 50}\n");
  ASSERT_TRUE(reloadable.ReloadIfChanged().ok());
  EXPECT_EQ(reloadable.Current()->rules.version(), "v5");
  EXPECT_DOUBLE_EQ(reloadable.Current()->rules.thresholds().warm(), 15);
}

TEST(ReloadableTest, AnUnchangedFileIsNotReloaded) {
  RuleFile file;
  file.Write("version: v1\nthresholds: {warm: 10, qualified: 50}\n");
  absl::StatusOr<std::unique_ptr<Reloadable<CompiledScoring>>> r =
      Reloadable<CompiledScoring>::Create(file.path(), LoadScoring);
  ASSERT_TRUE(r.ok()) << r.status();
  const std::shared_ptr<const CompiledScoring> before = (*r)->Current();
  const int loads = g_loads;
  EXPECT_TRUE((*r)->ReloadIfChanged().ok());
  EXPECT_TRUE((*r)->ReloadIfChanged().ok());
  EXPECT_EQ(g_loads, loads);
  EXPECT_EQ((*r)->Current(), before) << "the same compiled rules stay in force";
}

TEST(ReloadableTest, CreateFailsFastOnAnInvalidOrMissingFile) {
  RuleFile file;
  file.Write("version: v1\nthresholds: {warm: 90, qualified: 50}\n");
  EXPECT_EQ(Reloadable<CompiledScoring>::Create(file.path(), LoadScoring).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::Status missing =
      Reloadable<CompiledScoring>::Create("/nonexistent/scoring.yaml", LoadScoring).status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.message(), HasSubstr("/nonexistent/scoring.yaml"));
}

TEST(ReloadableTest, SetForTestReplacesTheRules) {
  RuleFile file;
  file.Write("version: v1\nthresholds: {warm: 10, qualified: 50}\n");
  auto r = Reloadable<CompiledScoring>::Create(file.path(), LoadScoring);
  ASSERT_TRUE(r.ok());
  auto replacement = std::make_shared<CompiledScoring>();
  replacement->rules.set_version("manual");
  (*r)->SetForTest(replacement);
  EXPECT_EQ((*r)->Current()->rules.version(), "manual");
}

}  // namespace
}  // namespace leadflow::config
