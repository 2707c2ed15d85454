// Store-level benchmark of nurturing against a real redis-server this tool starts on a free
// port (never the stack's): enrols N leads, measures Redis memory per enrolled lead, then
// drains the whole due schedule with NurtureScheduler passes — claim, apply-once decision,
// touch handed to a producer that acknowledges at once (no Kafka), delivery confirmation — and
// reports touches per second end to end against Redis.
//   build/bench/nurture_store_bench --leads 100000 --claims-per-pass 2000
// Enrolment writes the records the handler would write (ApplyScored), pipelined in batches, so
// a million leads load in seconds; the drain is the production scheduler code path.
// With --scored, enrolment instead goes through the `leads.scored` route
// (NurturingHandler::HandleScored: apply-once per event, schedule entry, enrolment event) for
// --rounds events per lead, each lead's in order, over --workers threads, handed over --batch at
// a time as a poll's batch (kafka::HandleInKeyWaves + HandleScoredBatch, as services/nurturing/
// app.cc routes them), and reports scored events per second and Redis CPU per event:
//   build/bench/nurture_store_bench --leads 20000 --scored --rounds 5 --workers 2 --batch 256
// With --brokers the touches go to a real broker instead (the services' producer, RdKafkaProducer
// with its defaults, on topics of a fresh prefix) and a touch counts once the broker acknowledged
// it; the deliveries are then confirmed by the scheduler's passes as in the service:
//   scripts/stack.sh up --infra
//   build/bench/nurture_store_bench --leads 100000 --claims-per-pass 6000 --service-loop
//       --brokers 127.0.0.1:19092
#include <atomic>
#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/bench_support.h"
#include "common/config/env.h"
#include "common/events/codec.h"
#include "common/kafka/admin.h"
#include "common/kafka/handler.h"
#include "common/kafka/producer.h"
#include "common/kafka/rdkafka_producer.h"
#include "common/kafka/topics.h"
#include "common/redis/hiredis_client.h"
#include "common/testing/events.h"
#include "common/testing/metrics.h"
#include "common/testing/redis_server.h"
#include "common/testing/simulated_clock.h"
#include "prometheus/registry.h"
#include "services/nurturing/app.h"
#include "services/nurturing/enrollment.h"
#include "services/nurturing/handler.h"
#include "services/nurturing/scheduler.h"
#include "services/nurturing/store.h"

namespace leadflow::nurturing {
namespace {

using bench::CountingProducer;
using bench::RedisCpu;
using bench::UsedMemory;

int Run(int argc, char** argv) {
  int leads = 100000;
  int claims_per_pass = 2000;
  int load_pipeline = 1000;
  int workers = 4;
  bool scored = false;
  int rounds = 1;
  int batch = 1;
  bool commandstats = false;
  int lanes = config::RuntimeConfig{}.wave_lanes;
  bool service_loop = false;
  int interval_ms = 150;
  std::string brokers;
  std::vector<std::string> producer_properties;
  CLI::App app{"nurture_store_bench — nurturing scheduler against a private redis-server"};
  app.add_option("--leads", leads, "leads to enrol")->check(CLI::Range(1, 10000000));
  app.add_option("--claims-per-pass", claims_per_pass, "scheduler claims per pass");
  app.add_option("--load-pipeline", load_pipeline, "enrolment pipeline batch (without --scored)")
      ->check(CLI::Range(1, 1000000));
  app.add_flag("--scored", scored, "enrol through the leads.scored route (HandleScored)");
  app.add_option("--rounds", rounds, "scored events per lead (with --scored)")
      ->check(CLI::Range(1, 10000));
  app.add_option("--batch", batch,
                 "scored events handed over at once, as a poll's batch (1: one by one, Handle())")
      ->check(CLI::Range(1, 10000));
  app.add_option("--workers", workers, "scheduler worker threads (and Redis connections)");
  app.add_flag("--commandstats", commandstats, "print Redis INFO commandstats after the drain");
  app.add_option("--lanes", lanes,
                 "threads each wave of a --scored batch is split over (kafka::InLanes, "
                 "LEADFLOW_WAVE_LANES)")
      ->check(CLI::Range(1, 64));
  app.add_flag("--service-loop", service_loop,
               "drain with the service's own loop (Run: a pass every --interval-ms, start to "
               "start, so at most claims-per-pass / interval touches/s) instead of passes back "
               "to back");
  app.add_option("--interval-ms", interval_ms, "pass interval with --service-loop")
      ->check(CLI::Range(1, 60000));
  app.add_option("--brokers", brokers,
                 "bootstrap servers: send the touches to this broker (topics of a fresh prefix) "
                 "instead of a producer that acknowledges at once");
  app.add_option("--producer-property", producer_properties,
                 "with --brokers: a librdkafka property for the touches' producer, KEY=VALUE "
                 "(repeatable; as LEADFLOW_KAFKA_<KEY> sets it for a service)");
  CLI11_PARSE(app, argc, argv);

  absl::StatusOr<bench::PrivateRedis> private_redis =
      bench::StartPrivateRedis(std::max(1, workers * lanes));
  if (!private_redis.ok()) {
    std::fprintf(stderr, "redis-server: %s\n", private_redis.status().ToString().c_str());
    return 1;
  }
  redis::RedisClient& client = *private_redis->client;
  auto tracks = LoadNurtureTracks(std::string(LEADFLOW_SOURCE_DIR) + "/config/nurture.yaml");
  if (!tracks.ok()) return 1;
  NurturingOptions options;
  // Noon UTC on a Monday: outside quiet hours; every lead's step 0 is due now.
  const absl::Time now =
      absl::FromCivil(absl::CivilSecond(2026, 1, 5, 12, 0, 0), absl::UTCTimeZone());
  testing::SimulatedClock clock;
  clock.Set(now);

  const int64_t empty_memory = UsedMemory(client);
  absl::Time load_start = absl::Now();
  // Every lead's scored events (with --scored; encoded before the clock starts).
  std::vector<std::vector<kafka::ConsumedMessage>> scored_by_lead(scored ? leads : 0);
  std::vector<redis::Args> commands;
  for (int i = 0; i < leads; ++i) {
    const std::string lead_id = absl::StrCat("L-", i);
    events::v1::LeadScored scored;
    scored.mutable_envelope()->set_event_id(absl::StrCat("scored-", i));
    events::v1::LeadProfile& lead = *scored.mutable_lead();
    lead.set_lead_id(lead_id);
    lead.set_email(absl::StrCat("lead", i, "@example.com"));
    lead.set_first_name("Jane");
    lead.set_company("Example Corp");
    lead.set_time_zone("UTC");
    events::v1::Consent* consent = lead.add_consents();
    consent->set_channel(events::v1::CHANNEL_EMAIL);
    consent->set_granted(true);
    consent->mutable_at()->set_seconds(absl::ToUnixSeconds(now) - 86400);
    scored.mutable_score()->set_category(events::v1::CATEGORY_COLD);
    scored.mutable_score()->set_total(5);
    if (!scored_by_lead.empty()) {
      scored.mutable_envelope()->set_lead_id(lead_id);
      for (int r = 0; r < rounds; ++r) {
        scored.mutable_envelope()->set_event_id(absl::StrCat("scored-", i, "-", r));
        scored.mutable_score()->set_total(5 + r);
        scored_by_lead[i].push_back(testing::Consumed(
            events::Encode(std::string(kafka::kLeadsScored), lead_id, scored), r));
      }
      continue;
    }
    internal::v1::NurtureLeadState state;
    ApplyScored(state, lead_id, scored, **tracks, options.policy, now);
    // The record layout of common/redis/apply_once.h: a hash {v: version, d: data,
    // i: incarnation}.
    commands.push_back({"HSET", NurturingStore::EnrollmentKey(lead_id), "v", "1", "d",
                        state.SerializeAsString(), "i", redis::NewIncarnation()});
    commands.push_back(NurturingStore::ScheduleCommand(lead_id, WakeUpAt(state)));
    if (static_cast<int>(commands.size()) >= 2 * load_pipeline || i + 1 == leads) {
      absl::StatusOr<std::vector<redis::Reply>> replies = client.Pipeline(commands);
      if (!replies.ok()) {
        std::fprintf(stderr, "enrol: %s\n", replies.status().ToString().c_str());
        return 1;
      }
      commands.clear();
    }
  }
  double load_cpu_start = RedisCpu(client);
  bench::PartitionedRun scored_run;
  if (scored) {
    load_start = absl::Now();
    load_cpu_start = RedisCpu(client);
    NurturingStore scored_store(client);
    NurturingHandler handler(
        scored_store, [&] { return *tracks; }, clock, options);
    CountingProducer enrollments;
    // As the service routes leads.scored (services/nurturing/app.cc).
    scored_run = bench::RunAsTheServiceDoes(
        scored_by_lead, workers, static_cast<size_t>(batch), lanes,
        [&](const kafka::ConsumedMessage& m) { return handler.HandleScored(m); },
        [&](const std::vector<const kafka::ConsumedMessage*>& wave) {
          return handler.HandleScoredBatch(wave);
        },
        enrollments);
    if (scored_run.errors != 0) {
      std::fprintf(stderr, "scored: %lld errors\n", static_cast<long long>(scored_run.errors));
      return 1;
    }
  }
  const absl::Duration load_time = absl::Now() - load_start;
  const double load_cpu = RedisCpu(client) - load_cpu_start;
  const int64_t enrolled_memory = UsedMemory(client);

  // The touches' producer: one that acknowledges at once, or the services' own to a broker.
  CountingProducer counting;
  std::unique_ptr<bench::AcknowledgedCounter> acknowledged;
  kafka::Topics topics;
  if (!brokers.empty()) {
    topics = kafka::Topics(absl::StrCat("bench.nurture.", absl::ToUnixMillis(absl::Now()), "."));
    std::vector<kafka::TopicSpec> specs;
    for (std::string_view topic : {kafka::kNurtureTouches, kafka::kNurtureEnrollments}) {
      specs.push_back({topics.Name(topic), 3, 1, {{"retention.ms", "3600000"}}});
    }
    if (absl::Status s =
            kafka::CreateTopics({{"bootstrap.servers", brokers}}, specs, absl::Seconds(60));
        !s.ok()) {
      std::fprintf(stderr, "topics: %s\n", s.ToString().c_str());
      return 1;
    }
    std::map<std::string, std::string> properties = {{"bootstrap.servers", brokers}};
    for (const std::string& p : producer_properties) {
      const std::pair<std::string, std::string> kv = absl::StrSplit(p, absl::MaxSplits('=', 1));
      properties[kv.first] = kv.second;
    }
    absl::StatusOr<std::unique_ptr<kafka::RdKafkaProducer>> rdkafka =
        kafka::RdKafkaProducer::Create(properties);
    if (!rdkafka.ok()) {
      std::fprintf(stderr, "producer: %s\n", rdkafka.status().ToString().c_str());
      return 1;
    }
    acknowledged = std::make_unique<bench::AcknowledgedCounter>(*std::move(rdkafka));
  }
  kafka::Producer& producer = acknowledged ? static_cast<kafka::Producer&>(*acknowledged)
                                           : static_cast<kafka::Producer&>(counting);
  auto sent = [&] { return acknowledged ? acknowledged->sent() : counting.sent(); };
  prometheus::Registry registry;
  NurturingStore store(client);
  SchedulerOptions scheduler_options;
  scheduler_options.max_claims_per_pass = claims_per_pass;
  scheduler_options.workers = workers;
  scheduler_options.interval = absl::Milliseconds(interval_ms);
  NurtureScheduler scheduler(
      store, [&] { return *tracks; }, producer, topics, clock, registry, options,
      scheduler_options);
  const double cpu_start = RedisCpu(client);
  const double children_cpu_start = bench::RedisChildrenCpu(client);
  const int64_t rewrites_start = bench::AofRewrites(client);
  const double process_cpu_start = bench::ProcessCpu();
  const absl::Time drain_start = absl::Now();
  int64_t claimed = 0;
  int64_t errors = 0;
  absl::Duration drain_time;
  if (service_loop) {
    // Run() as the service runs it, timed from its start (its first pass waits one interval)
    // to the last touch handed over. Its passes log their errors; the counts come from the
    // scheduler's metrics.
    absl::Notification stop;
    std::thread loop([&] { scheduler.Run(stop); });
    const absl::Time deadline = drain_start + absl::Minutes(10);
    while (sent() < leads && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(1));
    drain_time = absl::Now() - drain_start;
    stop.Notify();
    loop.join();
    claimed = static_cast<int64_t>(
        testing::MetricValue(registry, "leadflow_nurture_leads_claimed_total"));
    errors = static_cast<int64_t>(
        testing::MetricValue(registry, "leadflow_nurture_scheduler_errors_total"));
  } else {
    for (;;) {
      absl::StatusOr<PassStats> pass = scheduler.RunOnce();
      if (!pass.ok()) {
        std::fprintf(stderr, "pass: %s\n", pass.status().ToString().c_str());
        return 1;
      }
      claimed += pass->claimed;
      errors += pass->errors;
      if (pass->claimed != 0) continue;
      if (sent() >= leads) break;
      // With a broker, the last touches are claimed and in flight: wait for their
      // acknowledgements (the next pass confirms them).
      if (absl::Status s = producer.Flush(absl::Seconds(60)); !s.ok() || sent() < leads) {
        std::fprintf(stderr, "touches not acknowledged: %lld of %d (%s)\n",
                     static_cast<long long>(sent()), leads, s.ToString().c_str());
        return 1;
      }
    }
    drain_time = absl::Now() - drain_start;
  }
  const double redis_cpu = RedisCpu(client) - cpu_start;
  const double children_cpu = bench::RedisChildrenCpu(client) - children_cpu_start;
  const int64_t rewrites = bench::AofRewrites(client) - rewrites_start;
  const double process_cpu = bench::ProcessCpu() - process_cpu_start;
  const int64_t after_memory = UsedMemory(client);
  const double drain_seconds = absl::FDivDuration(drain_time, absl::Seconds(1));

  if (scored) {
    const int64_t events = scored_run.handled;
    std::printf(
        "leads enrolled:            %d through HandleScored, %lld scored events (%d per "
        "lead), %lld enrolment events\n",
        leads, static_cast<long long>(events), rounds, static_cast<long long>(scored_run.outputs));
    std::printf("scored events per second:  %.0f (%d worker threads, batches of %d, %.2f s)\n",
                events / absl::ToDoubleSeconds(load_time), workers, batch,
                absl::ToDoubleSeconds(load_time));
    std::printf("redis-server CPU (scored): %.2f s (%.1f us per scored event)\n", load_cpu,
                1e6 * load_cpu / std::max<int64_t>(1, events));
  } else {
    std::printf("leads enrolled:            %d in %.2f s (%.0f/s, pipelined batches of %d)\n",
                leads, absl::ToDoubleSeconds(load_time), leads / absl::ToDoubleSeconds(load_time),
                load_pipeline);
  }
  std::printf("redis used_memory:         empty %lld B, enrolled %lld B, after touches %lld B\n",
              static_cast<long long>(empty_memory), static_cast<long long>(enrolled_memory),
              static_cast<long long>(after_memory));
  std::printf("bytes per enrolled lead:   %.0f\n",
              static_cast<double>(enrolled_memory - empty_memory) / leads);
  std::printf("bytes per lead after 1 touch (7-day dedup records included): %.0f\n",
              static_cast<double>(after_memory - empty_memory) / leads);
  std::printf("scheduler drain:           %lld claimed, %lld touches, %lld errors in %.2f s\n",
              static_cast<long long>(claimed), static_cast<long long>(sent()),
              static_cast<long long>(errors), drain_seconds);
  std::printf("touches per second:        %.0f (claims per pass %d, %d worker threads)\n",
              sent() / drain_seconds, claims_per_pass, workers);
  if (service_loop) {
    std::printf("service loop:              a pass every %d ms: at most %.0f touches/s\n",
                interval_ms, claims_per_pass * 1000.0 / interval_ms);
  }
  std::printf("redis-server CPU:          %.2f s (%.1f us per touch)\n", redis_cpu,
              1e6 * redis_cpu / std::max<int64_t>(1, sent()));
  std::printf("scheduler (this process):  %.2f s CPU (%.1f us per touch)\n", process_cpu,
              1e6 * process_cpu / std::max<int64_t>(1, sent()));
  std::printf("AOF rewrites meanwhile:    %lld (their CPU: %.2f s)\n",
              static_cast<long long>(rewrites), children_cpu);
  if (commandstats) {
    absl::StatusOr<redis::Reply> stats = client.Command({"INFO", "commandstats"});
    if (stats.ok()) std::printf("%s\n", stats->str.c_str());
  }
  return sent() == leads && errors == 0 ? 0 : 2;
}

}  // namespace
}  // namespace leadflow::nurturing

int main(int argc, char** argv) { return leadflow::nurturing::Run(argc, argv); }
