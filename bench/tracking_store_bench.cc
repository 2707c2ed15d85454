// Store-level benchmark of tracking against a real redis-server this tool starts on a free port
// (never the stack's, AOF on as in the stack): links N leads (leads.captured, not timed), then
// feeds `--rounds` Segment calls per lead as JSON on activities.inbound through the production
// handler path — decode, normalise, resolve the identity, apply to the lead's history, append to
// the timeline, apply-once per messageId, every `leads.activity` handed to a producer that
// acknowledges at once — **without Kafka**, and reports activities per second end to end, Redis
// CPU per activity and Redis memory per tracked lead.
//   build/bench/tracking_store_bench --leads 10000 --rounds 20 --workers 2 [--batch 256]
// The calls are encoded before the clock starts (encoding is the upstream's work); each lead's
// calls are handled in order, as its partition would deliver them. With --workers > 1 the leads
// are split over threads (and Redis connections), like partitions over consumers.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/bench_support.h"
#include "common/config/env.h"
#include "common/config/yaml_proto.h"
#include "common/events/codec.h"
#include "common/events/envelope.h"
#include "common/kafka/handler.h"
#include "common/kafka/topics.h"
#include "common/redis/hiredis_client.h"
#include "common/testing/events.h"
#include "common/testing/redis_server.h"
#include "common/testing/simulated_clock.h"
#include "leadflow/events/v1/lead.pb.h"
#include "services/tracking/handler.h"
#include "services/tracking/store.h"
#include "tools/leadctl/workload.h"

namespace leadflow::tracking {
namespace {

using bench::CountingProducer;
using bench::RedisCpu;
using bench::UsedMemory;

// One Segment call of a lead's journey: type, event (track) or page name, and URL (page).
struct Call {
  const char* type;
  const char* event;
  const char* url;
};
// A mix like a B2B site's: mostly page views across the categories of config/tracking.yaml,
// e-mail engagement, now and then a hand-raiser.
constexpr Call kJourney[] = {
    {"page", "Home", "https://www.example.com/"},
    {"page", "Blog", "https://www.example.com/blog/lead-scoring"},
    {"track", "Email Opened", ""},
    {"page", "Pricing", "https://www.example.com/pricing"},
    {"track", "Email Link Clicked", ""},
    {"page", "Features", "https://www.example.com/features/routing"},
    {"track", "Whitepaper Downloaded", ""},
    {"page", "Customers", "https://www.example.com/customers/acme"},
    {"page", "Pricing", "https://www.example.com/pricing"},
    {"track", "Webinar Attended", ""},
    {"page", "Docs", "https://www.example.com/docs/api"},
    {"track", "Demo Requested", ""},
};

int Run(int argc, char** argv) {
  bench::RunOptions shape;
  shape.batch = 1;
  int leads = 10000;
  int rounds = 20;
  CLI::App app{"tracking_store_bench — tracking's activities.inbound path against a private redis"};
  app.add_option("--leads", leads, "leads")->check(CLI::Range(1, 10000000));
  app.add_option("--rounds", rounds, "Segment calls per lead")->check(CLI::Range(1, 10000));
  bench::AddRunOptions(app, shape);
  CLI11_PARSE(app, argc, argv);

  std::optional<bench::PrivateRedis> private_redis = bench::StartPrivateRedisFor(shape);
  if (!private_redis.has_value()) return 1;
  redis::RedisClient& client = *private_redis->client;
  config::v1::TrackingConfig config;
  if (!bench::LoadSourceConfig("tracking.yaml", &config)) return 1;
  absl::StatusOr<ActivityNormalizer> normalizer = ActivityNormalizer::Create(config);
  if (!normalizer.ok()) {
    std::fprintf(stderr, "config: %s\n", normalizer.status().ToString().c_str());
    return 1;
  }
  const absl::Time start =
      absl::FromCivil(absl::CivilSecond(2026, 1, 5, 9, 0, 0), absl::UTCTimeZone());
  testing::SimulatedClock clock(start);
  const kafka::Topics topics;
  TrackingStore store(client);
  TrackingHandler handler(*normalizer, store, topics, clock);
  CountingProducer producer;

  // Link every lead (not measured): its user id (the external id) resolves to the lead.
  const int64_t memory_empty = UsedMemory(client);
  for (int i = 0; i < leads; ++i) {
    events::v1::LeadCaptured captured;
    events::v1::LeadProfile& lead = *captured.mutable_lead();
    lead.set_lead_id(absl::StrCat("L-", i));
    lead.set_email(absl::StrCat("lead", i, "@company", i % 997, ".example"));
    lead.add_external_ids(absl::StrCat("crm-", i));
    *captured.mutable_envelope() =
        testing::Envelope(lead.lead_id(), absl::StrCat("cap-", i), start);
    captured.set_change(events::v1::LeadCaptured::CHANGE_CREATED);
    absl::StatusOr<std::vector<kafka::OutboundMessage>> out =
        handler.HandleCaptured(testing::Consumed(
            events::Encode(topics.Name(kafka::kLeadsCaptured), lead.lead_id(), captured)));
    if (!out.ok()) {
      std::fprintf(stderr, "capture: %s\n", out.status().ToString().c_str());
      return 1;
    }
  }
  const int64_t memory_linked = UsedMemory(client);

  // Every lead's calls, in order, one minute apart (a visit), as upstream JSON.
  std::vector<std::vector<kafka::ConsumedMessage>> calls_by_lead(leads);
  int64_t bytes = 0;
  for (int i = 0; i < leads; ++i) {
    calls_by_lead[i].reserve(rounds);
    for (int r = 0; r < rounds; ++r) {
      const Call& call = kJourney[(i + r) % std::size(kJourney)];
      const absl::Time at = start + absl::Minutes(r + 1) + absl::Milliseconds(i % 1000);
      const std::string user = absl::StrCat("crm-", i);
      kafka::OutboundMessage m =
          leadctl::JsonMessage(topics.Name(kafka::kActivitiesInbound), user,
                               leadctl::SegmentJson(call.type, absl::StrCat("msg-", i, "-", r),
                                                    user, call.event, call.url, at));
      kafka::ConsumedMessage consumed = testing::Consumed(m, r);
      consumed.timestamp = at;
      bytes += static_cast<int64_t>(consumed.value.size());
      calls_by_lead[i].push_back(std::move(consumed));
    }
  }
  // Processing time just after every call's time, as for a live stream.
  clock.Set(start + absl::Minutes(rounds + 1));

  const double cpu_start = RedisCpu(client);
  const double process_cpu_start = bench::ProcessCpu();
  const absl::Time run_start = absl::Now();
  // As the service routes activities.inbound (services/tracking/app.cc).
  const bench::PartitionedRun run = bench::RunAsTheServiceDoes(
      calls_by_lead, shape.workers, static_cast<size_t>(shape.batch), shape.lanes,
      [&](const kafka::ConsumedMessage& m) { return handler.HandleInbound(m); },
      [&](const std::vector<const kafka::ConsumedMessage*>& wave) {
        return handler.HandleInboundBatch(wave);
      },
      producer);
  const absl::Duration run_time = absl::Now() - run_start;
  const double redis_cpu = RedisCpu(client) - cpu_start;
  const double process_cpu = bench::ProcessCpu() - process_cpu_start;
  const int64_t activities = run.handled;
  const int64_t memory_tracked = UsedMemory(client);

  // What a tracked lead keeps once the de-duplication window has passed: history, timeline,
  // identity links and key registry. The per-messageId apply-once records expire with the window
  // (Redis TTL, real time) and leave the registry's expiry index as they go; emulate the window
  // passing by deleting both.
  absl::StatusOr<redis::Reply> expired = client.Command(
      {"EVAL",
       "local n = 0 for _, pattern in ipairs({'tracking:msg:*', '*:expiring'}) do "
       "local cursor = '0' repeat local r = redis.call('SCAN', cursor, 'MATCH', pattern, "
       "'COUNT', 1000) cursor = r[1] for _, k in ipairs(r[2]) do redis.call('DEL', k) "
       "if pattern == 'tracking:msg:*' then n = n + 1 end end until cursor == '0' end return n",
       "0"});
  const int64_t memory_after_window = UsedMemory(client);

  std::printf("leads linked:              %d\n", leads);
  std::printf(
      "Segment calls:             %lld handled, %lld errors, %lld leads.activity emitted "
      "(%.0f B per call on the wire)\n",
      static_cast<long long>(activities), static_cast<long long>(run.errors),
      static_cast<long long>(producer.sent()),
      static_cast<double>(bytes) / (static_cast<double>(leads) * rounds));
  std::printf("activities per second:     %.0f (%d worker threads, batches of %d, %.2f s)\n",
              activities / absl::ToDoubleSeconds(run_time), shape.workers, shape.batch,
              absl::ToDoubleSeconds(run_time));
  std::printf(
      "latency per activity:      %.1f us wall per thread\n",
      1e6 * absl::ToDoubleSeconds(run_time) * shape.workers / std::max<int64_t>(1, activities));
  std::printf("redis-server CPU:          %.2f s (%.1f us per activity)\n", redis_cpu,
              1e6 * redis_cpu / std::max<int64_t>(1, activities));
  std::printf("this process:              %.2f s CPU (%.1f us per activity)\n", process_cpu,
              1e6 * process_cpu / std::max<int64_t>(1, activities));
  std::printf(
      "redis memory per lead:     %.0f B linked, %.0f B after %d calls, %.0f B once the "
      "messageId window passed (%lld apply-once records expired)\n",
      static_cast<double>(memory_linked - memory_empty) / leads,
      static_cast<double>(memory_tracked - memory_empty) / leads, rounds,
      static_cast<double>(memory_after_window - memory_empty) / leads,
      static_cast<long long>(expired.ok() ? expired->integer : -1));
  if (shape.commandstats) {
    absl::StatusOr<redis::Reply> stats = client.Command({"INFO", "commandstats"});
    if (stats.ok()) std::printf("%s\n", stats->str.c_str());
  }
  return run.errors == 0 && activities == static_cast<int64_t>(leads) * rounds ? 0 : 2;
}

}  // namespace
}  // namespace leadflow::tracking

int main(int argc, char** argv) { return leadflow::tracking::Run(argc, argv); }
