// Store-level benchmark of nurturing against a real redis-server this tool starts on a free
// port (never the stack's): enrols N leads, measures Redis memory per enrolled lead, then
// drains the whole due schedule with NurtureScheduler passes — claim, apply-once decision,
// touch handed to a producer that acknowledges at once (no Kafka), delivery confirmation — and
// reports touches per second end to end against Redis.
//   build/bench/nurture_store_bench --leads 100000 --claims-per-pass 2000
// Enrolment writes the records the handler would write (ApplyScored), pipelined in batches, so
// a million leads load in seconds; the drain is the production scheduler code path.
#include <atomic>
#include <cstdio>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/bench_support.h"
#include "common/kafka/producer.h"
#include "common/kafka/topics.h"
#include "common/redis/hiredis_client.h"
#include "common/testing/redis_server.h"
#include "common/testing/simulated_clock.h"
#include "prometheus/registry.h"
#include "services/nurturing/app.h"
#include "services/nurturing/enrollment.h"
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
  int batch = 1000;
  int workers = 4;
  bool commandstats = false;
  CLI::App app{"nurture_store_bench — nurturing scheduler against a private redis-server"};
  app.add_option("--leads", leads, "leads to enrol")->check(CLI::Range(1, 10000000));
  app.add_option("--claims-per-pass", claims_per_pass, "scheduler claims per pass");
  app.add_option("--batch", batch, "enrolment pipeline batch");
  app.add_option("--workers", workers, "scheduler worker threads (and Redis connections)");
  app.add_flag("--commandstats", commandstats, "print Redis INFO commandstats after the drain");
  CLI11_PARSE(app, argc, argv);

  absl::StatusOr<bench::PrivateRedis> private_redis =
      bench::StartPrivateRedis(std::max(1, workers));
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
  const absl::Time load_start = absl::Now();
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
    internal::v1::NurtureLeadState state;
    ApplyScored(state, lead_id, scored, **tracks, options.policy, now);
    // The record layout of common/redis/apply_once.h: a hash {v: version, d: data}.
    commands.push_back(
        {"HSET", NurturingStore::EnrollmentKey(lead_id), "v", "1", "d", state.SerializeAsString()});
    commands.push_back(NurturingStore::ScheduleCommand(lead_id, WakeUpAt(state)));
    if (static_cast<int>(commands.size()) >= 2 * batch || i + 1 == leads) {
      absl::StatusOr<std::vector<redis::Reply>> replies = client.Pipeline(commands);
      if (!replies.ok()) {
        std::fprintf(stderr, "enrol: %s\n", replies.status().ToString().c_str());
        return 1;
      }
      commands.clear();
    }
  }
  const absl::Duration load_time = absl::Now() - load_start;
  const int64_t enrolled_memory = UsedMemory(client);

  CountingProducer producer;
  kafka::Topics topics;
  prometheus::Registry registry;
  NurturingStore store(client);
  SchedulerOptions scheduler_options;
  scheduler_options.max_claims_per_pass = claims_per_pass;
  scheduler_options.workers = workers;
  NurtureScheduler scheduler(
      store, [&] { return *tracks; }, producer, topics, clock, registry, options,
      scheduler_options);
  const double cpu_start = RedisCpu(client);
  const absl::Time drain_start = absl::Now();
  int64_t claimed = 0;
  int64_t errors = 0;
  for (;;) {
    absl::StatusOr<PassStats> pass = scheduler.RunOnce();
    if (!pass.ok()) {
      std::fprintf(stderr, "pass: %s\n", pass.status().ToString().c_str());
      return 1;
    }
    claimed += pass->claimed;
    errors += pass->errors;
    if (pass->claimed == 0) break;
  }
  const absl::Duration drain_time = absl::Now() - drain_start;
  const double redis_cpu = RedisCpu(client) - cpu_start;
  const int64_t after_memory = UsedMemory(client);

  std::printf("leads enrolled:            %d in %.2f s (%.0f/s, pipelined batches of %d)\n", leads,
              absl::ToDoubleSeconds(load_time), leads / absl::ToDoubleSeconds(load_time), batch);
  std::printf("redis used_memory:         empty %lld B, enrolled %lld B, after touches %lld B\n",
              static_cast<long long>(empty_memory), static_cast<long long>(enrolled_memory),
              static_cast<long long>(after_memory));
  std::printf("bytes per enrolled lead:   %.0f\n",
              static_cast<double>(enrolled_memory - empty_memory) / leads);
  std::printf("bytes per lead after 1 touch (7-day dedup records included): %.0f\n",
              static_cast<double>(after_memory - empty_memory) / leads);
  std::printf("scheduler drain:           %lld claimed, %lld touches, %lld errors in %.2f s\n",
              static_cast<long long>(claimed), static_cast<long long>(producer.sent()),
              static_cast<long long>(errors), absl::ToDoubleSeconds(drain_time));
  std::printf("touches per second:        %.0f (claims per pass %d, %d worker threads)\n",
              producer.sent() / absl::ToDoubleSeconds(drain_time), claims_per_pass, workers);
  std::printf("redis-server CPU:          %.2f s (%.1f us per touch)\n", redis_cpu,
              1e6 * redis_cpu / std::max<int64_t>(1, producer.sent()));
  if (commandstats) {
    absl::StatusOr<redis::Reply> stats = client.Command({"INFO", "commandstats"});
    if (stats.ok()) std::printf("%s\n", stats->str.c_str());
  }
  return producer.sent() == leads && errors == 0 ? 0 : 2;
}

}  // namespace
}  // namespace leadflow::nurturing

int main(int argc, char** argv) { return leadflow::nurturing::Run(argc, argv); }
