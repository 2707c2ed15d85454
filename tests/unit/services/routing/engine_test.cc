// Tests for the routing engine: team matching, when to route, rep selection strategies,
// presence, working hours, caps, SLA and escalation, validation, and the default rule file.
#include "services/routing/engine.h"

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "common/config/yaml_proto.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace leadflow::routing {
namespace {

using config::v1::Rep;
using config::v1::RoutingRules;
using config::v1::Team;
using events::v1::LeadProfile;
using events::v1::ScoreSnapshot;
using ::testing::HasSubstr;

absl::Time Utc(int y, int m, int d, int hh, int mm) {
  return absl::FromCivil(absl::CivilMinute(y, m, d, hh, mm), absl::UTCTimeZone());
}

absl::Time Local(const char* zone_name, int y, int m, int d, int hh, int mm) {
  absl::TimeZone zone;
  EXPECT_TRUE(absl::LoadTimeZone(zone_name, &zone));
  return absl::FromCivil(absl::CivilMinute(y, m, d, hh, mm), zone);
}

// Monday 3 June 2024, 12:00 UTC.
const absl::Time kMonday = Utc(2024, 6, 3, 12, 0);

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

// --- Rules used by most tests. ---

constexpr char kRules[] = R"pb(
  version: "test-1"
  default_team: "inbound-queue"
  rules {
    id: "uk-shoes"
    team: "uk-fashion"
    when {
      field: "country"
      in { values: [ "GB", "UK" ] }
    }
    when { field: "interests" equals: "shoes" }
  }
  rules {
    id: "uk"
    team: "emea"
    when {
      field: "country"
      in { values: [ "GB", "UK" ] }
    }
  }
  rules {
    id: "hot-enterprise"
    team: "americas"
    when {
      field: "company_size"
      range { min: 1000 }
    }
    when { field: "category" equals: "sales_ready" }
  }
  teams {
    id: "uk-fashion"
    reps { id: "amelia" }
    reps { id: "oliver" }
    sla_minutes: 15
    escalate_to: "emea"
  }
  teams {
    id: "emea"
    reps { id: "lena" }
  }
  teams {
    id: "americas"
    reps { id: "jordan" }
  }
  teams {
    id: "inbound-queue"
    reps { id: "sam" }
  }
)pb";

std::shared_ptr<const CompiledRoutingRules> Compile(const std::string& text) {
  auto compiled = CompileRoutingRules(ParseText<RoutingRules>(text));
  EXPECT_TRUE(compiled.ok()) << compiled.status();
  return compiled.ok() ? *compiled : nullptr;
}

ScoreSnapshot Category(events::v1::Category category) {
  ScoreSnapshot score;
  score.set_category(category);
  return score;
}

// --- Matching. ---

TEST(MatchTeamTest, UkShoeLeadGoesToUkFashion) {
  const auto rules = Compile(kRules);
  const LeadProfile lead = ParseText<LeadProfile>(R"pb(country: "GB"
                                                       interests: [ "boots", "shoes" ])pb");
  const RouteDecision decision =
      MatchTeam(*rules, lead, Category(events::v1::CATEGORY_SALES_READY));
  EXPECT_EQ(decision.team_id, "uk-fashion");
  EXPECT_EQ(decision.rule_id, "uk-shoes");
  EXPECT_EQ(decision.reason,
            "country in [GB, UK] and interests contains shoes → uk-fashion (rule uk-shoes)");
}

struct MatchCase {
  std::string name;
  std::string lead;
  events::v1::Category category;
  std::string team;
  std::string rule;
};

TEST(MatchTeamTest, TheFirstMatchingRuleWinsAndOthersFallToTheDefaultTeam) {
  const auto rules = Compile(kRules);
  const std::vector<MatchCase> cases = {
      {"specific rule before the general one", R"pb(country: "UK" interests: "shoes")pb",
       events::v1::CATEGORY_SALES_READY, "uk-fashion", "uk-shoes"},
      {"general rule when the specific one does not hold", R"pb(country: "GB" interests: "hats")pb",
       events::v1::CATEGORY_SALES_READY, "emea", "uk"},
      {"earlier rule wins even when a later one also holds",
       R"pb(country: "GB" company_size: 5000)pb", events::v1::CATEGORY_SALES_READY, "emea", "uk"},
      {"rules may test the score", R"pb(country: "US" company_size: 5000)pb",
       events::v1::CATEGORY_SALES_READY, "americas", "hot-enterprise"},
      {"score condition not met", R"pb(country: "US" company_size: 5000)pb",
       events::v1::CATEGORY_QUALIFIED, "inbound-queue", "default"},
      {"no rule matches", R"pb(country: "FR")pb", events::v1::CATEGORY_SALES_READY, "inbound-queue",
       "default"},
      {"empty profile", "", events::v1::CATEGORY_SALES_READY, "inbound-queue", "default"},
  };
  for (const MatchCase& c : cases) {
    const RouteDecision decision =
        MatchTeam(*rules, ParseText<LeadProfile>(c.lead), Category(c.category));
    EXPECT_EQ(decision.team_id, c.team) << c.name;
    EXPECT_EQ(decision.rule_id, c.rule) << c.name;
  }
  EXPECT_EQ(MatchTeam(*rules, LeadProfile(), ScoreSnapshot()).reason,
            "no rule matched → inbound-queue (default)");
}

// --- When to route. ---

struct ShouldRouteCase {
  std::string name;
  std::string route_at;
  events::v1::Category previous;
  events::v1::Category current;
  bool new_episode;
  bool expected;
};

TEST(ShouldRouteTest, RoutesOnAFreshCrossingOrANewEpisode) {
  using events::v1::CATEGORY_COLD;
  using events::v1::CATEGORY_QUALIFIED;
  using events::v1::CATEGORY_SALES_READY;
  using events::v1::CATEGORY_UNSPECIFIED;
  using events::v1::CATEGORY_WARM;
  const std::vector<ShouldRouteCase> cases = {
      {"crossing into sales-ready", "", CATEGORY_QUALIFIED, CATEGORY_SALES_READY, false, true},
      {"first score already sales-ready", "", CATEGORY_UNSPECIFIED, CATEGORY_SALES_READY, false,
       true},
      {"staying sales-ready is not a new crossing", "", CATEGORY_SALES_READY, CATEGORY_SALES_READY,
       false, false},
      {"a new episode routes again", "", CATEGORY_SALES_READY, CATEGORY_SALES_READY, true, true},
      {"a new episode below the bar does not route", "", CATEGORY_WARM, CATEGORY_QUALIFIED, true,
       false},
      {"qualified is not enough by default", "", CATEGORY_WARM, CATEGORY_QUALIFIED, false, false},
      {"explicit sales_ready", "sales_ready", CATEGORY_WARM, CATEGORY_SALES_READY, false, true},
      {"route at qualified", "qualified", CATEGORY_WARM, CATEGORY_QUALIFIED, false, true},
      {"route at qualified: jumping to sales-ready crosses too", "qualified", CATEGORY_COLD,
       CATEGORY_SALES_READY, false, true},
      {"route at qualified: qualified to sales-ready is not a crossing", "qualified",
       CATEGORY_QUALIFIED, CATEGORY_SALES_READY, false, false},
      {"cooling down never routes", "", CATEGORY_SALES_READY, CATEGORY_QUALIFIED, false, false},
  };
  for (const ShouldRouteCase& c : cases) {
    const auto rules = Compile(absl::StrCat(kRules, " route_at: \"", c.route_at, "\""));
    EXPECT_EQ(ShouldRoute(*rules, Category(c.previous), Category(c.current), c.new_episode),
              c.expected)
        << c.name;
  }
}

constexpr char kPerRuleRouteAt[] = R"pb(
  version: "per-rule"
  route_at: "sales_ready"
  default_team: "inbound-queue"
  rules {
    id: "enterprise"
    team: "enterprise"
    route_at: "qualified"
    when {
      field: "company_size"
      range { min: 1000 }
    }
  }
  rules {
    id: "uk"
    team: "emea"
    when { field: "country" equals: "GB" }
  }
  teams {
    id: "enterprise"
    reps { id: "erin" }
  }
  teams {
    id: "emea"
    reps { id: "lena" }
  }
  teams {
    id: "inbound-queue"
    reps { id: "sam" }
  }
)pb";

TEST(ShouldRouteTest, ARulesRouteAtOverridesTheFilesForTheLeadsItMatches) {
  using events::v1::CATEGORY_QUALIFIED;
  using events::v1::CATEGORY_SALES_READY;
  using events::v1::CATEGORY_WARM;
  const auto rules = Compile(kPerRuleRouteAt);
  ASSERT_NE(rules, nullptr);
  EXPECT_EQ(rules->route_at(), CATEGORY_SALES_READY);
  EXPECT_EQ(rules->min_route_at(), CATEGORY_QUALIFIED);
  struct Case {
    std::string name;
    std::string lead;
    events::v1::Category previous;
    events::v1::Category current;
    std::string rule;
    bool expected;
  };
  const std::vector<Case> cases = {
      {"enterprise lead routes once qualified", R"pb(company_size: 5000)pb", CATEGORY_WARM,
       CATEGORY_QUALIFIED, "enterprise", true},
      {"enterprise lead: qualified to sales-ready is no new crossing", R"pb(company_size: 5000)pb",
       CATEGORY_QUALIFIED, CATEGORY_SALES_READY, "enterprise", false},
      {"UK lead keeps the file's sales_ready: qualified is not enough", R"pb(country: "GB")pb",
       CATEGORY_WARM, CATEGORY_QUALIFIED, "uk", false},
      {"UK lead routes at sales_ready", R"pb(country: "GB")pb", CATEGORY_QUALIFIED,
       CATEGORY_SALES_READY, "uk", true},
      {"default team keeps the file's threshold", R"pb(country: "FR")pb", CATEGORY_WARM,
       CATEGORY_QUALIFIED, "default", false},
  };
  for (const Case& c : cases) {
    const RouteDecision decision =
        MatchTeam(*rules, ParseText<LeadProfile>(c.lead), Category(c.current));
    EXPECT_EQ(decision.rule_id, c.rule) << c.name;
    EXPECT_EQ(ShouldRoute(decision, Category(c.previous), Category(c.current)), c.expected)
        << c.name;
  }
}

TEST(ShouldRouteTest, ARuleMayRaiseTheThresholdAboveTheFiles) {
  const auto rules = Compile(kPerRuleRouteAt);
  ASSERT_NE(rules, nullptr);
  RoutingRules source = rules->source();
  source.set_route_at("qualified");
  source.mutable_rules(1)->set_route_at("sales_ready");  // uk
  const auto raised = CompileRoutingRules(source);
  ASSERT_TRUE(raised.ok()) << raised.status();
  const RouteDecision uk = MatchTeam(**raised, ParseText<LeadProfile>(R"pb(country: "GB")pb"),
                                     Category(events::v1::CATEGORY_QUALIFIED));
  EXPECT_EQ(uk.route_at, events::v1::CATEGORY_SALES_READY);
  EXPECT_FALSE(ShouldRoute(uk, Category(events::v1::CATEGORY_WARM),
                           Category(events::v1::CATEGORY_QUALIFIED)));
  const RouteDecision other = MatchTeam(**raised, ParseText<LeadProfile>(R"pb(country: "FR")pb"),
                                        Category(events::v1::CATEGORY_QUALIFIED));
  EXPECT_TRUE(ShouldRoute(other, Category(events::v1::CATEGORY_WARM),
                          Category(events::v1::CATEGORY_QUALIFIED)));
  EXPECT_EQ((*raised)->min_route_at(), events::v1::CATEGORY_QUALIFIED);
}

// --- Rep selection. ---

Team MakeTeam(config::v1::Strategy strategy, const std::vector<std::string>& rep_ids,
              const std::vector<int>& weights = {}) {
  Team team;
  team.set_id("team");
  team.set_strategy(strategy);
  for (size_t i = 0; i < rep_ids.size(); ++i) {
    Rep* rep = team.add_reps();
    rep->set_id(rep_ids[i]);
    if (i < weights.size()) rep->set_weight(weights[i]);
  }
  return team;
}

// Routes `leads` leads one after another, threading the cursor; returns assignments per rep.
std::map<std::string, int> RouteMany(const Team& team, std::vector<RepState> states, int leads,
                                     absl::Time now, std::vector<std::string>* order = nullptr) {
  std::map<std::string, int> counts;
  uint64_t cursor = 0;
  for (int i = 0; i < leads; ++i) {
    const std::optional<RepChoice> choice = PickRep(team, states, cursor, now);
    EXPECT_TRUE(choice.has_value());
    if (!choice.has_value()) break;
    cursor = choice->next_cursor;
    ++counts[choice->rep_id];
    ++states[choice->index].open_leads;
    if (order != nullptr) order->push_back(choice->rep_id);
  }
  return counts;
}

TEST(PickRepTest, RoundRobinIsFairOverThreeThousandLeads) {
  const Team team = MakeTeam(config::v1::STRATEGY_ROUND_ROBIN, {"a", "b", "c"});
  std::vector<std::string> order;
  const auto counts = RouteMany(team, RepStatesFor(team), 3000, kMonday, &order);
  ASSERT_EQ(counts.size(), 3u);
  for (const auto& [rep, count] : counts) EXPECT_NEAR(count, 1000, 1) << rep;
  EXPECT_EQ(std::vector<std::string>(order.begin(), order.begin() + 4),
            (std::vector<std::string>{"a", "b", "c", "a"}));
}

TEST(PickRepTest, RoundRobinStaysFairWhenTheTeamSizeDoesNotDivideTheLeads) {
  const Team team = MakeTeam(config::v1::STRATEGY_UNSPECIFIED, {"a", "b", "c", "d", "e", "f", "g"});
  const auto counts = RouteMany(team, RepStatesFor(team), 3000, kMonday);
  int low = 3000, high = 0;
  for (const auto& [rep, count] : counts) {
    low = std::min(low, count);
    high = std::max(high, count);
  }
  EXPECT_LE(high - low, 1);
}

TEST(PickRepTest, WeightedRoundRobinIsProportionalToWeights) {
  const Team team =
      MakeTeam(config::v1::STRATEGY_WEIGHTED_ROUND_ROBIN, {"lena", "hugo", "sofia"}, {3, 2, 1});
  std::vector<std::string> order;
  const auto counts = RouteMany(team, RepStatesFor(team), 3000, kMonday, &order);
  EXPECT_NEAR(counts.at("lena"), 1500, 1);
  EXPECT_NEAR(counts.at("hugo"), 1000, 1);
  EXPECT_NEAR(counts.at("sofia"), 500, 1);
  // Smoothly interleaved, not bunched: lena, hugo, lena, sofia, hugo, lena.
  EXPECT_EQ(std::vector<std::string>(order.begin(), order.begin() + 6),
            (std::vector<std::string>{"lena", "hugo", "lena", "sofia", "hugo", "lena"}));
}

TEST(PickRepTest, WeightZeroMeansTheDefaultWeightOfOne) {
  const Team team = MakeTeam(config::v1::STRATEGY_WEIGHTED_ROUND_ROBIN, {"a", "b"}, {0, 1});
  const auto counts = RouteMany(team, RepStatesFor(team), 100, kMonday);
  EXPECT_EQ(counts.at("a"), 50);
  EXPECT_EQ(counts.at("b"), 50);
}

TEST(PickRepTest, WeightedRoundRobinIsDeterministicGivenTheCursor) {
  const Team team = MakeTeam(config::v1::STRATEGY_WEIGHTED_ROUND_ROBIN, {"a", "b", "c"}, {5, 1, 1});
  const std::vector<RepState> states = RepStatesFor(team);
  for (uint64_t cursor = 0; cursor < 20; ++cursor) {
    const auto first = PickRep(team, states, cursor, kMonday);
    const auto second = PickRep(team, states, cursor, kMonday);
    ASSERT_TRUE(first.has_value());
    EXPECT_EQ(first->rep_id, second->rep_id);
    EXPECT_EQ(first->next_cursor, second->next_cursor);
  }
}

TEST(PickRepTest, LeastLoadedPicksTheFewestOpenLeadsAndRotatesTies) {
  const Team team = MakeTeam(config::v1::STRATEGY_LEAST_LOADED, {"a", "b", "c"});
  std::vector<RepState> states = RepStatesFor(team);
  states[0].open_leads = 5;
  states[1].open_leads = 2;
  states[2].open_leads = 3;
  const auto first = PickRep(team, states, 0, kMonday);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->rep_id, "b");
  EXPECT_EQ(first->reason, "least loaded (2 open)");

  // Equal loads: the first in cursor order, and the cursor moves past it.
  states[0].open_leads = states[1].open_leads = states[2].open_leads = 4;
  std::vector<std::string> picked;
  uint64_t cursor = 0;
  for (int i = 0; i < 3; ++i) {
    const auto choice = PickRep(team, states, cursor, kMonday);
    ASSERT_TRUE(choice.has_value());
    picked.push_back(choice->rep_id);
    cursor = choice->next_cursor;
  }
  EXPECT_EQ(picked, (std::vector<std::string>{"a", "b", "c"}));

  // Over many leads, loads even out from an uneven start.
  states[0].open_leads = 10;
  states[1].open_leads = 0;
  states[2].open_leads = 4;
  const auto counts = RouteMany(team, states, 30, kMonday);
  const int64_t a = 10 + counts.at("a");
  const int64_t b = 0 + counts.at("b");
  const int64_t c = 4 + counts.at("c");
  EXPECT_LE(std::max({a, b, c}) - std::min({a, b, c}), 1) << a << " " << b << " " << c;
  EXPECT_GT(counts.at("b"), counts.at("c"));
  EXPECT_GT(counts.at("c"), counts.at("a"));
}

TEST(PickRepTest, LeastLoadedIsFairOverThreeThousandLeadsWhoseOutcomesReleaseCapacity) {
  const Team team = MakeTeam(config::v1::STRATEGY_LEAST_LOADED, {"a", "b", "c", "d"});
  std::vector<RepState> states = RepStatesFor(team);
  // Each rep's open leads, oldest first; an outcome closes a rep's oldest lead. Reps work at
  // different speeds (a closes a lead every 2nd assignment, d every 7th), so loads drift apart
  // and least-loaded must keep pulling them back together.
  std::vector<std::vector<int>> open(states.size());
  const std::vector<int> closes_every = {2, 3, 5, 7};
  std::map<std::string, int> assigned;
  std::vector<int64_t> released(states.size(), 0);
  uint64_t cursor = 0;
  int64_t max_spread = 0;
  for (int lead = 0; lead < 3000; ++lead) {
    const std::optional<RepChoice> choice = PickRep(team, states, cursor, kMonday);
    ASSERT_TRUE(choice.has_value()) << lead;
    // Least-loaded: nobody eligible holds fewer open leads than the chosen rep.
    for (const RepState& s : states) {
      ASSERT_GE(s.open_leads, states[choice->index].open_leads) << lead;
    }
    cursor = choice->next_cursor;
    ++assigned[choice->rep_id];
    open[choice->index].push_back(lead);
    ++states[choice->index].open_leads;
    for (size_t r = 0; r < states.size(); ++r) {
      if (lead % closes_every[r] == 0 && !open[r].empty()) {
        open[r].erase(open[r].begin());  // won or lost: the rep's capacity comes back
        --states[r].open_leads;
        ++released[r];
      }
    }
    int64_t low = states[0].open_leads, high = states[0].open_leads;
    for (const RepState& s : states) {
      low = std::min(low, s.open_leads);
      high = std::max(high, s.open_leads);
    }
    max_spread = std::max(max_spread, high - low);
  }
  // Open loads never drift more than one lead apart (one pick closes the gap it opened,
  // releases aside), and the reps who close leads faster are given proportionally more.
  EXPECT_LE(max_spread, 2);
  EXPECT_GT(assigned.at("a"), assigned.at("b"));
  EXPECT_GT(assigned.at("b"), assigned.at("c"));
  EXPECT_GT(assigned.at("c"), assigned.at("d"));
  int total = 0;
  for (const auto& [rep, n] : assigned) total += n;
  EXPECT_EQ(total, 3000);
  // Every lead is accounted for: assigned = still open + released by an outcome.
  for (size_t r = 0; r < states.size(); ++r) {
    EXPECT_EQ(assigned.at(team.reps(r).id()), states[r].open_leads + released[r])
        << team.reps(r).id();
  }
}

TEST(PickRepTest, LeastLoadedSharesEvenlyAmongRepsOfEqualSpeed) {
  const Team team = MakeTeam(config::v1::STRATEGY_LEAST_LOADED, {"a", "b", "c"});
  std::vector<RepState> states = RepStatesFor(team);
  std::map<std::string, int> assigned;
  uint64_t cursor = 0;
  for (int lead = 0; lead < 3000; ++lead) {
    const std::optional<RepChoice> choice = PickRep(team, states, cursor, kMonday);
    ASSERT_TRUE(choice.has_value());
    cursor = choice->next_cursor;
    ++assigned[choice->rep_id];
    ++states[choice->index].open_leads;
    // Every third lead an outcome closes one lead of the busiest rep.
    if (lead % 3 == 2) {
      auto busiest = std::max_element(
          states.begin(), states.end(),
          [](const RepState& x, const RepState& y) { return x.open_leads < y.open_leads; });
      --busiest->open_leads;
    }
  }
  for (const auto& [rep, n] : assigned) EXPECT_NEAR(n, 1000, 1) << rep;
}

TEST(PickRepTest, AnAwayRepIsSkippedAndPickedAgainWhenBack) {
  const Team team = MakeTeam(config::v1::STRATEGY_ROUND_ROBIN, {"a", "b", "c"});
  std::vector<RepState> states = RepStatesFor(team);
  states[1].presence = Presence::kAway;
  std::vector<std::string> order;
  RouteMany(team, states, 4, kMonday, &order);
  EXPECT_EQ(order, (std::vector<std::string>{"a", "c", "a", "c"}));

  const auto skipped = PickRep(team, states, 1, kMonday);
  ASSERT_TRUE(skipped.has_value());
  EXPECT_EQ(skipped->rep_id, "c");
  EXPECT_EQ(skipped->reason, "round-robin; skipped b (away)");

  states[1].presence = Presence::kAvailable;
  order.clear();
  RouteMany(team, states, 3, kMonday, &order);
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b", "c"}));
}

TEST(PickRepTest, AnOutOfOfficeRepIsBackWhenItsUntilTimePasses) {
  const Team team = MakeTeam(config::v1::STRATEGY_ROUND_ROBIN, {"a", "b"});
  std::vector<RepState> states = RepStatesFor(team);
  states[0].presence = Presence::kOutOfOffice;
  states[0].presence_until = kMonday + absl::Hours(2);
  EXPECT_EQ(PickRep(team, states, 0, kMonday)->rep_id, "b");
  EXPECT_EQ(IneligibleReason(states[0], kMonday), "out of office");
  EXPECT_EQ(PickRep(team, states, 0, kMonday + absl::Hours(2))->rep_id, "a");
  EXPECT_EQ(IneligibleReason(states[0], kMonday + absl::Hours(3)), "");
}

TEST(PickRepTest, NobodyEligibleMeansTheLeadWaitsInTheQueue) {
  for (auto strategy : {config::v1::STRATEGY_ROUND_ROBIN, config::v1::STRATEGY_WEIGHTED_ROUND_ROBIN,
                        config::v1::STRATEGY_LEAST_LOADED}) {
    const Team team = MakeTeam(strategy, {"a", "b"});
    std::vector<RepState> states = RepStatesFor(team);
    states[0].presence = Presence::kAway;
    states[1].presence = Presence::kOutOfOffice;
    EXPECT_FALSE(PickRep(team, states, 0, kMonday).has_value()) << strategy;
    EXPECT_FALSE(PickRep(team, {}, 0, kMonday).has_value()) << strategy;
  }
}

TEST(PickRepTest, CapsOnOpenLeadsAndDailyQuotaAreRespected) {
  Team team = MakeTeam(config::v1::STRATEGY_ROUND_ROBIN, {"a", "b", "c"});
  team.mutable_reps(0)->set_max_open_leads(10);
  team.mutable_reps(1)->set_daily_quota(5);
  std::vector<RepState> states = RepStatesFor(team);
  states[0].open_leads = 10;
  states[1].assigned_today = 5;
  EXPECT_EQ(IneligibleReason(states[0], kMonday), "at max open leads (10)");
  EXPECT_EQ(IneligibleReason(states[1], kMonday), "daily quota reached (5)");
  std::vector<std::string> order;
  RouteMany(team, states, 3, kMonday, &order);
  EXPECT_EQ(order, (std::vector<std::string>{"c", "c", "c"}));

  states[0].open_leads = 9;  // one below the cap
  EXPECT_EQ(PickRep(team, states, 0, kMonday)->rep_id, "a");
}

// --- Working hours. ---

struct HoursCase {
  std::string name;
  absl::Time now;
  bool working;
};

TEST(WorkingHoursTest, WindowsAreReadInTheRepsTimeZone) {
  const Rep rep = ParseText<Rep>(R"pb(
    id: "jordan"
    time_zone: "America/New_York"
    working_hours {
      days: [ 1, 2, 3, 4, 5 ]
      start: "09:00"
      end: "17:00"
    }
  )pb");
  const std::vector<HoursCase> cases = {
      {"09:00 EDT Monday is 13:00 UTC", Utc(2024, 6, 3, 13, 0), true},
      {"one minute before the start", Utc(2024, 6, 3, 12, 59), false},
      {"end is exclusive", Local("America/New_York", 2024, 6, 3, 17, 0), false},
      {"last minute", Local("America/New_York", 2024, 6, 3, 16, 59), true},
      {"Saturday", Local("America/New_York", 2024, 6, 8, 12, 0), false},
      {"Friday evening UTC is still Friday afternoon in New York", Utc(2024, 6, 7, 20, 0), true},
      {"winter time: 09:00 EST is 14:00 UTC", Utc(2024, 1, 8, 14, 0), true},
      {"winter time: 13:30 UTC is before 09:00 EST", Utc(2024, 1, 8, 13, 30), false},
  };
  for (const HoursCase& c : cases) EXPECT_EQ(WithinWorkingHours(rep, c.now), c.working) << c.name;
}

TEST(WorkingHoursTest, OvernightWindowsBelongToTheDayTheyStart) {
  const Rep rep = ParseText<Rep>(R"pb(
    id: "dana"
    time_zone: "Europe/London"
    working_hours {
      days: [ 1 ]
      start: "22:00"
      end: "06:00"
    }
  )pb");
  const std::vector<HoursCase> cases = {
      {"Monday 23:00", Local("Europe/London", 2024, 6, 3, 23, 0), true},
      {"Monday 22:00 (start inclusive)", Local("Europe/London", 2024, 6, 3, 22, 0), true},
      {"Tuesday 03:00 continues Monday's shift", Local("Europe/London", 2024, 6, 4, 3, 0), true},
      {"Tuesday 06:00 (end exclusive)", Local("Europe/London", 2024, 6, 4, 6, 0), false},
      {"Monday 03:00 would be Sunday's shift", Local("Europe/London", 2024, 6, 3, 3, 0), false},
      {"Tuesday 23:00", Local("Europe/London", 2024, 6, 4, 23, 0), false},
      {"Monday noon", Local("Europe/London", 2024, 6, 3, 12, 0), false},
  };
  for (const HoursCase& c : cases) EXPECT_EQ(WithinWorkingHours(rep, c.now), c.working) << c.name;
}

TEST(WorkingHoursTest, NoHoursMeansAlwaysAndSeveralWindowsCombine) {
  EXPECT_TRUE(WithinWorkingHours(Rep(), kMonday));
  const Rep split = ParseText<Rep>(R"pb(
    time_zone: "Asia/Singapore"
    working_hours { start: "09:00" end: "12:00" }
    working_hours { start: "13:00" end: "24:00" }
  )pb");
  EXPECT_TRUE(WithinWorkingHours(split, Local("Asia/Singapore", 2024, 6, 9, 10, 0)));
  EXPECT_FALSE(WithinWorkingHours(split, Local("Asia/Singapore", 2024, 6, 9, 12, 30)));
  EXPECT_TRUE(WithinWorkingHours(split, Local("Asia/Singapore", 2024, 6, 9, 23, 59)));
  EXPECT_FALSE(WithinWorkingHours(split, Local("Asia/Singapore", 2024, 6, 9, 0, 30)));
}

TEST(PickRepTest, RepsOutsideTheirWorkingHoursAreSkipped) {
  Team team = MakeTeam(config::v1::STRATEGY_ROUND_ROBIN, {"london", "new-york"});
  *team.mutable_reps(0) = ParseText<Rep>(R"pb(
    id: "london"
    time_zone: "Europe/London"
    working_hours { start: "09:00" end: "17:00" }
  )pb");
  *team.mutable_reps(1) = ParseText<Rep>(R"pb(
    id: "new-york"
    time_zone: "America/New_York"
    working_hours { start: "09:00" end: "17:00" }
  )pb");
  const std::vector<RepState> states = RepStatesFor(team);
  // 10:00 UTC: 11:00 in London, 06:00 in New York.
  EXPECT_EQ(PickRep(team, states, 1, Utc(2024, 6, 3, 10, 0))->rep_id, "london");
  // 15:00 UTC: both work.
  EXPECT_EQ(PickRep(team, states, 1, Utc(2024, 6, 3, 15, 0))->rep_id, "new-york");
  // 18:00 UTC: 19:00 in London, 14:00 in New York.
  EXPECT_EQ(PickRep(team, states, 0, Utc(2024, 6, 3, 18, 0))->rep_id, "new-york");
  // 03:00 UTC: nobody.
  EXPECT_FALSE(PickRep(team, states, 0, Utc(2024, 6, 3, 3, 0)).has_value());
}

// --- SLA and escalation. ---

TEST(SlaTest, DeadlineIsAssignmentPlusTheTeamsSla) {
  Team team;
  team.set_sla_minutes(15);
  EXPECT_EQ(SlaDeadline(team, kMonday), kMonday + absl::Minutes(15));
  team.set_sla_minutes(0);
  EXPECT_EQ(SlaDeadline(team, kMonday), absl::InfiniteFuture());
}

TEST(SlaTest, BreachesMoveTheLeadThroughEveryRepThenEscalate) {
  Team team = MakeTeam(config::v1::STRATEGY_ROUND_ROBIN, {"a", "b", "c"});
  team.set_sla_minutes(15);
  team.set_escalate_to("emea");
  const std::vector<RepState> states = RepStatesFor(team);

  // a had it first and breached: the next rep in turn is b.
  std::vector<std::string> tried = {"a"};
  SlaBreachDecision decision = NextAfterSlaBreach(team, states, tried, "a", 1, kMonday);
  EXPECT_EQ(decision.action, SlaBreachDecision::Action::kReassign);
  EXPECT_EQ(decision.rep_id, "b");
  EXPECT_EQ(decision.reason, "SLA of 15 min breached by a; reassigned to b (round-robin)");

  // The cursor pointing back at a still skips a: never the breaching rep.
  tried.push_back("b");
  decision = NextAfterSlaBreach(team, states, tried, "b", 0, kMonday);
  EXPECT_EQ(decision.action, SlaBreachDecision::Action::kReassign);
  EXPECT_EQ(decision.rep_id, "c");

  tried.push_back("c");
  decision = NextAfterSlaBreach(team, states, tried, "c", decision.next_cursor, kMonday);
  EXPECT_EQ(decision.action, SlaBreachDecision::Action::kEscalate);
  EXPECT_EQ(decision.escalate_to, "emea");
  EXPECT_THAT(decision.reason, HasSubstr("every rep has had the lead; escalated to emea"));
}

TEST(SlaTest, EscalatesWhenNoUntriedRepCanTakeTheLeadAndQueuesWithoutAnEscalation) {
  Team team = MakeTeam(config::v1::STRATEGY_ROUND_ROBIN, {"a", "b"});
  team.set_escalate_to("manager");
  std::vector<RepState> states = RepStatesFor(team);
  states[1].presence = Presence::kAway;
  SlaBreachDecision decision = NextAfterSlaBreach(team, states, {}, "a", 0, kMonday);
  EXPECT_EQ(decision.action, SlaBreachDecision::Action::kEscalate);
  EXPECT_EQ(decision.escalate_to, "manager");
  EXPECT_THAT(decision.reason, HasSubstr("no other rep can take it now"));

  team.clear_escalate_to();
  decision = NextAfterSlaBreach(team, states, {}, "a", 0, kMonday);
  EXPECT_EQ(decision.action, SlaBreachDecision::Action::kQueue);
}

// --- Validation. ---

struct InvalidRulesCase {
  std::string name;
  std::string rules;
  std::string message;
};

TEST(CompileRoutingRulesTest, RejectsInvalidRulesNamingThePath) {
  const std::string team = R"pb(default_team: "t"
                                teams {
                                  id: "t"
                                  reps { id: "r" }
                                })pb";
  const std::vector<InvalidRulesCase> cases = {
      {"bad route_at", team + R"pb(route_at: "warm")pb",
       "routing.route_at: 'warm' is not qualified or sales_ready"},
      {"bad route_at of a rule", team + R"pb(rules { id: "x" team: "t" route_at: "hot" })pb",
       "routing.rules[0].route_at: 'hot' is not qualified or sales_ready"},
      {"empty team id", R"pb(default_team: "t"
                             teams { reps { id: "r" } })pb",
       "routing.teams[0].id: empty team id"},
      {"duplicate team id", team + R"pb(teams {
                                          id: "t"
                                          reps { id: "s" }
                                        })pb",
       "routing.teams[1].id: duplicate team id 't'"},
      {"team without reps", team + R"pb(teams { id: "u" })pb",
       "routing.teams[1].reps: team 'u' has no reps"},
      {"rule to a missing team", team + R"pb(rules { id: "x" team: "nope" })pb",
       "routing.rules[0].team: unknown team 'nope' (rule 'x')"},
      {"duplicate rule id", team + R"pb(rules { id: "x" team: "t" }
                                        rules { id: "x" team: "t" })pb",
       "routing.rules[1].id: duplicate rule id 'x'"},
      {"rule named default", team + R"pb(rules { id: "default" team: "t" })pb",
       "routing.rules[0].id: 'default' is reserved"},
      {"misspelt field", team + R"pb(rules {
                                       id: "x"
                                       team: "t"
                                       when { field: "country" equals: "GB" }
                                       when {}
                                       when {}
                                     })pb",
       "routing.rules[0].when[1].field: empty field name (rule 'x')"},
      {"unknown field", team + R"pb(rules { id: "a" team: "t" }
                                    rules { id: "b" team: "t" }
                                    rules {
                                      id: "c"
                                      team: "t"
                                      when { field: "contry" equals: "GB" }
                                    })pb",
       "routing.rules[2].when[0].field: unknown field 'contry' (rule 'c')"},
      {"activity fields are not available to routing", team + R"pb(rules {
                                                                     id: "x"
                                                                     team: "t"
                                                                     when {
                                                                       field: "visits"
                                                                       range { min: 1 }
                                                                     }
                                                                   })pb",
       "routing.rules[0].when[0].field: field 'visits' is an activity field"},
      {"missing default team", R"pb(teams {
                                      id: "t"
                                      reps { id: "r" }
                                    })pb",
       "routing.default_team: required"},
      {"unknown default team", R"pb(default_team: "x"
                                    teams {
                                      id: "t"
                                      reps { id: "r" }
                                    })pb",
       "routing.default_team: unknown team 'x'"},
      {"duplicate rep across teams", team + R"pb(teams {
                                                   id: "u"
                                                   reps { id: "r" }
                                                 })pb",
       "routing.teams[1].reps[0].id: duplicate rep id 'r'"},
      {"empty rep id", R"pb(default_team: "t"
                            teams {
                              id: "t"
                              reps {}
                            })pb",
       "routing.teams[0].reps[0].id: empty rep id"},
      {"negative weight", R"pb(default_team: "t"
                               teams {
                                 id: "t"
                                 reps { id: "r" weight: -1 }
                               })pb",
       "routing.teams[0].reps[0].weight: -1 is not in 0..1000"},
      {"negative cap", R"pb(default_team: "t"
                            teams {
                              id: "t"
                              reps { id: "r" max_open_leads: -1 }
                            })pb",
       "routing.teams[0].reps[0].max_open_leads: must be >= 0"},
      {"negative quota", R"pb(default_team: "t"
                              teams {
                                id: "t"
                                reps { id: "r" daily_quota: -2 }
                              })pb",
       "routing.teams[0].reps[0].daily_quota: must be >= 0"},
      {"queue timeout without escalation", R"pb(default_team: "t"
                                                teams {
                                                  id: "t"
                                                  queue_timeout_minutes: 30
                                                  reps { id: "r" }
                                                })pb",
       "routing.teams[0].queue_timeout_minutes: needs escalate_to"},
      {"negative monthly quota", R"pb(default_team: "t"
                                      teams {
                                        id: "t"
                                        reps { id: "r" monthly_quota: -1 }
                                      })pb",
       "routing.teams[0].reps[0].monthly_quota: must be >= 0"},
      {"hours without a time zone",
       R"pb(default_team: "t"
            teams {
              id: "t"
              reps {
                id: "r"
                working_hours { start: "09:00" end: "17:00" }
              }
            })pb",
       "routing.teams[0].reps[0].time_zone: required with working_hours"},
      {"unknown time zone", R"pb(default_team: "t"
                                 teams {
                                   id: "t"
                                   reps { id: "r" time_zone: "Europe/Lundon" }
                                 })pb",
       "routing.teams[0].reps[0].time_zone: unknown time zone 'Europe/Lundon'"},
      {"not an IANA name", R"pb(default_team: "t"
                                teams {
                                  id: "t"
                                  reps { id: "r" time_zone: "GMT +1" }
                                })pb",
       "routing.teams[0].reps[0].time_zone: 'GMT +1' is not an IANA time zone name"},
      {"bad start time",
       R"pb(default_team: "t"
            teams {
              id: "t"
              reps {
                id: "r"
                time_zone: "UTC"
                working_hours { start: "9:00" end: "17:00" }
              }
            })pb",
       "routing.teams[0].reps[0].working_hours[0].start: '9:00' is not a time"},
      {"bad end time",
       R"pb(default_team: "t"
            teams {
              id: "t"
              reps {
                id: "r"
                time_zone: "UTC"
                working_hours { start: "09:00" end: "17:75" }
              }
            })pb",
       "routing.teams[0].reps[0].working_hours[0].end: '17:75' is not a time"},
      {"empty window",
       R"pb(default_team: "t"
            teams {
              id: "t"
              reps {
                id: "r"
                time_zone: "UTC"
                working_hours { start: "09:00" end: "09:00" }
              }
            })pb",
       "routing.teams[0].reps[0].working_hours[0]: start equals end"},
      {"bad day",
       R"pb(default_team: "t"
            teams {
              id: "t"
              reps {
                id: "r"
                time_zone: "UTC"
                working_hours {
                  days: [ 1, 8 ]
                  start: "09:00"
                  end: "17:00"
                }
              }
            })pb",
       "routing.teams[0].reps[0].working_hours[0].days[1]: 8 is not a day"},
      {"negative SLA", R"pb(default_team: "t"
                            teams {
                              id: "t"
                              reps { id: "r" }
                              sla_minutes: -5
                            })pb",
       "routing.teams[0].sla_minutes: must be >= 0"},
      {"escalation to a missing team", R"pb(default_team: "t"
                                            teams {
                                              id: "t"
                                              reps { id: "r" }
                                              escalate_to: "nope"
                                            })pb",
       "routing.teams[0].escalate_to: unknown team 'nope'"},
      {"escalation to itself", R"pb(default_team: "t"
                                    teams {
                                      id: "t"
                                      reps { id: "r" }
                                      escalate_to: "t"
                                    })pb",
       "routing.teams[0].escalate_to: a team cannot escalate to itself"},
  };
  for (const InvalidRulesCase& c : cases) {
    const auto compiled = CompileRoutingRules(ParseText<RoutingRules>(c.rules));
    ASSERT_FALSE(compiled.ok()) << c.name;
    EXPECT_EQ(compiled.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_THAT(compiled.status().message(), HasSubstr(c.message)) << c.name;
  }
}

TEST(CompileRoutingRulesTest, AcceptsEndOfDayAndEscalationToManager) {
  const auto compiled = CompileRoutingRules(ParseText<RoutingRules>(R"pb(
    default_team: "t"
    teams {
      id: "t"
      escalate_to: "manager"
      reps {
        id: "r"
        time_zone: "Australia/Sydney"
        working_hours { start: "18:00" end: "24:00" }
      }
    }
  )pb"));
  ASSERT_TRUE(compiled.ok()) << compiled.status();
  EXPECT_EQ((*compiled)->route_at(), events::v1::CATEGORY_SALES_READY);
  ASSERT_NE((*compiled)->FindTeam("t"), nullptr);
  EXPECT_EQ((*compiled)->FindTeam("nope"), nullptr);
}

// --- The default rule file. ---

class DefaultRoutingRulesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<RoutingRules> loaded = LoadYamlConfig<RoutingRules>("config/routing.yaml");
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    absl::StatusOr<std::shared_ptr<const CompiledRoutingRules>> compiled =
        CompileRoutingRules(*loaded);
    ASSERT_TRUE(compiled.ok()) << compiled.status();
    rules_ = *compiled;
  }
  std::shared_ptr<const CompiledRoutingRules> rules_;
};

TEST_F(DefaultRoutingRulesTest, ConfigFileCompilesWithTheRequiredTeams) {
  EXPECT_EQ(rules_->route_at(), events::v1::CATEGORY_SALES_READY);
  EXPECT_EQ(rules_->default_team(), "inbound-queue");
  for (const char* id : {"uk-fashion", "emea", "americas", "apac", "inbound-queue"}) {
    const Team* team = rules_->FindTeam(id);
    ASSERT_NE(team, nullptr) << id;
    EXPECT_GE(team->reps_size(), 2) << id;
    EXPECT_LE(team->reps_size(), 3) << id;
    EXPECT_GT(team->sla_minutes(), 0) << id;
  }
}

TEST_F(DefaultRoutingRulesTest, LeadsGoToTheirRegionalTeams) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"pb(country: "GB"
            interests: [ "shoes" ])pb",
       "uk-fashion"},
      {R"pb(country: "GB"
            interests: [ "analytics" ])pb",
       "emea"},
      {R"pb(country: "NO")pb", "emea"},
      {R"pb(country: "DE")pb", "emea"},
      {R"pb(country: "US"
            interests: [ "shoes" ])pb",
       "americas"},
      {R"pb(country: "BR")pb", "americas"},
      {R"pb(country: "JP")pb", "apac"},
      {R"pb(country: "AU")pb", "apac"},
      {R"pb(country: "AQ")pb", "inbound-queue"},
      {"", "inbound-queue"},
  };
  for (const auto& [lead, team] : cases) {
    EXPECT_EQ(
        MatchTeam(*rules_, ParseText<LeadProfile>(lead), Category(events::v1::CATEGORY_SALES_READY))
            .team_id,
        team)
        << lead;
  }
}

TEST_F(DefaultRoutingRulesTest, UkFashionRepsAreAssignedDuringLondonOfficeHours) {
  const Team& team = *rules_->FindTeam("uk-fashion");
  const std::vector<RepState> states = RepStatesFor(team);
  // Monday 10:30 in London: every rep works; round-robin from the cursor.
  const auto choice = PickRep(team, states, 0, Local("Europe/London", 2024, 6, 3, 10, 30));
  ASSERT_TRUE(choice.has_value());
  EXPECT_EQ(choice->rep_id, "amelia.hughes");
  // Sunday: nobody; the lead waits in the queue.
  EXPECT_FALSE(PickRep(team, states, 0, Local("Europe/London", 2024, 6, 9, 10, 30)).has_value());
}

TEST(PickRepTest, TheMonthlyQuotaCapsARepUntilTheMonthTurns) {
  Team team = MakeTeam(config::v1::STRATEGY_ROUND_ROBIN, {"a", "b"});
  team.mutable_reps(0)->set_monthly_quota(200);
  std::vector<RepState> states = RepStatesFor(team);
  states[0].assigned_this_month = 199;
  EXPECT_EQ(IneligibleReason(states[0], kMonday), "");
  states[0].assigned_this_month = 200;
  EXPECT_EQ(IneligibleReason(states[0], kMonday), "monthly quota reached (200)");
  std::vector<std::string> order;
  RouteMany(team, states, 4, kMonday, &order);
  EXPECT_EQ(order, (std::vector<std::string>{"b", "b", "b", "b"}));
  // The caller counts per month: a new month starts from zero.
  states[0].assigned_this_month = 0;
  EXPECT_EQ(PickRep(team, states, 0, kMonday)->rep_id, "a");
}

TEST(WithTeamsTest, OverridesReplaceTeamsInPlaceAndNewTeamsAreAppended) {
  const RoutingRules base = ParseText<RoutingRules>(R"pb(default_team: "t"
                                                         rules { id: "x" team: "u" }
                                                         teams {
                                                           id: "t"
                                                           reps { id: "r" }
                                                         }
                                                         teams {
                                                           id: "u"
                                                           reps { id: "s" }
                                                         })pb");
  Team replaced = MakeTeam(config::v1::STRATEGY_LEAST_LOADED, {"r", "r2"});
  replaced.set_id("t");
  Team added = MakeTeam(config::v1::STRATEGY_ROUND_ROBIN, {"n"});
  added.set_id("new");
  const RoutingRules merged = WithTeams(base, {added, replaced});
  ASSERT_EQ(merged.teams_size(), 3);
  EXPECT_EQ(merged.teams(0).id(), "t");
  EXPECT_EQ(merged.teams(0).reps_size(), 2);
  EXPECT_EQ(merged.teams(0).strategy(), config::v1::STRATEGY_LEAST_LOADED);
  EXPECT_EQ(merged.teams(1).id(), "u");
  EXPECT_EQ(merged.teams(2).id(), "new");
  EXPECT_EQ(merged.rules_size(), 1);
  EXPECT_EQ(merged.default_team(), "t");

  absl::StatusOr<std::shared_ptr<const CompiledRoutingRules>> compiled =
      CompileRoutingRules(merged);
  ASSERT_TRUE(compiled.ok()) << compiled.status();
  EXPECT_EQ((*compiled)->source().teams_size(), 3);
  ASSERT_NE((*compiled)->FindTeam("new"), nullptr);

  // An override that breaks the file is caught by the same validation as the YAML.
  Team bad = MakeTeam(config::v1::STRATEGY_ROUND_ROBIN, {"s"});  // s is u's rep already
  bad.set_id("new");
  absl::StatusOr<std::shared_ptr<const CompiledRoutingRules>> rejected =
      CompileRoutingRules(WithTeams(base, {bad}));
  ASSERT_FALSE(rejected.ok());
  EXPECT_THAT(rejected.status().message(),
              HasSubstr("routing.teams[2].reps[0].id: duplicate rep id 's'"));
}

}  // namespace
}  // namespace leadflow::routing
