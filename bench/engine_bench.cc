// Engine benchmarks: the pure domain logic of each service, without I/O, on the default rules.
//   build/bench/engine_bench --benchmark_min_time=1
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "benchmark/benchmark.h"
#include "common/config/yaml_proto.h"
#include "common/events/envelope.h"
#include "leadflow/config/v1/routing_rules.pb.h"
#include "leadflow/config/v1/scoring_rules.pb.h"
#include "leadflow/config/v1/service_config.pb.h"
#include "services/capture/engine.h"
#include "services/routing/engine.h"
#include "services/scoring/engine.h"
#include "services/tracking/engine.h"

namespace leadflow {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1'790'000'000);

template <typename T>
T LoadConfig(const std::string& file) {
  T config;
  absl::Status s =
      config::LoadYamlProto(std::string(LEADFLOW_SOURCE_DIR) + "/config/" + file, &config);
  if (!s.ok()) std::abort();
  return config;
}

events::v1::LeadSubmission Submission(int i) {
  events::v1::LeadSubmission s;
  s.set_request_id(absl::StrCat("r-", i));
  s.set_source("web_form");
  s.set_email(absl::StrCat("  Jane.Doe+", i, "@Example-Corp.COM "));
  s.set_phone("020 7946 0958");
  s.set_first_name("jane");
  s.set_last_name("o'neil");
  s.set_company("Example Corp Ltd.");
  s.set_job_title("VP of Marketing");
  s.set_country("United Kingdom");
  s.set_company_size(250);
  s.add_interests("Shoes");
  return s;
}

void BM_CaptureNormalize(benchmark::State& state) {
  const capture::Normalizer normalizer(LoadConfig<config::v1::CaptureConfig>("capture.yaml"));
  const events::v1::LeadSubmission s = Submission(1);
  for (auto _ : state) benchmark::DoNotOptimize(normalizer.Normalize(s, kNow));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CaptureNormalize);

void BM_CaptureMatchAndMerge(benchmark::State& state) {
  const capture::Normalizer normalizer(LoadConfig<config::v1::CaptureConfig>("capture.yaml"));
  auto norm = normalizer.Normalize(Submission(1), kNow);
  std::vector<events::v1::LeadProfile> candidates;
  for (int i = 0; i < 20; ++i) {
    auto other = normalizer.Normalize(Submission(100 + i), kNow);
    candidates.push_back(capture::NewLead(*other, absl::StrCat("lead-", i), kNow));
  }
  for (auto _ : state) {
    capture::MatchDecision d = capture::Match(*norm, candidates);
    benchmark::DoNotOptimize(capture::Merge(candidates[0], *norm, kNow));
    benchmark::DoNotOptimize(d);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CaptureMatchAndMerge);

void BM_TrackingNormalizeAndApply(benchmark::State& state) {
  auto normalizer =
      tracking::ActivityNormalizer::Create(LoadConfig<config::v1::TrackingConfig>("tracking.yaml"));
  events::v1::InboundActivity inbound;
  inbound.set_type("page");
  inbound.set_user_id("u-1");
  (*inbound.mutable_properties()->mutable_fields())["url"].set_string_value(
      "https://www.example.com/pricing");
  *inbound.mutable_timestamp() = events::ToProto(kNow - absl::Hours(2));
  tracking::ActivityHistory history;
  int i = 0;
  for (auto _ : state) {
    inbound.set_message_id(absl::StrCat("m-", i++));
    auto activity = normalizer->Normalize(inbound, kNow);
    events::v1::LeadAggregates aggregates;
    tracking::ApplyActivity(*activity, kNow, &history, &aggregates);
    std::string bytes = history.Serialize();
    benchmark::DoNotOptimize(tracking::ActivityHistory::Parse(bytes));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TrackingNormalizeAndApply);

void BM_ScoringScoreAndDiff(benchmark::State& state) {
  auto rules = scoring::CompileScoringRules(LoadConfig<config::v1::ScoringRules>("scoring.yaml"));
  const capture::Normalizer normalizer(LoadConfig<config::v1::CaptureConfig>("capture.yaml"));
  const events::v1::LeadProfile profile =
      capture::NewLead(*normalizer.Normalize(Submission(1), kNow), "lead-1", kNow);
  events::v1::LeadAggregates aggregates;
  auto& pricing = (*aggregates.mutable_by_page_category())["pricing"];
  pricing.set_total(3);
  pricing.set_last_7d(3);
  (*aggregates.mutable_by_type())["page_view"].set_last_30d(5);
  *aggregates.mutable_last_seen_at() = events::ToProto(kNow - absl::Hours(3));
  events::v1::ScoreSnapshot previous;
  for (auto _ : state) {
    events::v1::ScoreSnapshot current =
        scoring::Score(**rules, profile, aggregates, scoring::ScoreContext{}, kNow);
    benchmark::DoNotOptimize(scoring::Diff(previous, current, 5));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ScoringScoreAndDiff);

void BM_RoutingMatchAndPick(benchmark::State& state) {
  const config::v1::RoutingRules config = LoadConfig<config::v1::RoutingRules>("routing.yaml");
  auto rules = routing::CompileRoutingRules(config);
  const capture::Normalizer normalizer(LoadConfig<config::v1::CaptureConfig>("capture.yaml"));
  const events::v1::LeadProfile profile =
      capture::NewLead(*normalizer.Normalize(Submission(1), kNow), "lead-1", kNow);
  events::v1::ScoreSnapshot score;
  score.set_category(events::v1::CATEGORY_SALES_READY);
  uint64_t cursor = 0;
  for (auto _ : state) {
    routing::RouteDecision decision = routing::MatchTeam(**rules, profile, score);
    for (const config::v1::Team& team : config.teams()) {
      if (team.id() != decision.team_id) continue;
      auto choice = routing::PickRep(team, routing::RepStatesFor(team), cursor++, kNow);
      benchmark::DoNotOptimize(choice);
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RoutingMatchAndPick);

}  // namespace
}  // namespace leadflow
