// Engine benchmarks: the pure domain logic of each service, without I/O, on the default rules.
//   build/bench/engine_bench --benchmark_min_time=1
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "benchmark/benchmark.h"
#include "common/config/yaml_proto.h"
#include "common/events/codec.h"
#include "common/events/envelope.h"
#include "leadflow/config/v1/routing_rules.pb.h"
#include "leadflow/config/v1/scoring_rules.pb.h"
#include "leadflow/config/v1/service_config.pb.h"
#include "services/capture/engine.h"
#include "services/nurturing/app.h"
#include "services/nurturing/engine.h"
#include "services/nurturing/enrollment.h"
#include "services/routing/engine.h"
#include "services/scoring/engine.h"
#include "services/tracking/engine.h"
#include "services/tracking/segment_json.h"

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

// A web-form submission as JSON on leads.inbound (Submission(1) through the proto3 JSON mapping,
// with a consent), decoded as capture decodes it: events::DecodeJson.
void BM_CaptureDecodeSubmissionJson(benchmark::State& state) {
  events::v1::LeadSubmission submission = Submission(1);
  events::v1::Consent* consent = submission.add_consents();
  consent->set_channel(events::v1::CHANNEL_EMAIL);
  consent->set_granted(true);
  const std::string json = events::ToJson(submission);
  for (auto _ : state) {
    events::v1::LeadSubmission decoded;
    if (absl::Status s = events::DecodeJson(json, &decoded, /*ignore_unknown_fields=*/false);
        !s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(decoded);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(json.size()));
}
BENCHMARK(BM_CaptureDecodeSubmissionJson);

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

// What every activity pays before the engine: the Segment specification's example `track` call
// (as tests/fuzz/corpus/segment_activity/track.json holds it, after the fuzzer's selector byte)
// decoded into InboundActivity. Arg 0: protobuf's JSON mapping (events::DecodeJson), as tracking
// decoded activities.inbound until 2026-12-03; arg 1: tracking's DecodeSegmentJson, as it does now.
void BM_TrackingDecodeSegmentJson(benchmark::State& state) {
  const std::string json =
      R"({"type":"track","event":"Registered","properties":{"plan":"Pro Annual",)"
      R"("accountType":"Facebook"},"messageId":"ajs-f8ca1e4de5024d9430b3928bd8ac6b96",)"
      R"("userId":"AiUGstSDIg","context":{"campaign":{"name":"TPS Innovation Newsletter",)"
      R"("source":"Newsletter","medium":"email"}},"timestamp":"2015-12-12T19:11:01.249Z",)"
      R"("sentAt":"2015-12-12T19:11:01.169Z"})";
  const bool mapping = state.range(0) == 0;
  for (auto _ : state) {
    events::v1::InboundActivity inbound;
    const absl::Status s = mapping
                               ? events::DecodeJson(json, &inbound, /*ignore_unknown_fields=*/true)
                               : tracking::DecodeSegmentJson(json, &inbound);
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(inbound);
  }
  state.SetLabel(mapping ? "protobuf JSON mapping" : "DecodeSegmentJson");
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(json.size()));
}
BENCHMARK(BM_TrackingDecodeSegmentJson)->Arg(0)->Arg(1);

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

// The learned conversion model: one outcome's update (what scoring does per won/lost outcome,
// besides the Redis round trip) and one prediction with its top factors (what every score
// carries), on the default model settings (2^14 weights), features of a normalised lead.
events::v1::LeadAggregates ModelAggregates() {
  events::v1::LeadAggregates aggregates;
  (*aggregates.mutable_by_type())["page_view"].set_total(12);
  (*aggregates.mutable_by_type())["demo_request"].set_total(1);
  (*aggregates.mutable_by_page_category())["pricing"].set_total(3);
  aggregates.set_visits(4);
  aggregates.set_seconds_on_site(900);
  return aggregates;
}

void BM_ScoringModelUpdate(benchmark::State& state) {
  auto rules = scoring::CompileScoringRules(LoadConfig<config::v1::ScoringRules>("scoring.yaml"));
  const capture::Normalizer normalizer(LoadConfig<config::v1::CaptureConfig>("capture.yaml"));
  const events::v1::LeadProfile profile =
      capture::NewLead(*normalizer.Normalize(Submission(1), kNow), "lead-1", kNow);
  const events::v1::LeadAggregates aggregates = ModelAggregates();
  scoring::ConversionModel model((*rules)->model_settings().hash_bits);
  bool won = false;
  for (auto _ : state) {
    // Features are built per outcome, as the handler does.
    model.Update(scoring::LeadFeatures(profile, aggregates, events::v1::CATEGORY_QUALIFIED),
                 won = !won, (*rules)->model_settings());
  }
  benchmark::DoNotOptimize(model.outcomes());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ScoringModelUpdate);

void BM_ScoringModelPredict(benchmark::State& state) {
  auto rules = scoring::CompileScoringRules(LoadConfig<config::v1::ScoringRules>("scoring.yaml"));
  const capture::Normalizer normalizer(LoadConfig<config::v1::CaptureConfig>("capture.yaml"));
  const events::v1::LeadProfile profile =
      capture::NewLead(*normalizer.Normalize(Submission(1), kNow), "lead-1", kNow);
  const events::v1::LeadAggregates aggregates = ModelAggregates();
  scoring::ModelSettings settings = (*rules)->model_settings();
  settings.min_outcomes = 0;  // serve the model, with factors, not the prior
  scoring::ConversionModel model(settings.hash_bits);
  for (int i = 0; i < 100; ++i) {
    model.Update(scoring::LeadFeatures(profile, aggregates, events::v1::CATEGORY_QUALIFIED),
                 i % 3 == 0, settings);
  }
  for (auto _ : state) {
    benchmark::DoNotOptimize(model.Predict(
        scoring::LeadFeatures(profile, aggregates, events::v1::CATEGORY_QUALIFIED), settings));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ScoringModelPredict);

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
// Nurturing's per-touch decision: the scheduler's DecideDue for a claimed cold lead whose
// first step is due — consent, quiet hours, frequency cap, content variant, the touch built and
// the state advanced (no Redis, no Kafka).
void BM_NurturingDecideDue(benchmark::State& state) {
  auto tracks =
      nurturing::LoadNurtureTracks(std::string(LEADFLOW_SOURCE_DIR) + "/config/nurture.yaml");
  if (!tracks.ok()) std::abort();
  const nurturing::NurturingPolicy policy;
  internal::v1::NurtureLeadState lead;
  events::v1::LeadScored scored;
  scored.mutable_envelope()->set_event_id("scored-1");
  scored.mutable_lead()->set_lead_id("L-1");
  scored.mutable_lead()->set_email("jane@example.com");
  scored.mutable_lead()->set_first_name("Jane");
  scored.mutable_lead()->set_time_zone("Europe/London");
  events::v1::Consent* consent = scored.mutable_lead()->add_consents();
  consent->set_channel(events::v1::CHANNEL_EMAIL);
  consent->set_granted(true);
  scored.mutable_score()->set_category(events::v1::CATEGORY_COLD);
  // 12:00 UTC: outside quiet hours in London.
  const absl::Time noon = absl::FromUnixSeconds(1'790'000'000 - 1'790'000'000 % 86400 + 43200);
  nurturing::ApplyScored(lead, "L-1", scored, **tracks, policy, noon);
  for (auto _ : state) {
    nurturing::DueDecision decision = nurturing::DecideDue(lead, **tracks, policy, noon);
    if (decision.kind != nurturing::DueDecision::Kind::kSend) std::abort();
    benchmark::DoNotOptimize(decision);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_NurturingDecideDue);

}  // namespace leadflow
