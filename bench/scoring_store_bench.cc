// Store-level benchmark of scoring against a real redis-server this tool starts on a free port
// (never the stack's, AOF on as in the stack): captures N leads, then feeds `--rounds`
// `leads.activity` events per lead through the production handler path — decode, read the
// lead's state, score with the default rules (config/scoring.yaml), apply-once in Redis (state,
// segment sets, decay schedule, memo), every `leads.scored` handed to a producer that
// acknowledges at once — **without Kafka**, and reports events per second end to end.
//   build/bench/scoring_store_bench --leads 10000 --rounds 10 --workers 1 [--batch 256]
// The events are encoded before the clock starts (encoding is tracking's work); each lead's
// events are handled in order, as its partition would deliver them. With --workers > 1 the
// leads are split over threads (and Redis connections), like partitions over consumers.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/bench_support.h"
#include "common/config/env.h"
#include "common/events/codec.h"
#include "common/events/envelope.h"
#include "common/kafka/handler.h"
#include "common/kafka/producer.h"
#include "common/kafka/topics.h"
#include "common/redis/hiredis_client.h"
#include "common/testing/events.h"
#include "common/testing/redis_server.h"
#include "common/testing/simulated_clock.h"
#include "leadflow/events/v1/activity.pb.h"
#include "leadflow/events/v1/lead.pb.h"
#include "services/scoring/handler.h"
#include "services/scoring/store.h"

namespace leadflow::scoring {
namespace {

using bench::CountingProducer;
using bench::RedisCpu;

// One step of a lead's journey: the activity type and, for page views, the page category.
struct Step {
  const char* type;
  const char* page_category;
};
// A mix like tracking's output: mostly page views and e-mail engagement, now and then a
// hand-raiser, so categories, segments and the score bucket move for some events and not others.
constexpr Step kJourney[] = {
    {"page_view", ""},        {"page_view", "blog"},    {"email_open", ""},
    {"page_view", "pricing"}, {"email_click", ""},      {"page_view", "case-studies"},
    {"download", ""},         {"page_view", "pricing"}, {"webinar_attended", ""},
    {"page_view", "pricing"}, {"form_submit", ""},      {"demo_request", ""},
};

void Bump(events::v1::ActivityCounts& counts, absl::Time at) {
  counts.set_total(counts.total() + 1);
  counts.set_last_1d(counts.last_1d() + 1);
  counts.set_last_7d(counts.last_7d() + 1);
  counts.set_last_30d(counts.last_30d() + 1);
  counts.set_last_90d(counts.last_90d() + 1);
  *counts.mutable_last_at() = events::ToProto(at);
}

events::v1::LeadProfile Profile(int i) {
  static constexpr events::v1::Seniority kSeniorities[] = {
      events::v1::SENIORITY_EXECUTIVE, events::v1::SENIORITY_SENIOR, events::v1::SENIORITY_MANAGER,
      events::v1::SENIORITY_INDIVIDUAL_CONTRIBUTOR, events::v1::SENIORITY_STUDENT};
  events::v1::LeadProfile lead;
  lead.set_lead_id(absl::StrCat("L-", i));
  lead.set_email(absl::StrCat("lead", i, "@company", i % 997, ".example"));
  lead.set_first_name("Jane");
  lead.set_company(absl::StrCat("Company ", i % 997));
  lead.set_seniority(kSeniorities[i % 5]);
  lead.set_company_size(10 + (i * 37) % 2000);
  lead.set_industry(i % 3 == 0 ? "software" : "manufacturing");
  lead.set_job_function(i % 2 == 0 ? "marketing" : "engineering");
  lead.set_country(i % 4 == 0 ? "GB" : "DE");
  return lead;
}

int Run(int argc, char** argv) {
  bench::RunOptions shape;
  shape.batch = 1;
  int leads = 10000;
  int rounds = 10;
  ScoringOptions options;
  CLI::App app{"scoring_store_bench — scoring's leads.activity path against a private redis"};
  app.add_option("--leads", leads, "leads")->check(CLI::Range(1, 10000000));
  app.add_option("--rounds", rounds, "activity events per lead")->check(CLI::Range(1, 1000));
  app.add_option("--history-size", options.history_size,
                 "emitted snapshots kept per lead (production: 20)")
      ->check(CLI::Range(0, 1000));
  bench::AddRunOptions(app, shape);
  CLI11_PARSE(app, argc, argv);

  std::optional<bench::PrivateRedis> private_redis = bench::StartPrivateRedisFor(shape);
  if (!private_redis.has_value()) return 1;
  redis::RedisClient& client = *private_redis->client;
  absl::StatusOr<std::unique_ptr<ScoringRulesSource>> rules = ScoringRulesSource::Create(
      std::string(LEADFLOW_SOURCE_DIR) + "/config/scoring.yaml", LoadScoringRules);
  if (!rules.ok()) {
    std::fprintf(stderr, "rules: %s\n", rules.status().ToString().c_str());
    return 1;
  }
  const absl::Time start =
      absl::FromCivil(absl::CivilSecond(2026, 1, 5, 9, 0, 0), absl::UTCTimeZone());
  testing::SimulatedClock clock(start);
  const kafka::Topics topics;
  ScoringStore store(client);
  ModelCache model(store, clock);
  ScoringHandler handler(**rules, store, model, topics, clock, options);
  CountingProducer producer;

  // Capture every lead (not measured): the profile must be known before activity scores.
  const absl::Time capture_start = absl::Now();
  for (int i = 0; i < leads; ++i) {
    events::v1::LeadCaptured captured;
    const events::v1::LeadProfile lead = Profile(i);
    *captured.mutable_envelope() =
        testing::Envelope(lead.lead_id(), absl::StrCat("cap-", i), start);
    captured.set_change(events::v1::LeadCaptured::CHANGE_CREATED);
    *captured.mutable_lead() = lead;
    absl::StatusOr<std::vector<kafka::OutboundMessage>> out =
        handler.HandleCaptured(testing::Consumed(
            events::Encode(topics.Name(kafka::kLeadsCaptured), lead.lead_id(), captured)));
    if (!out.ok()) {
      std::fprintf(stderr, "capture: %s\n", out.status().ToString().c_str());
      return 1;
    }
  }
  const absl::Duration capture_time = absl::Now() - capture_start;

  // Every lead's events, in order, with the aggregates tracking would send after each.
  std::vector<std::vector<kafka::ConsumedMessage>> events_by_lead(leads);
  int64_t bytes = 0;
  for (int i = 0; i < leads; ++i) {
    const std::string lead_id = absl::StrCat("L-", i);
    events::v1::LeadAggregates aggregates;
    events_by_lead[i].reserve(rounds);
    for (int r = 0; r < rounds; ++r) {
      const Step& step = kJourney[(i + r) % std::size(kJourney)];
      const absl::Time at = start + absl::Minutes(10 * (r + 1)) + absl::Milliseconds(i % 1000);
      events::v1::LeadActivity activity;
      const std::string event_id = absl::StrCat("act-", i, "-", r);
      *activity.mutable_envelope() = testing::Envelope(lead_id, event_id, at);
      activity.mutable_activity()->set_message_id(event_id);
      activity.mutable_activity()->set_type(step.type);
      activity.mutable_activity()->set_page_category(step.page_category);
      *activity.mutable_activity()->mutable_occurred_at() = events::ToProto(at);
      Bump((*aggregates.mutable_by_type())[step.type], at);
      if (step.page_category[0] != '\0') {
        Bump((*aggregates.mutable_by_page_category())[step.page_category], at);
      }
      if (!aggregates.has_first_seen_at())
        *aggregates.mutable_first_seen_at() = events::ToProto(at);
      *aggregates.mutable_last_seen_at() = events::ToProto(at);
      aggregates.set_visits(1 + r / 3);
      aggregates.set_seconds_on_site(60 * (r + 1));
      *activity.mutable_aggregates() = aggregates;
      kafka::ConsumedMessage message = testing::Consumed(
          events::Encode(topics.Name(kafka::kLeadsActivity), lead_id, activity), r);
      bytes += static_cast<int64_t>(message.value.size());
      events_by_lead[i].push_back(std::move(message));
    }
  }
  // Processing time after every event's time: scores never wait for the clock.
  clock.Set(start + absl::Minutes(10 * (rounds + 1)));

  const int64_t scored_before = producer.sent();
  const double cpu_start = RedisCpu(client);
  const double process_cpu_start = bench::ProcessCpu();
  const absl::Time run_start = absl::Now();
  // As the service routes leads.activity (services/scoring/app.cc).
  const bench::PartitionedRun run = bench::RunAsTheServiceDoes(
      events_by_lead, shape.workers, static_cast<size_t>(shape.batch), shape.lanes,
      [&](const kafka::ConsumedMessage& m) { return handler.HandleActivity(m); },
      [&](const std::vector<const kafka::ConsumedMessage*>& wave) {
        return handler.HandleActivityBatch(wave);
      },
      producer);
  const absl::Duration run_time = absl::Now() - run_start;
  const double redis_cpu = RedisCpu(client) - cpu_start;
  const double process_cpu = bench::ProcessCpu() - process_cpu_start;
  const int64_t events = run.handled;
  const int64_t scored = producer.sent() - scored_before;

  std::printf("leads captured:            %d in %.2f s (%.0f/s, not part of the figure below)\n",
              leads, absl::ToDoubleSeconds(capture_time),
              leads / absl::ToDoubleSeconds(capture_time));
  std::printf(
      "activity events:           %lld handled, %lld errors, %lld leads.scored emitted "
      "(%.0f B per input event)\n",
      static_cast<long long>(events), static_cast<long long>(run.errors),
      static_cast<long long>(scored), static_cast<double>(bytes) / (leads * rounds));
  std::printf(
      "events per second:         %.0f (%d worker threads, batches of %d, history %d, %.2f s)\n",
      events / absl::ToDoubleSeconds(run_time), shape.workers, shape.batch, options.history_size,
      absl::ToDoubleSeconds(run_time));
  std::printf("latency per event:         %.1f us wall per thread\n",
              1e6 * absl::ToDoubleSeconds(run_time) * shape.workers / std::max<int64_t>(1, events));
  std::printf("redis-server CPU:          %.2f s (%.1f us per event)\n", redis_cpu,
              1e6 * redis_cpu / std::max<int64_t>(1, events));
  std::printf("this process:              %.2f s CPU (%.1f us per event)\n", process_cpu,
              1e6 * process_cpu / std::max<int64_t>(1, events));
  // What each apply-once rewrites: the lead's whole state record (profile, aggregates, score
  // with its contributions, and the bounded history of emitted snapshots).
  int64_t state_bytes = 0;
  const int sample = std::min(leads, 100);
  for (int i = 0; i < sample; ++i) {
    absl::StatusOr<redis::Reply> len = client.Command(
        {"HSTRLEN", ScoringStore::StateKey(absl::StrCat("L-", i * (leads / sample))), "d"});
    if (len.ok()) state_bytes += len->integer;
  }
  std::printf("state record:              %.0f B on average (%d leads sampled)\n",
              static_cast<double>(state_bytes) / sample, sample);
  if (shape.commandstats) {
    absl::StatusOr<redis::Reply> stats = client.Command({"INFO", "commandstats"});
    if (stats.ok()) std::printf("%s\n", stats->str.c_str());
  }
  return run.errors == 0 && events == static_cast<int64_t>(leads) * rounds ? 0 : 2;
}

}  // namespace
}  // namespace leadflow::scoring

int main(int argc, char** argv) { return leadflow::scoring::Run(argc, argv); }
