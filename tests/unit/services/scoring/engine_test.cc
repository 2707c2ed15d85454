// Tests for the scoring engine: rules, windows, decay, explanations, transitions, Diff,
// validation, and the default rule file.
#include "services/scoring/engine.h"

#include <string>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "common/config/yaml_proto.h"
#include "common/rules/time_util.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace leadflow::scoring {
namespace {

using config::v1::ScoringRules;
using events::v1::ActivityCounts;
using events::v1::LeadAggregates;
using events::v1::LeadProfile;
using events::v1::ScoreSnapshot;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const absl::Time kNow =
    absl::FromCivil(absl::CivilSecond(2024, 6, 3, 12, 0, 0), absl::UTCTimeZone());
constexpr absl::Duration kDay = absl::Hours(24);

template <typename T>
T ParseText(const std::string& text) {
  T message;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &message)) << text;
  return message;
}

// --- The YAML defaults, read by the config loader the services use. ---

template <typename T>
absl::StatusOr<T> LoadYamlConfig(const std::string& relative_path) {
  T message;
  if (absl::Status s =
          config::LoadYamlProto(std::string(LEADFLOW_SOURCE_DIR) + "/" + relative_path, &message);
      !s.ok()) {
    return s;
  }
  return message;
}

// --- Builders. ---

ActivityCounts Counts(int64_t total, int64_t d1, int64_t d7, int64_t d30, int64_t d90,
                      absl::Time last_at = kNow) {
  ActivityCounts counts;
  counts.set_total(total);
  counts.set_last_1d(d1);
  counts.set_last_7d(d7);
  counts.set_last_30d(d30);
  counts.set_last_90d(d90);
  *counts.mutable_last_at() = rules::ToTimestamp(last_at);
  return counts;
}

// Aggregates whose every activity happened in the last hour before `last_seen`.
LeadAggregates Recent(std::vector<std::pair<std::string, int64_t>> by_type,
                      std::vector<std::pair<std::string, int64_t>> by_page = {},
                      absl::Time last_seen = kNow) {
  LeadAggregates aggregates;
  for (const auto& [type, n] : by_type) {
    (*aggregates.mutable_by_type())[type] = Counts(n, n, n, n, n, last_seen);
  }
  for (const auto& [category, n] : by_page) {
    (*aggregates.mutable_by_page_category())[category] = Counts(n, n, n, n, n, last_seen);
  }
  if (!by_type.empty() || !by_page.empty()) {
    *aggregates.mutable_last_seen_at() = rules::ToTimestamp(last_seen);
    *aggregates.mutable_first_seen_at() = rules::ToTimestamp(last_seen - absl::Hours(1));
  }
  return aggregates;
}

std::shared_ptr<const CompiledScoringRules> Compile(const std::string& text) {
  auto compiled = CompileScoringRules(ParseText<ScoringRules>(text));
  EXPECT_TRUE(compiled.ok()) << compiled.status();
  return compiled.ok() ? *compiled : nullptr;
}

// A small rule set whose numbers are easy to follow by hand.
constexpr char kRules[] = R"pb(
  version: "test-1"
  thresholds { warm: 20 qualified: 50 sales_ready: 80 }
  fit {
    id: "exec"
    when { field: "seniority" equals: "executive" }
    points: 30
    reason: "Executive"
  }
  fit {
    id: "mid-size"
    when {
      field: "company_size"
      range { min: 50 max: 1000 }
    }
    points: 15
  }
  fit {
    id: "student"
    when { field: "seniority" equals: "student" }
    points: -20
  }
  engagement { id: "demo" activity_type: "demo_request" points: 40 once: true window_days: 90 }
  engagement { id: "views" activity_type: "page_view" points: 2 max_points: 10 window_days: 30 }
  engagement { id: "pricing" page_category: "pricing" points: 5 window_days: 30 }
  engagement {
    id: "pricing-binge"
    page_category: "pricing"
    points: 10
    once: true
    min_count: 3
    window_days: 7
  }
  engagement { id: "clicks-today" activity_type: "email_click" points: 3 window_days: 1 }
  engagement { id: "downloads-ever" activity_type: "download" points: 4 window_days: 0 }
  engagement {
    id: "competitor"
    activity_type: "competitor_visit"
    points: -5
    max_points: 10
    window_days: 90
  }
  negative {
    unsubscribed: -20
    bounced: -25
    lost: -30
    rules {
      id: "competitor-employee"
      when { field: "email" matches: "(?i).*@rival\\.com" }
      points: -50
      reason: "Works for a competitor"
    }
    rules {
      id: "no-budget"
      when { field: "custom.budget" equals: "none" }
      points: -15
    }
  }
  segments {
    id: "decision-makers"
    when {
      field: "seniority"
      in { values: [ "executive", "senior" ] }
    }
  }
  segments {
    id: "pricing-researchers"
    when {
      field: "page.pricing.30d"
      range { min: 1 }
    }
  }
  segments {
    id: "hot"
    when {
      field: "category"
      in { values: [ "qualified", "sales_ready" ] }
    }
  }
)pb";

class ScoringTest : public ::testing::Test {
 protected:
  std::shared_ptr<const CompiledScoringRules> rules_ = Compile(kRules);
};

std::vector<std::string> RuleIds(const ScoreSnapshot& snapshot) {
  std::vector<std::string> ids;
  for (const auto& contribution : snapshot.contributions()) ids.push_back(contribution.rule_id());
  return ids;
}

double SumInOrder(const ScoreSnapshot& snapshot) {
  double sum = 0;
  for (const auto& contribution : snapshot.contributions()) sum += contribution.points();
  return sum;
}

// --- Fit. ---

struct FitCase {
  std::string name;
  std::string profile;
  double fit;
  std::vector<std::string> rule_ids;
};

TEST_F(ScoringTest, FitRulesAddPointsForMatchingProfiles) {
  const std::vector<FitCase> cases = {
      {"executive at a mid-size company",
       R"pb(seniority: SENIORITY_EXECUTIVE company_size: 200)pb",
       45,
       {"exec", "mid-size"}},
      {"executive at an unknown-size company",
       R"pb(seniority: SENIORITY_EXECUTIVE)pb",
       30,
       {"exec"}},
      {"range upper bound is exclusive", R"pb(company_size: 1000)pb", 0, {}},
      {"range lower bound is inclusive", R"pb(company_size: 50)pb", 15, {"mid-size"}},
      {"students lose points",
       R"pb(seniority: SENIORITY_STUDENT company_size: 60)pb",
       -5,
       {"mid-size", "student"}},
      {"empty profile", "", 0, {}},
  };
  for (const FitCase& c : cases) {
    const ScoreSnapshot s =
        Score(*rules_, ParseText<LeadProfile>(c.profile), LeadAggregates(), ScoreContext(), kNow);
    EXPECT_EQ(s.fit(), c.fit) << c.name;
    EXPECT_EQ(RuleIds(s), c.rule_ids) << c.name;
    for (const auto& contribution : s.contributions()) EXPECT_EQ(contribution.kind(), "fit");
  }
}

TEST_F(ScoringTest, FitContributionsCarryTheConfiguredReasonOrTheConditions) {
  const ScoreSnapshot s = Score(*rules_, ParseText<LeadProfile>(R"pb(seniority: SENIORITY_EXECUTIVE
                                                                     company_size: 200)pb"),
                                LeadAggregates(), ScoreContext(), kNow);
  ASSERT_EQ(s.contributions_size(), 2);
  EXPECT_EQ(s.contributions(0).reason(), "Executive");
  EXPECT_EQ(s.contributions(1).reason(), "50 <= company_size < 1000");
}

// --- Engagement. ---

struct EngagementCase {
  std::string name;
  LeadAggregates aggregates;
  double engagement;
  std::vector<std::string> rule_ids;
};

TEST_F(ScoringTest, EngagementRulesCountActivityInTheirWindow) {
  const std::vector<EngagementCase> cases = {
      {"points per activity", Recent({{"page_view", 3}}), 6, {"views"}},
      {"capped by max_points", Recent({{"page_view", 9}}), 10, {"views"}},
      {"once gives the points once", Recent({{"demo_request", 3}}), 40, {"demo"}},
      {"page category counts page views of that category",
       Recent({}, {{"pricing", 2}}),
       10,
       {"pricing"}},
      {"a threshold rule stays silent below min_count",
       Recent({}, {{"pricing", 2}}),
       10,
       {"pricing"}},
      {"a threshold rule fires at min_count (3 pricing views in 7 days)",
       Recent({}, {{"pricing", 3}}),
       25,
       {"pricing", "pricing-binge"}},
      {"negative engagement is capped in magnitude",
       Recent({{"competitor_visit", 4}}),
       -10,
       {"competitor"}},
      {"unknown activity types score nothing", Recent({{"purchase", 5}}), 0, {}},
  };
  for (const EngagementCase& c : cases) {
    const ScoreSnapshot s = Score(*rules_, LeadProfile(), c.aggregates, ScoreContext(), kNow);
    EXPECT_EQ(s.engagement(), c.engagement) << c.name;
    EXPECT_EQ(RuleIds(s), c.rule_ids) << c.name;
  }
}

TEST_F(ScoringTest, EachRuleReadsItsOwnWindow) {
  // 10 clicks ever, 1 today; 6 downloads ever, none in the last 90 days.
  LeadAggregates aggregates;
  (*aggregates.mutable_by_type())["email_click"] = Counts(10, 1, 4, 8, 10, kNow - absl::Hours(2));
  (*aggregates.mutable_by_type())["download"] = Counts(6, 0, 0, 0, 0, kNow - 200 * kDay);
  *aggregates.mutable_last_seen_at() = rules::ToTimestamp(kNow - absl::Hours(2));
  const ScoreSnapshot s = Score(*rules_, LeadProfile(), aggregates, ScoreContext(), kNow);
  EXPECT_EQ(RuleIds(s), (std::vector<std::string>{"clicks-today", "downloads-ever"}));
  EXPECT_EQ(s.contributions(0).points(), 3);   // 1 click in the 1-day window
  EXPECT_EQ(s.contributions(1).points(), 24);  // 6 downloads, all time
  EXPECT_EQ(s.contributions(0).reason(), "email_click (1 in the last day)");
}

TEST_F(ScoringTest, WindowedCountsExpireWhenTheNewestActivityLeavesTheWindow) {
  // Tracking counted 3 pricing views within 7 days, but the newest is now 8 days old: the
  // 7-day threshold rule no longer fires, the 30-day rule still counts them.
  const LeadAggregates aggregates = Recent({}, {{"pricing", 3}}, kNow - 8 * kDay);
  const ScoreSnapshot s = Score(*rules_, LeadProfile(), aggregates, ScoreContext(), kNow);
  EXPECT_EQ(RuleIds(s), (std::vector<std::string>{"pricing"}));
  const ScoreSnapshot fresh =
      Score(*rules_, LeadProfile(), aggregates, ScoreContext(), kNow - 8 * kDay + absl::Hours(1));
  EXPECT_EQ(RuleIds(fresh), (std::vector<std::string>{"pricing", "pricing-binge"}));
}

TEST_F(ScoringTest, EngagementReasonsSayHowMuchWasCountedAndCapped) {
  const ScoreSnapshot s =
      Score(*rules_, LeadProfile(), Recent({{"page_view", 9}}), ScoreContext(), kNow);
  ASSERT_EQ(s.contributions_size(), 1);
  EXPECT_EQ(s.contributions(0).reason(), "page_view (9 in the last 30 days, capped at 10)");
}

// --- Decay. ---

TEST(ScoringDecayTest, EngagementHalvesEveryHalfLifeOfInactivity) {
  const auto rules = Compile(R"pb(
    thresholds { warm: 20 qualified: 50 sales_ready: 80 }
    decay { half_life_days: 30 }
    fit {
      id: "exec"
      when { field: "seniority" equals: "executive" }
      points: 30
    }
    engagement { id: "demo" activity_type: "demo_request" points: 60 once: true }
  )pb");
  const LeadProfile exec = ParseText<LeadProfile>(R"pb(seniority: SENIORITY_EXECUTIVE)pb");
  const LeadAggregates demo = Recent({{"demo_request", 1}});

  const ScoreSnapshot active = Score(*rules, exec, demo, ScoreContext(), kNow);
  EXPECT_EQ(active.total(), 90);
  EXPECT_EQ(active.category(), events::v1::CATEGORY_SALES_READY);

  // Quiet for 30 days: engagement 60 -> 30, total 60: sales-ready becomes qualified.
  const ScoreSnapshot quiet = Score(*rules, exec, demo, ScoreContext(), kNow + 30 * kDay);
  EXPECT_EQ(quiet.engagement(), 30);
  EXPECT_EQ(quiet.total(), 60);
  EXPECT_EQ(quiet.category(), events::v1::CATEGORY_QUALIFIED);
  ASSERT_EQ(quiet.contributions_size(), 3);
  EXPECT_EQ(quiet.contributions(2).kind(), "decay");
  EXPECT_EQ(quiet.contributions(2).points(), -30);
  EXPECT_EQ(quiet.contributions(2).reason(),
            "no activity for 30 days; engagement halves every 30 days");

  // Fractional decay is rounded to hundredths; 15 days is 2^-0.5.
  const ScoreSnapshot half = Score(*rules, exec, demo, ScoreContext(), kNow + 15 * kDay);
  EXPECT_EQ(half.contributions(2).points(), -17.57);  // 60 * (1 - 0.70711) = 17.574
  EXPECT_EQ(half.total(), SumInOrder(half));
}

TEST(ScoringDecayTest, PenaltiesDoNotDecayAndNoHalfLifeMeansNoDecay) {
  const auto with_half_life = Compile(R"pb(
    thresholds { warm: 20 qualified: 50 sales_ready: 80 }
    decay { half_life_days: 10 }
    engagement { id: "competitor" activity_type: "competitor_visit" points: -5 }
  )pb");
  const LeadAggregates visits = Recent({{"competitor_visit", 2}});
  const ScoreSnapshot s =
      Score(*with_half_life, LeadProfile(), visits, ScoreContext(), kNow + 40 * kDay);
  EXPECT_EQ(s.engagement(), -10);
  EXPECT_EQ(RuleIds(s), (std::vector<std::string>{"competitor"}));

  const auto without = Compile(R"pb(
    thresholds { warm: 20 qualified: 50 sales_ready: 80 }
    engagement { id: "demo" activity_type: "demo_request" points: 60 once: true }
  )pb");
  const ScoreSnapshot kept = Score(*without, LeadProfile(), Recent({{"demo_request", 1}}),
                                   ScoreContext(), kNow + 300 * kDay);
  EXPECT_EQ(kept.engagement(), 60);
}

// --- Negative signals and the sum. ---

TEST_F(ScoringTest, NegativeSignalsAreExplainedContributions) {
  ScoreContext context;
  context.unsubscribed = true;
  context.bounced = true;
  context.outcome_stage = events::v1::STAGE_LOST;
  const ScoreSnapshot s =
      Score(*rules_, LeadProfile(), Recent({{"demo_request", 1}}), context, kNow);
  EXPECT_EQ(RuleIds(s), (std::vector<std::string>{"demo", "negative.unsubscribed",
                                                  "negative.bounced", "negative.lost"}));
  EXPECT_EQ(s.contributions(1).kind(), "negative");
  EXPECT_EQ(s.total(), 40 - 20 - 25 - 30);
  EXPECT_EQ(s.engagement(), 40);  // negatives are neither fit nor engagement
}

TEST_F(ScoringTest, NegativeConditionRulesComeFromTheFile) {
  const LeadProfile competitor = ParseText<LeadProfile>(R"pb(
    email: "spy@rival.com"
    seniority: SENIORITY_EXECUTIVE
    custom { key: "budget" value: "None" }
  )pb");
  const ScoreSnapshot s = Score(*rules_, competitor, LeadAggregates(), ScoreContext(), kNow);
  EXPECT_EQ(RuleIds(s), (std::vector<std::string>{"exec", "competitor-employee", "no-budget"}));
  EXPECT_EQ(s.contributions(1).kind(), "negative");
  EXPECT_EQ(s.contributions(1).reason(), "Works for a competitor");
  EXPECT_EQ(s.contributions(2).kind(), "negative");
  EXPECT_THAT(s.contributions(2).reason(), HasSubstr("budget"));  // described from the condition
  EXPECT_EQ(s.total(), 30 - 50 - 15);
  EXPECT_EQ(s.fit(), 30);  // negatives are not fit
  EXPECT_EQ(SumInOrder(s), s.total());
}

TEST(ScoringNegativeTest, WithoutANegativeSectionNoPenaltyApplies) {
  // No built-in penalties: a file without `negative` gives none.
  const auto rules = Compile(R"pb(thresholds { warm: 20 qualified: 50 sales_ready: 80 })pb");
  ScoreContext context;
  context.unsubscribed = true;
  context.bounced = true;
  context.outcome_stage = events::v1::STAGE_LOST;
  const ScoreSnapshot s = Score(*rules, LeadProfile(), LeadAggregates(), context, kNow);
  EXPECT_THAT(s.contributions(), IsEmpty());
  EXPECT_EQ(s.total(), 0);
}

TEST_F(ScoringTest, ContributionsSumExactlyToTheTotal) {
  const LeadProfile profile = ParseText<LeadProfile>(R"pb(seniority: SENIORITY_EXECUTIVE
                                                          company_size: 300)pb");
  ScoreContext unsubscribed;
  unsubscribed.unsubscribed = true;
  const std::vector<std::pair<LeadAggregates, ScoreContext>> inputs = {
      {LeadAggregates(), ScoreContext()},
      {Recent({{"page_view", 7}, {"demo_request", 1}}, {{"pricing", 4}}), ScoreContext()},
      {Recent({{"page_view", 3}, {"competitor_visit", 1}}, {}, kNow - 13 * kDay), ScoreContext()},
      {Recent({{"email_click", 1}, {"download", 3}}, {{"pricing", 1}}, kNow - 3 * kDay),
       unsubscribed},
  };
  for (const auto& [aggregates, context] : inputs) {
    const ScoreSnapshot s = Score(*rules_, profile, aggregates, context, kNow);
    EXPECT_EQ(SumInOrder(s), s.total());
  }
  // With a fractional half-life decay too.
  const auto decaying = Compile(R"pb(
    thresholds { warm: 1 qualified: 2 sales_ready: 3 }
    decay { half_life_days: 7 }
    engagement { id: "views" activity_type: "page_view" points: 0.7 }
    engagement { id: "clicks" activity_type: "email_click" points: 1.1 }
  )pb");
  for (int days = 0; days < 60; days += 3) {
    const ScoreSnapshot s =
        Score(*decaying, LeadProfile(), Recent({{"page_view", 13}, {"email_click", 7}}),
              ScoreContext(), kNow + days * kDay);
    EXPECT_EQ(SumInOrder(s), s.total()) << days;
  }
}

TEST_F(ScoringTest, ScoringIsDeterministic) {
  const LeadProfile profile = ParseText<LeadProfile>(R"pb(seniority: SENIORITY_EXECUTIVE
                                                          company_size: 300)pb");
  const LeadAggregates aggregates =
      Recent({{"page_view", 7}, {"demo_request", 1}, {"email_click", 2}}, {{"pricing", 4}});
  const std::string first =
      Score(*rules_, profile, aggregates, ScoreContext(), kNow).SerializeAsString();
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(Score(*rules_, profile, aggregates, ScoreContext(), kNow).SerializeAsString(), first);
  }
}

TEST_F(ScoringTest, SnapshotsRecordTheRulesVersionAndTime) {
  const ScoreSnapshot s = Score(*rules_, LeadProfile(), LeadAggregates(), ScoreContext(), kNow);
  EXPECT_EQ(s.rules_version(), "test-1");
  EXPECT_EQ(rules::ToTime(s.scored_at()), kNow);
}

// --- When time alone changes the score (the decay schedule). ---

TEST(NextChangeAtTest, IsWhenHalfLifeDecayCrossesTheNextThresholdDown) {
  const auto rules = Compile(R"pb(
    thresholds { warm: 20 qualified: 50 sales_ready: 80 }
    decay { half_life_days: 30 }
    fit {
      id: "exec"
      when { field: "seniority" equals: "executive" }
      points: 30
    }
    engagement { id: "demo" activity_type: "demo_request" points: 60 once: true }
  )pb");
  const LeadProfile exec = ParseText<LeadProfile>(R"pb(seniority: SENIORITY_EXECUTIVE)pb");
  // All-time counts only: no window empties, so decay decides.
  LeadAggregates demo;
  (*demo.mutable_by_type())["demo_request"].set_total(1);
  *demo.mutable_last_seen_at() = rules::ToTimestamp(kNow);
  const ScoreSnapshot now = Score(*rules, exec, demo, ScoreContext(), kNow);
  ASSERT_EQ(now.category(), events::v1::CATEGORY_SALES_READY);

  // Bucket 100: only the threshold at 80 matters. 30 + 60 * 2^(-d/30) < 79.995 (decay is rounded
  // to hundredths) from d = 30 log2(60 / 49.995), about 7.9 days, plus a minute's margin.
  const std::optional<absl::Time> next = NextChangeAt(*rules, demo, now, 100, kNow);
  ASSERT_TRUE(next.has_value());
  EXPECT_NEAR(absl::ToDoubleHours(*next - kNow) / 24, 30 * std::log2(60 / 49.995), 0.001);
  EXPECT_EQ(Score(*rules, exec, demo, ScoreContext(), *next - absl::Minutes(2)).category(),
            events::v1::CATEGORY_SALES_READY);
  EXPECT_EQ(Score(*rules, exec, demo, ScoreContext(), *next).category(),
            events::v1::CATEGORY_QUALIFIED);

  // With a score bucket of 5 the next boundary down is 90 itself: any decay moves the bucket.
  const std::optional<absl::Time> bucket = NextChangeAt(*rules, demo, now, 5, kNow);
  ASSERT_TRUE(bucket.has_value());
  EXPECT_GT(*bucket, kNow);
  EXPECT_LE(*bucket, kNow + absl::Minutes(10));
  EXPECT_LT(Score(*rules, exec, demo, ScoreContext(), *bucket).total(), 90);
  EXPECT_EQ(Score(*rules, exec, demo, ScoreContext(), *bucket - absl::Minutes(2)).total(), 90);
}

TEST(NextChangeAtTest, IsWhenTheFirstWindowEmptiesOrInterestTurnsNotNow) {
  const auto rules = Compile(R"pb(
    thresholds { warm: 20 qualified: 50 sales_ready: 80 }
    engagement { id: "views" activity_type: "page_view" points: 1 window_days: 7 }
  )pb");
  LeadAggregates aggregates;
  // Newest page view 2 days ago; counted in the 7, 30 and 90 day windows.
  (*aggregates.mutable_by_type())["page_view"] = Counts(3, 0, 3, 3, 3, kNow - 2 * kDay);
  *aggregates.mutable_last_seen_at() = rules::ToTimestamp(kNow - 2 * kDay);
  const ScoreSnapshot s = Score(*rules, LeadProfile(), aggregates, ScoreContext(), kNow);
  EXPECT_EQ(NextChangeAt(*rules, aggregates, s, 5, kNow), kNow + 5 * kDay);
  // Later, the 90-day window; then the interest boundary (quiet for more than 90 days).
  const absl::Time window_90 = kNow - 2 * kDay + 90 * kDay;
  EXPECT_EQ(NextChangeAt(*rules, aggregates, s, 5, kNow + 80 * kDay), window_90);
  EXPECT_EQ(NextChangeAt(*rules, aggregates, s, 5, window_90), window_90 + absl::Milliseconds(1));
  // And then nothing: no activity can leave a window any more.
  EXPECT_EQ(NextChangeAt(*rules, aggregates, s, 5, kNow + 100 * kDay), std::nullopt);
  // A lead that never did anything has nothing to wait for.
  EXPECT_EQ(NextChangeAt(*rules, LeadAggregates(), s, 5, kNow), std::nullopt);
}

TEST(FingerprintTest, ChangesWithTheRulesButNotWithModelOrTaskSettings) {
  const std::string base = R"pb(thresholds { warm: 20 qualified: 50 sales_ready: 80 })pb";
  const std::string fingerprint = Compile(base)->fingerprint();
  EXPECT_EQ(Compile(base)->fingerprint(), fingerprint);
  EXPECT_NE(Compile(R"pb(thresholds { warm: 20 qualified: 50 sales_ready: 90 })pb")->fingerprint(),
            fingerprint);
  EXPECT_NE(Compile(base + R"pb(negative { lost: -5 })pb")->fingerprint(), fingerprint);
  EXPECT_EQ(Compile(base + R"pb(model { prior: 0.2 }
                                tasks { rescore_leads_per_second: 5 })pb")
                ->fingerprint(),
            fingerprint);
}

// --- Categories. ---

TEST_F(ScoringTest, CategoryThresholdsAreInclusiveLowerBounds) {
  const std::vector<std::pair<double, events::v1::Category>> cases = {
      {-10, events::v1::CATEGORY_COLD},        {0, events::v1::CATEGORY_COLD},
      {19.99, events::v1::CATEGORY_COLD},      {20, events::v1::CATEGORY_WARM},
      {49, events::v1::CATEGORY_WARM},         {50, events::v1::CATEGORY_QUALIFIED},
      {79.5, events::v1::CATEGORY_QUALIFIED},  {80, events::v1::CATEGORY_SALES_READY},
      {500, events::v1::CATEGORY_SALES_READY},
  };
  for (const auto& [total, category] : cases) {
    EXPECT_EQ(rules_->CategoryFor(total), category) << total;
  }
}

// A 3 x 3 grid: fit < 15 | 15..30 | >= 30 against engagement < 10 | 10..40 | >= 40.
constexpr char kGridRules[] = R"pb(
  version: "grid-1"
  decay { half_life_days: 10 }
  fit {
    id: "exec"
    when { field: "seniority" equals: "executive" }
    points: 30
  }
  fit {
    id: "manager"
    when { field: "seniority" equals: "manager" }
    points: 15
  }
  engagement { id: "demo" activity_type: "demo_request" points: 40 once: true }
  engagement { id: "views" activity_type: "page_view" points: 2 max_points: 20 }
  negative {
    rules {
      id: "competitor-employee"
      when { field: "email" matches: "(?i).*@rival\\.com" }
      points: -50
    }
  }
  category_grid {
    fit_bounds: [ 15, 30 ]
    engagement_bounds: [ 10, 40 ]
    rows { categories: [ "cold", "cold", "warm" ] }
    rows { categories: [ "cold", "warm", "qualified" ] }
    rows { categories: [ "warm", "qualified", "sales_ready" ] }
  }
)pb";

struct GridCase {
  std::string name;
  std::string profile;
  LeadAggregates aggregates;
  double fit;
  double engagement;
  events::v1::Category expected;
};

TEST(CategoryGridTest, TheCategoryIsTheCellOfTheFitAndEngagementBands) {
  const auto rules = Compile(kGridRules);
  ASSERT_NE(rules, nullptr);
  EXPECT_TRUE(rules->has_category_grid());
  const std::string exec = R"pb(seniority: SENIORITY_EXECUTIVE)pb";
  const std::string manager = R"pb(seniority: SENIORITY_MANAGER)pb";
  const std::string rival = R"pb(seniority: SENIORITY_EXECUTIVE email: "ceo@rival.com")pb";
  const LeadAggregates none;
  const LeadAggregates views = Recent({{"page_view", 5}});    // 10
  const LeadAggregates demo = Recent({{"demo_request", 1}});  // 40
  const std::vector<GridCase> cases = {
      {"no fit, no engagement", "", none, 0, 0, events::v1::CATEGORY_COLD},
      {"an executive who did nothing is warm, whatever the total", exec, none, 30, 0,
       events::v1::CATEGORY_WARM},
      {"lower bounds are inclusive: manager with 10 engagement", manager, views, 15, 10,
       events::v1::CATEGORY_WARM},
      {"a manager who requested a demo", manager, demo, 15, 40, events::v1::CATEGORY_QUALIFIED},
      {"an executive who requested a demo", exec, demo, 30, 40, events::v1::CATEGORY_SALES_READY},
      {"a nobody who requested a demo", "", demo, 0, 40, events::v1::CATEGORY_WARM},
      {"negative signals count on the fit axis", rival, demo, 30, 40, events::v1::CATEGORY_WARM},
  };
  for (const GridCase& c : cases) {
    const ScoreSnapshot s =
        Score(*rules, ParseText<LeadProfile>(c.profile), c.aggregates, ScoreContext(), kNow);
    EXPECT_EQ(s.fit(), c.fit) << c.name;
    EXPECT_EQ(s.engagement(), c.engagement) << c.name;
    EXPECT_EQ(s.category(), c.expected) << c.name;
    EXPECT_EQ(SumInOrder(s), s.total()) << c.name;
  }
  // The same total (50) in different cells: the grid, not the total, decides.
  EXPECT_EQ(rules->CategoryFor(50, 10), events::v1::CATEGORY_QUALIFIED);  // fit 40, engagement 10
  EXPECT_EQ(rules->CategoryFor(50, 50), events::v1::CATEGORY_WARM);       // fit 0, engagement 50
  EXPECT_EQ(rules->CategoryFor(50, 5), events::v1::CATEGORY_WARM);        // fit 45, engagement 5
}

TEST(CategoryGridTest, ContributionsStillSumToTheScoreAsEngagementDecays) {
  const auto rules = Compile(kGridRules);
  ASSERT_NE(rules, nullptr);
  const LeadProfile exec = ParseText<LeadProfile>(R"pb(seniority: SENIORITY_EXECUTIVE
                                                       email: "ceo@rival.com")pb");
  const LeadAggregates active = Recent({{"demo_request", 1}, {"page_view", 7}});
  for (int days = 0; days < 60; days += 3) {
    const ScoreSnapshot s = Score(*rules, exec, active, ScoreContext(), kNow + days * kDay);
    EXPECT_EQ(SumInOrder(s), s.total()) << days;
    EXPECT_EQ(s.category(), rules->CategoryFor(s.total(), s.engagement())) << days;
  }
}

TEST(CategoryGridTest, NextChangeAtIsWhenDecayedEngagementLeavesItsBand) {
  const auto rules = Compile(kGridRules);
  ASSERT_NE(rules, nullptr);
  const LeadProfile exec = ParseText<LeadProfile>(R"pb(seniority: SENIORITY_EXECUTIVE)pb");
  LeadAggregates demo;  // all-time count only: no window empties, so decay decides
  (*demo.mutable_by_type())["demo_request"].set_total(1);
  *demo.mutable_last_seen_at() = rules::ToTimestamp(kNow);
  const ScoreSnapshot now = Score(*rules, exec, demo, ScoreContext(), kNow);
  ASSERT_EQ(now.category(), events::v1::CATEGORY_SALES_READY);
  // Bucket 1000: only the engagement bound 40 matters, and 40 is where the engagement is, so
  // the first decay below 39.995 changes the cell: 40 * 2^(-d/10) < 39.995.
  const std::optional<absl::Time> next = NextChangeAt(*rules, demo, now, 1000, kNow);
  ASSERT_TRUE(next.has_value());
  EXPECT_NEAR(absl::ToDoubleHours(*next - kNow) / 24, 10 * std::log2(40 / 39.995), 0.001);
  EXPECT_EQ(Score(*rules, exec, demo, ScoreContext(), *next).category(),
            events::v1::CATEGORY_QUALIFIED);
  // Below 40 the next bound is 10: 40 * 2^(-d/10) < 9.995, about 20 days.
  const ScoreSnapshot later = Score(*rules, exec, demo, ScoreContext(), *next);
  const std::optional<absl::Time> after = NextChangeAt(*rules, demo, later, 1000, *next);
  ASSERT_TRUE(after.has_value());
  EXPECT_NEAR(absl::ToDoubleHours(*after - kNow) / 24, 10 * std::log2(40 / 9.995), 0.001);
  EXPECT_EQ(Score(*rules, exec, demo, ScoreContext(), *after).category(),
            events::v1::CATEGORY_WARM);
  EXPECT_EQ(Score(*rules, exec, demo, ScoreContext(), *after - absl::Minutes(2)).category(),
            events::v1::CATEGORY_QUALIFIED);
}

// --- Interest. ---

struct InterestCase {
  std::string name;
  ScoreContext context;
  LeadAggregates aggregates;
  events::v1::InterestState expected;
};

TEST_F(ScoringTest, InterestStateFollowsExplicitSignalsThenRecency) {
  ScoreContext explicit_not_now;
  explicit_not_now.explicit_interest = events::v1::INTEREST_NOT_NOW;
  ScoreContext unsubscribed;
  unsubscribed.unsubscribed = true;
  ScoreContext explicit_beats_unsubscribe = unsubscribed;
  explicit_beats_unsubscribe.explicit_interest = events::v1::INTEREST_INTERESTED;
  ScoreContext previously_not_now;
  previously_not_now.previous_interest = events::v1::INTEREST_NOT_NOW;
  const LeadAggregates today = Recent({{"page_view", 1}});
  const std::vector<InterestCase> cases = {
      {"never active", ScoreContext(), LeadAggregates(), events::v1::INTEREST_UNSPECIFIED},
      {"active today", ScoreContext(), today, events::v1::INTEREST_INTERESTED},
      {"active 30 days ago", ScoreContext(), Recent({{"page_view", 1}}, {}, kNow - 30 * kDay),
       events::v1::INTEREST_INTERESTED},
      {"quiet 60 days keeps the previous state", previously_not_now,
       Recent({{"page_view", 1}}, {}, kNow - 60 * kDay), events::v1::INTEREST_NOT_NOW},
      {"quiet 60 days with no previous state", ScoreContext(),
       Recent({{"page_view", 1}}, {}, kNow - 60 * kDay), events::v1::INTEREST_INTERESTED},
      {"quiet over 90 days is not now", ScoreContext(),
       Recent({{"page_view", 1}}, {}, kNow - 91 * kDay), events::v1::INTEREST_NOT_NOW},
      {"new activity after not now is interested again", previously_not_now, today,
       events::v1::INTEREST_INTERESTED},
      {"unsubscribed is disinterested", unsubscribed, today, events::v1::INTEREST_DISINTERESTED},
      {"explicit interest wins", explicit_not_now, today, events::v1::INTEREST_NOT_NOW},
      {"explicit interest wins over unsubscribe", explicit_beats_unsubscribe, today,
       events::v1::INTEREST_INTERESTED},
  };
  for (const InterestCase& c : cases) {
    EXPECT_EQ(Score(*rules_, LeadProfile(), c.aggregates, c.context, kNow).interest(), c.expected)
        << c.name;
  }
}

// --- Explicit interest signals. ---

constexpr char kInterestSignals[] = R"pb(
  interest {
    id: "not-now-button"
    activity { field: "name" equals: "Not Now Selected" }
    state: "not_now"
    expires_after_days: 90
  }
  interest {
    id: "timeline-next-year"
    activity { field: "type" equals: "form_submit" }
    activity {
      field: "properties.timeline"
      in { values: [ "next year", "12+ months" ] }
    }
    state: "not_now"
    expires_after_days: 180
  }
  interest {
    id: "nested-answer"
    activity { field: "properties.answers.buying" equals: "never" }
    state: "disinterested"
  }
  interest {
    id: "demo-request"
    activity { field: "type" equals: "demo_request" }
    state: "interested"
  }
  interest {
    id: "lost-timing"
    outcome { field: "kind" equals: "lost" }
    outcome { field: "reason" matches: "(?i).*timing.*" }
    state: "not_now"
    expires_after_days: 120
  }
  interest {
    id: "lost-no-need"
    outcome { field: "kind" equals: "lost" }
    outcome {
      field: "reason"
      in { values: [ "no need", "not interested" ] }
    }
    state: "disinterested"
  }
)pb";

struct ActivitySignalCase {
  std::string name;
  std::string activity;   // text format of events.v1.Activity
  std::string signal_id;  // empty: no signal
  events::v1::InterestState state;
  absl::Time until;
};

TEST_F(ScoringTest, InterestSignalsMatchTheIncomingActivity) {
  const auto rules = Compile(std::string(kRules) + kInterestSignals);
  ASSERT_NE(rules, nullptr);
  const std::vector<ActivitySignalCase> cases = {
      {"the not-now button, expiring after 90 days", R"pb(type: "not_now_selected"
                                                          name: "Not Now Selected")pb",
       "not-now-button", events::v1::INTEREST_NOT_NOW, kNow + 90 * kDay},
      {"event names compare case-insensitively", R"pb(name: "not now selected")pb",
       "not-now-button", events::v1::INTEREST_NOT_NOW, kNow + 90 * kDay},
      {"a form answer: timeline next year", R"pb(type: "form_submit"
                                                 properties {
                                                   fields {
                                                     key: "timeline"
                                                     value { string_value: "Next Year" }
                                                   }
                                                 })pb",
       "timeline-next-year", events::v1::INTEREST_NOT_NOW, kNow + 180 * kDay},
      {"the same answer outside a form does not count", R"pb(type: "page_view"
                                                             properties {
                                                               fields {
                                                                 key: "timeline"
                                                                 value { string_value: "next year" }
                                                               }
                                                             })pb",
       "", events::v1::INTEREST_UNSPECIFIED, absl::InfiniteFuture()},
      {"another timeline is no signal", R"pb(type: "form_submit"
                                             properties {
                                               fields {
                                                 key: "timeline"
                                                 value { string_value: "this quarter" }
                                               }
                                             })pb",
       "", events::v1::INTEREST_UNSPECIFIED, absl::InfiniteFuture()},
      {"a nested property, never expiring", R"pb(type: "survey"
                                                 properties {
                                                   fields {
                                                     key: "answers"
                                                     value {
                                                       struct_value {
                                                         fields {
                                                           key: "buying"
                                                           value { string_value: "never" }
                                                         }
                                                       }
                                                     }
                                                   }
                                                 })pb",
       "nested-answer", events::v1::INTEREST_DISINTERESTED, absl::InfiniteFuture()},
      {"a demo request says interested", R"pb(type: "demo_request")pb", "demo-request",
       events::v1::INTEREST_INTERESTED, absl::InfiniteFuture()},
      {"a page view says nothing", R"pb(type: "page_view" name: "Pricing")pb", "",
       events::v1::INTEREST_UNSPECIFIED, absl::InfiniteFuture()},
  };
  for (const ActivitySignalCase& c : cases) {
    const std::optional<ExplicitInterest> interest =
        rules->InterestFromActivity(ParseText<events::v1::Activity>(c.activity), kNow);
    if (c.signal_id.empty()) {
      EXPECT_EQ(interest, std::nullopt) << c.name;
      continue;
    }
    ASSERT_TRUE(interest.has_value()) << c.name;
    EXPECT_EQ(interest->signal_id, c.signal_id) << c.name;
    EXPECT_EQ(interest->state, c.state) << c.name;
    EXPECT_EQ(interest->until, c.until) << c.name;
  }
  // Outcome signals never match activities, and the other way round.
  EXPECT_EQ(
      rules->InterestFromActivity(ParseText<events::v1::Activity>(R"pb(type: "lost")pb"), kNow),
      std::nullopt);
}

TEST_F(ScoringTest, InterestSignalsMatchTheIncomingOutcome) {
  const auto rules = Compile(std::string(kRules) + kInterestSignals);
  ASSERT_NE(rules, nullptr);
  using events::v1::LeadOutcome;
  auto outcome = [](LeadOutcome::Kind kind, const std::string& reason) {
    LeadOutcome out;
    out.set_kind(kind);
    out.set_reason(reason);
    return out;
  };
  const std::optional<ExplicitInterest> timing =
      rules->InterestFromOutcome(outcome(LeadOutcome::KIND_LOST, "Bad timing"), kNow);
  ASSERT_TRUE(timing.has_value());
  EXPECT_EQ(timing->signal_id, "lost-timing");
  EXPECT_EQ(timing->state, events::v1::INTEREST_NOT_NOW);
  EXPECT_EQ(timing->until, kNow + 120 * kDay);

  const std::optional<ExplicitInterest> no_need =
      rules->InterestFromOutcome(outcome(LeadOutcome::KIND_LOST, "No need"), kNow);
  ASSERT_TRUE(no_need.has_value());
  EXPECT_EQ(no_need->signal_id, "lost-no-need");
  EXPECT_EQ(no_need->state, events::v1::INTEREST_DISINTERESTED);
  EXPECT_EQ(no_need->until, absl::InfiniteFuture());

  EXPECT_EQ(rules->InterestFromOutcome(outcome(LeadOutcome::KIND_LOST, "price"), kNow),
            std::nullopt);
  EXPECT_EQ(rules->InterestFromOutcome(outcome(LeadOutcome::KIND_REJECTED, "timing"), kNow),
            std::nullopt);
  EXPECT_EQ(rules->InterestFromOutcome(outcome(LeadOutcome::KIND_WON, ""), kNow), std::nullopt);
  // Rules without an interest section state nothing.
  EXPECT_EQ(rules_->InterestFromOutcome(outcome(LeadOutcome::KIND_LOST, "timing"), kNow),
            std::nullopt);
}

TEST_F(ScoringTest, AnExplicitInterestLastsUntilItExpiresThenRecencyDecidesAgain) {
  ScoreContext context;
  context.explicit_interest = events::v1::INTEREST_NOT_NOW;
  context.explicit_interest_until = kNow + 20 * kDay;
  const LeadAggregates active = Recent({{"page_view", 1}}, {}, kNow);
  EXPECT_EQ(Score(*rules_, LeadProfile(), active, context, kNow).interest(),
            events::v1::INTEREST_NOT_NOW);
  EXPECT_EQ(Score(*rules_, LeadProfile(), active, context, kNow + 20 * kDay - absl::Seconds(1))
                .interest(),
            events::v1::INTEREST_NOT_NOW);
  // Lapsed: active within the last 30 days is interested again.
  EXPECT_EQ(Score(*rules_, LeadProfile(), active, context, kNow + 20 * kDay).interest(),
            events::v1::INTEREST_INTERESTED);
  // An unsubscribed lead falls back to disinterested.
  context.unsubscribed = true;
  EXPECT_EQ(Score(*rules_, LeadProfile(), active, context, kNow + 21 * kDay).interest(),
            events::v1::INTEREST_DISINTERESTED);

  // The decay schedule wakes up when the statement lapses, even with nothing else to wait for.
  const auto plain = Compile(R"pb(thresholds { warm: 20 qualified: 50 sales_ready: 80 })pb");
  const ScoreSnapshot s = Score(*plain, LeadProfile(), LeadAggregates(), context, kNow);
  EXPECT_EQ(NextChangeAt(*plain, LeadAggregates(), s, 5, kNow), std::nullopt);
  EXPECT_EQ(NextChangeAt(*plain, LeadAggregates(), s, 5, kNow, kNow + 20 * kDay), kNow + 20 * kDay);
  EXPECT_EQ(NextChangeAt(*plain, LeadAggregates(), s, 5, kNow + 20 * kDay, kNow + 20 * kDay),
            std::nullopt);
}

// --- Stage. ---

struct StageCase {
  std::string name;
  std::string profile;
  LeadAggregates aggregates;
  ScoreContext context;
  events::v1::LifecycleStage expected;
};

ScoreContext Context(events::v1::LifecycleStage previous, events::v1::LifecycleStage outcome,
                     absl::Time outcome_at = absl::InfiniteFuture()) {
  ScoreContext context;
  context.previous_stage = previous;
  context.outcome_stage = outcome;
  context.outcome_at = outcome_at;
  return context;
}

TEST_F(ScoringTest, LifecycleStageMovesForwardAndLostLeadsRecycle) {
  using events::v1::STAGE_CONTACTED;
  using events::v1::STAGE_CUSTOMER;
  using events::v1::STAGE_ENGAGED;
  using events::v1::STAGE_LOST;
  using events::v1::STAGE_NEW;
  using events::v1::STAGE_OPPORTUNITY;
  using events::v1::STAGE_QUALIFIED;
  using events::v1::STAGE_UNSPECIFIED;
  const std::string exec = R"pb(seniority: SENIORITY_EXECUTIVE company_size: 200)pb";  // fit 45
  const LeadAggregates view = Recent({{"page_view", 1}});                              // +2
  const LeadAggregates demo = Recent({{"demo_request", 1}});                           // +40
  const absl::Time lost_at = kNow - 10 * kDay;
  const std::vector<StageCase> cases = {
      {"a new lead with no activity is new", "", LeadAggregates(), ScoreContext(), STAGE_NEW},
      {"any activity makes it engaged", "", view, ScoreContext(), STAGE_ENGAGED},
      {"a qualified category makes it qualified", exec, demo, ScoreContext(), STAGE_QUALIFIED},
      {"a contacted outcome lifts a new lead", "", LeadAggregates(),
       Context(STAGE_UNSPECIFIED, STAGE_CONTACTED), STAGE_CONTACTED},
      {"a contacted outcome does not pull a qualified lead back", exec, demo,
       Context(STAGE_QUALIFIED, STAGE_CONTACTED), STAGE_QUALIFIED},
      {"an opportunity outcome", "", view, Context(STAGE_ENGAGED, STAGE_OPPORTUNITY),
       STAGE_OPPORTUNITY},
      {"a won deal makes a customer", "", view, Context(STAGE_OPPORTUNITY, STAGE_CUSTOMER),
       STAGE_CUSTOMER},
      {"never backwards: qualified stays qualified when the score drops", "", view,
       Context(STAGE_QUALIFIED, STAGE_UNSPECIFIED), STAGE_QUALIFIED},
      {"never backwards: a customer stays a customer", "", LeadAggregates(),
       Context(STAGE_CUSTOMER, STAGE_UNSPECIFIED), STAGE_CUSTOMER},
      {"a lost outcome makes the lead lost", exec,
       Recent({{"demo_request", 1}}, {}, lost_at - kDay),
       Context(STAGE_OPPORTUNITY, STAGE_LOST, lost_at), STAGE_LOST},
      {"a lost lead stays lost without new activity", "",
       Recent({{"page_view", 1}}, {}, lost_at - kDay), Context(STAGE_LOST, STAGE_LOST, lost_at),
       STAGE_LOST},
      {"activity after the loss recycles the lead into engaged", "",
       Recent({{"page_view", 1}}, {}, lost_at + kDay), Context(STAGE_LOST, STAGE_LOST, lost_at),
       STAGE_ENGAGED},
      {"a recycled lead still moves forward within its new episode", "",
       Recent({{"page_view", 1}}, {}, lost_at + kDay),
       Context(STAGE_QUALIFIED, STAGE_LOST, lost_at), STAGE_QUALIFIED},
      {"a lost outcome without a time never recycles", "", view, Context(STAGE_LOST, STAGE_LOST),
       STAGE_LOST},
  };
  for (const StageCase& c : cases) {
    EXPECT_EQ(
        Score(*rules_, ParseText<LeadProfile>(c.profile), c.aggregates, c.context, kNow).stage(),
        c.expected)
        << c.name;
  }
}

TEST(StageForOutcomeTest, MapsOutcomesToStages) {
  using events::v1::LeadOutcome;
  EXPECT_EQ(StageForOutcome(LeadOutcome::KIND_CONTACTED), events::v1::STAGE_CONTACTED);
  EXPECT_EQ(StageForOutcome(LeadOutcome::KIND_QUALIFIED), events::v1::STAGE_QUALIFIED);
  EXPECT_EQ(StageForOutcome(LeadOutcome::KIND_OPPORTUNITY), events::v1::STAGE_OPPORTUNITY);
  EXPECT_EQ(StageForOutcome(LeadOutcome::KIND_WON), events::v1::STAGE_CUSTOMER);
  EXPECT_EQ(StageForOutcome(LeadOutcome::KIND_LOST), events::v1::STAGE_LOST);
  EXPECT_EQ(StageForOutcome(LeadOutcome::KIND_ACCEPTED), events::v1::STAGE_UNSPECIFIED);
  EXPECT_EQ(StageForOutcome(LeadOutcome::KIND_REJECTED), events::v1::STAGE_UNSPECIFIED);
  EXPECT_EQ(StageForOutcome(static_cast<LeadOutcome::Kind>(99)), events::v1::STAGE_UNSPECIFIED);
}

// --- Segments and Diff. ---

TEST_F(ScoringTest, SegmentsUseProfileActivityAndTheNewScore) {
  const LeadProfile exec = ParseText<LeadProfile>(R"pb(seniority: SENIORITY_EXECUTIVE
                                                       company_size: 200)pb");
  const ScoreSnapshot before = Score(*rules_, exec, LeadAggregates(), ScoreContext(), kNow);
  EXPECT_THAT(before.segments(), ElementsAre("decision-makers"));
  const ScoreSnapshot after =
      Score(*rules_, exec, Recent({}, {{"pricing", 1}}), ScoreContext(), kNow);  // 45 + 5 = 50
  EXPECT_THAT(after.segments(), ElementsAre("decision-makers", "pricing-researchers", "hot"));

  const ScoreChange change = Diff(before, after, 10);
  EXPECT_THAT(change.changed, ElementsAre("score", "category", "interest", "stage", "segments"));
  EXPECT_THAT(change.segments_entered, ElementsAre("pricing-researchers", "hot"));
  EXPECT_THAT(change.segments_exited, IsEmpty());

  const ScoreChange back = Diff(after, before, 10);
  EXPECT_THAT(back.segments_entered, IsEmpty());
  EXPECT_THAT(back.segments_exited, ElementsAre("pricing-researchers", "hot"));
}

struct DiffCase {
  std::string name;
  std::string previous;
  std::string current;
  double bucket;
  std::vector<std::string> changed;
};

TEST(DiffTest, ReportsOnlyWhatDownstreamCaresAbout) {
  const std::vector<DiffCase> cases = {
      {"identical",
       R"pb(total: 42 category: CATEGORY_WARM)pb",
       R"pb(total: 42 category: CATEGORY_WARM)pb",
       10,
       {}},
      {"a wobble inside one bucket is not a change",
       R"pb(total: 41)pb",
       R"pb(total: 49.5)pb",
       10,
       {}},
      {"crossing a bucket boundary is", R"pb(total: 49.5)pb", R"pb(total: 50)pb", 10, {"score"}},
      {"a drop across a boundary is", R"pb(total: 50)pb", R"pb(total: 49)pb", 10, {"score"}},
      {"bucket 0 compares exactly", R"pb(total: 41)pb", R"pb(total: 41.5)pb", 0, {"score"}},
      {"category",
       R"pb(category: CATEGORY_WARM)pb",
       R"pb(category: CATEGORY_QUALIFIED)pb",
       10,
       {"category"}},
      {"interest",
       R"pb(interest: INTEREST_INTERESTED)pb",
       R"pb(interest: INTEREST_NOT_NOW)pb",
       10,
       {"interest"}},
      {"stage", R"pb(stage: STAGE_NEW)pb", R"pb(stage: STAGE_ENGAGED)pb", 10, {"stage"}},
      {"segments", R"pb(segments: "a")pb", R"pb(segments: [ "a", "b" ])pb", 10, {"segments"}},
      {"segment order alone is not a change",
       R"pb(segments: [ "b", "a" ])pb",
       R"pb(segments: [ "a", "b" ])pb",
       10,
       {}},
      {"contributions and time are not compared",
       R"pb(contributions { rule_id: "x" }
            scored_at { seconds: 1 })pb",
       R"pb(contributions { rule_id: "y" }
            scored_at { seconds: 2 })pb",
       10,
       {}},
      {"the first score always differs from the empty snapshot",
       "",
       R"pb(total: 3 category: CATEGORY_COLD stage: STAGE_NEW)pb",
       10,
       {"category", "stage"}},
  };
  for (const DiffCase& c : cases) {
    const ScoreChange change =
        Diff(ParseText<ScoreSnapshot>(c.previous), ParseText<ScoreSnapshot>(c.current), c.bucket);
    EXPECT_EQ(change.changed, c.changed) << c.name;
    EXPECT_EQ(change.empty(), c.changed.empty()) << c.name;
  }
}

// --- Validation. ---

struct InvalidRulesCase {
  std::string name;
  std::string rules;
  std::string message;
};

TEST(CompileScoringRulesTest, RejectsInvalidRulesNamingThePath) {
  const std::string ok_thresholds = R"pb(thresholds { warm: 20 qualified: 50 sales_ready: 80 })pb";
  const std::vector<InvalidRulesCase> cases = {
      {"empty fit id", ok_thresholds + R"pb(fit { points: 1 })pb",
       "scoring.fit[0].id: empty rule id"},
      {"duplicate ids across fit and engagement",
       ok_thresholds + R"pb(fit { id: "a" points: 1 }
                            engagement { id: "a" activity_type: "x" points: 1 })pb",
       "scoring.engagement[0].id: duplicate rule id 'a'"},
      {"unknown field in a fit rule", ok_thresholds + R"pb(fit {
                                                             id: "a"
                                                             points: 1
                                                             when { field: "contry" equals: "GB" }
                                                           })pb",
       "scoring.fit[0].when[0].field: unknown field 'contry' (rule 'a')"},
      {"score field in a fit rule", ok_thresholds + R"pb(fit {
                                                           id: "a"
                                                           points: 1
                                                           when {
                                                             field: "score"
                                                             range { min: 1 }
                                                           }
                                                         })pb",
       "scoring.fit[0].when[0].field: field 'score' is a score field"},
      {"bad regex in a fit rule", ok_thresholds + R"pb(fit {
                                                         id: "a"
                                                         points: 1
                                                         when { field: "email" matches: "[" }
                                                       })pb",
       "scoring.fit[0].when[0].matches: invalid regular expression"},
      {"engagement without what to count",
       ok_thresholds + R"pb(engagement { id: "e" points: 1 })pb",
       "scoring.engagement[0]: needs an activity_type or a page_category (rule 'e')"},
      {"page category with another activity type",
       ok_thresholds +
           R"pb(engagement { id: "e" activity_type: "email_open" page_category: "pricing" })pb",
       "scoring.engagement[0].activity_type: page_category counts page views"},
      {"window not supported",
       ok_thresholds + R"pb(engagement { id: "e" activity_type: "x" window_days: 14 })pb",
       "scoring.engagement[0].window_days: 14 is not one of 0, 1, 7, 30, 90 (rule 'e')"},
      {"negative cap",
       ok_thresholds + R"pb(engagement { id: "e" activity_type: "x" max_points: -1 })pb",
       "scoring.engagement[0].max_points: must be >= 0"},
      {"negative min_count",
       ok_thresholds + R"pb(engagement { id: "e" activity_type: "x" min_count: -1 })pb",
       "scoring.engagement[0].min_count: must be >= 0"},
      {"no thresholds", "", "scoring.thresholds.warm: must be > 0"},
      {"thresholds not ascending", R"pb(thresholds { warm: 20 qualified: 20 sales_ready: 80 })pb",
       "scoring.thresholds.qualified: must be above warm (20)"},
      {"sales-ready below qualified",
       R"pb(thresholds { warm: 20 qualified: 50 sales_ready: 40 })pb",
       "scoring.thresholds.sales_ready: must be above qualified (50)"},
      {"negative half-life", ok_thresholds + R"pb(decay { half_life_days: -1 })pb",
       "scoring.decay.half_life_days: must be >= 0"},
      {"negative rule on an unknown field",
       ok_thresholds + R"pb(negative {
                              rules {
                                id: "n"
                                points: -5
                                when { field: "budgett" equals: "none" }
                              }
                            })pb",
       "scoring.negative.rules[0].when[0].field: unknown field 'budgett' (rule 'n')"},
      {"negative rule id shared with a fit rule",
       ok_thresholds + R"pb(fit { id: "a" points: 1 }
                            negative { rules { id: "a" points: -1 } })pb",
       "scoring.negative.rules[0].id: duplicate rule id 'a'"},
      {"invalid model settings", ok_thresholds + R"pb(model { hash_bits: 4 })pb",
       "scoring.model.hash_bits: 4 is not in 8..20"},
      {"negative re-score rate", ok_thresholds + R"pb(tasks { rescore_leads_per_second: -1 })pb",
       "scoring.tasks.rescore_leads_per_second: must be >= 0"},
      {"empty segment id", ok_thresholds + R"pb(segments {})pb", "scoring.segments[0].id: empty"},
      {"duplicate segment ids", ok_thresholds + R"pb(segments { id: "s" }
                                                     segments { id: "s" })pb",
       "scoring.segments[1].id: duplicate segment id 's'"},
      {"interest signal without id", ok_thresholds + R"pb(interest {
                                                            activity { field: "type" equals: "x" }
                                                            state: "not_now"
                                                          })pb",
       "scoring.interest[0].id: empty signal id"},
      {"duplicate interest signal ids",
       ok_thresholds + R"pb(interest {
                              id: "i"
                              activity { field: "type" equals: "x" }
                              state: "not_now"
                            }
                            interest {
                              id: "i"
                              activity { field: "type" equals: "y" }
                              state: "not_now"
                            })pb",
       "scoring.interest[1].id: duplicate signal id 'i'"},
      {"interest signal with no conditions",
       ok_thresholds + R"pb(interest { id: "i" state: "not_now" })pb",
       "scoring.interest[0]: needs exactly one of activity or outcome conditions (rule 'i')"},
      {"interest signal on both activity and outcome",
       ok_thresholds + R"pb(interest {
                              id: "i"
                              activity { field: "type" equals: "x" }
                              outcome { field: "kind" equals: "lost" }
                              state: "not_now"
                            })pb",
       "scoring.interest[0]: needs exactly one of activity or outcome conditions"},
      {"unknown activity field in an interest signal",
       ok_thresholds + R"pb(interest {
                              id: "i"
                              activity { field: "country" equals: "GB" }
                              state: "not_now"
                            })pb",
       "scoring.interest[0].activity[0].field: unknown activity field 'country'"},
      {"unknown outcome field in an interest signal",
       ok_thresholds + R"pb(interest {
                              id: "i"
                              outcome { field: "type" equals: "lost" }
                              state: "not_now"
                            })pb",
       "scoring.interest[0].outcome[0].field: unknown outcome field 'type'"},
      {"unknown outcome kind in an interest signal",
       ok_thresholds + R"pb(interest {
                              id: "i"
                              outcome { field: "kind" equals: "lostt" }
                              state: "not_now"
                            })pb",
       "scoring.interest[0].outcome[0].field: unknown outcome kind 'lostt'"},
      {"unknown interest state", ok_thresholds + R"pb(interest {
                                                        id: "i"
                                                        activity { field: "type" equals: "x" }
                                                        state: "later"
                                                      })pb",
       "scoring.interest[0].state: 'later' is not one of interested, not_now, disinterested"},
      {"negative interest expiry", ok_thresholds + R"pb(interest {
                                                          id: "i"
                                                          activity { field: "type" equals: "x" }
                                                          state: "not_now"
                                                          expires_after_days: -1
                                                        })pb",
       "scoring.interest[0].expires_after_days: must be >= 0"},
      {"bad regex in an interest signal",
       ok_thresholds + R"pb(interest {
                              id: "i"
                              outcome { field: "reason" matches: "(" }
                              state: "not_now"
                            })pb",
       "scoring.interest[0].outcome[0].matches: invalid regular expression"},
      {"grid without engagement bounds", R"pb(category_grid {
                                                fit_bounds: 10
                                                rows { categories: "cold" }
                                                rows { categories: "warm" }
                                              })pb",
       "scoring.category_grid.engagement_bounds: needs at least one bound"},
      {"grid bounds not ascending", R"pb(category_grid {
                                           fit_bounds: [ 10, 10 ]
                                           engagement_bounds: 5
                                         })pb",
       "scoring.category_grid.fit_bounds[1]: must be above the previous bound (10)"},
      {"grid missing a row", R"pb(category_grid {
                                    fit_bounds: 10
                                    engagement_bounds: 5
                                    rows { categories: [ "cold", "warm" ] }
                                  })pb",
       "scoring.category_grid.rows: needs one row per fit band (2), not 1"},
      {"grid row missing a cell", R"pb(category_grid {
                                         fit_bounds: 10
                                         engagement_bounds: 5
                                         rows { categories: [ "cold", "warm" ] }
                                         rows { categories: [ "warm" ] }
                                       })pb",
       "scoring.category_grid.rows[1].categories: needs one category per engagement band (2), "
       "not 1"},
      {"grid with an unknown category", R"pb(category_grid {
                                               fit_bounds: 10
                                               engagement_bounds: 5
                                               rows { categories: [ "cold", "warm" ] }
                                               rows { categories: [ "warm", "hot" ] }
                                             })pb",
       "scoring.category_grid.rows[1].categories[1]: unknown category 'hot'"},
      {"grid with bad thresholds beside it", R"pb(thresholds { warm: 20 qualified: 10 }
                                                  category_grid {
                                                    fit_bounds: 10
                                                    engagement_bounds: 5
                                                    rows { categories: [ "cold", "warm" ] }
                                                    rows { categories: [ "warm", "qualified" ] }
                                                  })pb",
       "scoring.thresholds.qualified: must be above warm (20)"},
      {"bad segment condition", ok_thresholds + R"pb(segments {
                                                       id: "s"
                                                       when { field: "category" equals: "hot" }
                                                     })pb",
       "scoring.segments[0].when[0].equals: 'hot' is not a value of 'category'"},
  };
  for (const InvalidRulesCase& c : cases) {
    const auto compiled = CompileScoringRules(ParseText<ScoringRules>(c.rules));
    ASSERT_FALSE(compiled.ok()) << c.name;
    EXPECT_EQ(compiled.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_THAT(compiled.status().message(), HasSubstr(c.message)) << c.name;
  }
}

// --- The default rule file. ---

class DefaultScoringRulesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<ScoringRules> loaded = LoadYamlConfig<ScoringRules>("config/scoring.yaml");
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    absl::StatusOr<std::shared_ptr<const CompiledScoringRules>> compiled =
        CompileScoringRules(*loaded);
    ASSERT_TRUE(compiled.ok()) << compiled.status();
    rules_ = *compiled;
  }

  std::shared_ptr<const CompiledScoringRules> rules_;
  // A VP of marketing at a 250-person company.
  LeadProfile senior_ = ParseText<LeadProfile>(R"pb(
    email: "ada@shoeco.co.uk"
    company: "ShoeCo"
    job_title: "VP Marketing"
    seniority: SENIORITY_SENIOR
    company_size: 250
  )pb");
};

TEST_F(DefaultScoringRulesTest, ConfigFileParsesAndCompiles) {
  EXPECT_EQ(rules_->version(), "2024-06-scoring-v1");
}

TEST_F(DefaultScoringRulesTest,
       SeniorLeadAtMidSizeCompanyWhoRequestsADemoAndViewsPricingIsSalesReady) {
  const ScoreSnapshot s =
      Score(*rules_, senior_, Recent({{"demo_request", 1}, {"page_view", 1}}, {{"pricing", 1}}),
            ScoreContext(), kNow);
  EXPECT_EQ(s.category(), events::v1::CATEGORY_SALES_READY) << s.DebugString();
  EXPECT_EQ(SumInOrder(s), s.total());
  EXPECT_THAT(s.segments(), ::testing::Contains("decision-makers"));
  EXPECT_THAT(s.segments(), ::testing::Contains("hot"));
}

TEST_F(DefaultScoringRulesTest, FitRanksACeoAboveAMarketingManagerAboveAStudent) {
  // The profiles as capture derives them from the job titles (seniority, job function).
  const LeadProfile ceo = ParseText<LeadProfile>(
      R"pb(
        email: "jo@acme.example" company: "Acme" job_title: "CEO" seniority: SENIORITY_EXECUTIVE
      )pb");
  const LeadProfile marketing_manager = ParseText<LeadProfile>(R"pb(
    email: "sam@acme.example"
    company: "Acme"
    job_title: "Marketing Manager"
    seniority: SENIORITY_MANAGER
    job_function: "marketing"
  )pb");
  const LeadProfile student = ParseText<LeadProfile>(R"pb(
    email: "kim@acme.example"
    company: "Acme"
    job_title: "Student"
    seniority: SENIORITY_STUDENT
  )pb");
  const double ceo_fit = Score(*rules_, ceo, LeadAggregates(), ScoreContext(), kNow).fit();
  const double manager_fit =
      Score(*rules_, marketing_manager, LeadAggregates(), ScoreContext(), kNow).fit();
  const double student_fit = Score(*rules_, student, LeadAggregates(), ScoreContext(), kNow).fit();
  EXPECT_GT(ceo_fit, manager_fit);
  EXPECT_GT(manager_fit, student_fit);
  EXPECT_LT(student_fit, 0);
}

TEST_F(DefaultScoringRulesTest, InterestSignalsExampleSaysNotNowAndDisinterested) {
  const std::optional<ExplicitInterest> not_now = rules_->InterestFromActivity(
      ParseText<events::v1::Activity>(R"pb(type: "not_now_selected" name: "Not Now Selected")pb"),
      kNow);
  ASSERT_TRUE(not_now.has_value());
  EXPECT_EQ(not_now->state, events::v1::INTEREST_NOT_NOW);
  EXPECT_LT(not_now->until, absl::InfiniteFuture());

  const std::optional<ExplicitInterest> next_year =
      rules_->InterestFromActivity(ParseText<events::v1::Activity>(R"pb(
                                     type: "form_submit"
                                     properties {
                                       fields {
                                         key: "timeline"
                                         value { string_value: "next year" }
                                       }
                                     }
                                   )pb"),
                                   kNow);
  ASSERT_TRUE(next_year.has_value());
  EXPECT_EQ(next_year->state, events::v1::INTEREST_NOT_NOW);

  events::v1::LeadOutcome lost;
  lost.set_kind(events::v1::LeadOutcome::KIND_LOST);
  lost.set_reason("timing");
  ASSERT_TRUE(rules_->InterestFromOutcome(lost, kNow).has_value());
  EXPECT_EQ(rules_->InterestFromOutcome(lost, kNow)->state, events::v1::INTEREST_NOT_NOW);
  lost.set_reason("no need");
  ASSERT_TRUE(rules_->InterestFromOutcome(lost, kNow).has_value());
  EXPECT_EQ(rules_->InterestFromOutcome(lost, kNow)->state, events::v1::INTEREST_DISINTERESTED);
}

TEST_F(DefaultScoringRulesTest, LeadWithOnlyAPageViewOrTwoStaysCold) {
  for (int views : {1, 2}) {
    const ScoreSnapshot plain =
        Score(*rules_, LeadProfile(), Recent({{"page_view", views}}), ScoreContext(), kNow);
    EXPECT_EQ(plain.category(), events::v1::CATEGORY_COLD) << plain.DebugString();
    const ScoreSnapshot good_fit =
        Score(*rules_, senior_, Recent({{"page_view", views}}), ScoreContext(), kNow);
    EXPECT_EQ(good_fit.category(), events::v1::CATEGORY_COLD) << good_fit.DebugString();
  }
}

TEST_F(DefaultScoringRulesTest, ASalesReadyLeadThatGoesQuietForAMonthCoolsDown) {
  const LeadAggregates active =
      Recent({{"demo_request", 1}, {"page_view", 1}}, {{"pricing", 1}}, kNow);
  const ScoreSnapshot then = Score(*rules_, senior_, active, ScoreContext(), kNow);
  const ScoreSnapshot later = Score(*rules_, senior_, active, ScoreContext(), kNow + 30 * kDay);
  EXPECT_EQ(then.category(), events::v1::CATEGORY_SALES_READY);
  EXPECT_LT(later.category(), events::v1::CATEGORY_SALES_READY) << later.DebugString();
  EXPECT_LT(later.total(), then.total());
  EXPECT_EQ(SumInOrder(later), later.total());
}

}  // namespace
}  // namespace leadflow::scoring
