// Store-level benchmark of capture's `leads.inbound` path against a real redis-server this tool
// starts on a free port (never the stack's, AOF on as in the stack): `--leads` people of the
// demo workload (tools/leadctl/workload.h: 320 companies, a third with a phone, most with an
// e-mail consent) submitted as JSON, then `--resubmit-percent` of them again under new request
// ids with their e-mail upper-cased (each one merges into its lead), through the production
// handler path — decode, normalise (libphonenumber), candidate look-up, match, merge, one
// apply-once transaction per wave — every `leads.captured` handed to a producer that
// acknowledges at once, **without Kafka**. It reports submissions per second end to end, Redis
// and process CPU per submission, the profiles read per submission, and how many leads were
// created and merged, and the Redis memory they left per lead and per submission.
//   build/bench/capture_store_bench --leads 20000 --workers 1 --batch 256 [--lanes 2]
// The messages are encoded before the clock starts (encoding is the upstream's work). Keyed by
// e-mail address as `leadctl demo` sends them; with --workers > 1 the people are split over
// threads (and Redis connections), like partitions over consumers.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/bench_support.h"
#include "common/config/env.h"
#include "common/config/yaml_proto.h"
#include "common/events/codec.h"
#include "common/kafka/topics.h"
#include "common/testing/events.h"
#include "common/testing/simulated_clock.h"
#include "leadflow/events/v1/lead.pb.h"
#include "services/capture/handler.h"
#include "services/capture/store.h"
#include "tools/leadctl/workload.h"

namespace leadflow::capture {
namespace {

// Counts the leads.captured events by change as they are handed over, acknowledging at once.
class CapturedCounter final : public kafka::Producer {
 public:
  absl::Status Send(kafka::OutboundMessage message, DeliveryCallback on_delivery) override {
    events::v1::LeadCaptured captured;
    if (captured.ParseFromString(message.value)) {
      (captured.change() == events::v1::LeadCaptured::CHANGE_CREATED ? created_ : updated_)
          .fetch_add(1);
    }
    on_delivery(absl::OkStatus());
    return absl::OkStatus();
  }
  absl::Status Flush(absl::Duration) override { return absl::OkStatus(); }
  int64_t created() const { return created_.load(); }
  int64_t updated() const { return updated_.load(); }

 private:
  std::atomic<int64_t> created_{0};
  std::atomic<int64_t> updated_{0};
};

int Run(int argc, char** argv) {
  bench::RunOptions shape;
  int leads = 20000;
  int resubmit_percent = 20;
  CLI::App app{"capture_store_bench — capture's leads.inbound path against a private redis"};
  app.add_option("--leads", leads, "people submitted")->check(CLI::Range(1, 10000000));
  app.add_option("--resubmit-percent", resubmit_percent,
                 "share of them submitted a second time under a new request id (merges)")
      ->check(CLI::Range(0, 100));
  bench::AddRunOptions(app, shape);
  CLI11_PARSE(app, argc, argv);

  std::optional<bench::PrivateRedis> private_redis = bench::StartPrivateRedisFor(shape);
  if (!private_redis.has_value()) return 1;
  redis::RedisClient& client = *private_redis->client;
  config::v1::CaptureConfig config;
  if (!bench::LoadSourceConfig("capture.yaml", &config)) return 1;
  const Normalizer normalizer(config);
  testing::SimulatedClock clock(absl::FromUnixSeconds(1767600000));  // 2026-01-05
  const kafka::Topics topics;
  CaptureStore store(client);
  prometheus::Registry registry;
  CaptureHandler handler(normalizer, store, topics, clock, registry);
  CapturedCounter producer;

  // Every person first, then the resubmissions, spread over the partitions (workers) by person:
  // a person's two submissions stay in order on one worker.
  const std::string inbound = topics.Name(kafka::kLeadsInbound);
  std::mt19937_64 rng(42);
  std::vector<std::vector<kafka::ConsumedMessage>> by_person(leads);
  int64_t bytes = 0;
  int64_t submissions = 0;
  for (int i = 0; i < leads; ++i) {
    events::v1::LeadSubmission s = leadctl::MakeLead(i, "bench", rng, "bench").submission;
    auto add = [&](const events::v1::LeadSubmission& submission, int offset) {
      kafka::ConsumedMessage m = testing::Consumed(
          events::Encode(inbound, submission.email(), submission, events::Encoding::kJson), offset);
      bytes += static_cast<int64_t>(m.value.size());
      ++submissions;
      by_person[i].push_back(std::move(m));
    };
    add(s, 0);
    if (static_cast<int>(rng() % 100) < resubmit_percent) {
      s.set_request_id(s.request_id() + "-again");
      s.set_email(absl::AsciiStrToUpper(s.email()));
      add(s, 1);
    }
  }

  const int64_t memory_empty = bench::UsedMemory(client);
  const double redis_cpu_start = bench::RedisCpu(client);
  const double process_cpu_start = bench::ProcessCpu();
  const int64_t reads_start = bench::CommandCalls(client, "hmget");
  const absl::Time run_start = absl::Now();
  // As the service routes leads.inbound (services/capture/app.cc).
  const bench::PartitionedRun run = bench::RunAsTheServiceDoes(
      by_person, shape.workers, static_cast<size_t>(shape.batch), shape.lanes,
      [&](const kafka::ConsumedMessage& m) { return handler.HandleInbound(m); },
      [&](const std::vector<const kafka::ConsumedMessage*>& wave) {
        return handler.HandleInboundBatch(wave);
      },
      producer);
  const absl::Duration run_time = absl::Now() - run_start;
  const double redis_cpu = bench::RedisCpu(client) - redis_cpu_start;
  const double process_cpu = bench::ProcessCpu() - process_cpu_start;
  const int64_t reads = bench::CommandCalls(client, "hmget") - reads_start;
  const double handled = static_cast<double>(std::max<int64_t>(1, run.handled));

  std::printf("submissions:               %lld handled, %lld errors (%.0f B per message)\n",
              static_cast<long long>(run.handled), static_cast<long long>(run.errors),
              static_cast<double>(bytes) / static_cast<double>(std::max<int64_t>(1, submissions)));
  std::printf("leads.captured:            %lld created, %lld updated\n",
              static_cast<long long>(producer.created()),
              static_cast<long long>(producer.updated()));
  std::printf(
      "submissions per second:    %.0f (%d worker threads, batches of %d, %d lanes, %.2f s)\n",
      handled / absl::ToDoubleSeconds(run_time), shape.workers, shape.batch, shape.lanes,
      absl::ToDoubleSeconds(run_time));
  std::printf("redis-server CPU:          %.2f s (%.1f us per submission)\n", redis_cpu,
              1e6 * redis_cpu / handled);
  std::printf("this process:              %.2f s CPU (%.1f us per submission)\n", process_cpu,
              1e6 * process_cpu / handled);
  std::printf("record reads (HMGET):      %.1f per submission\n",
              static_cast<double>(reads) / handled);
  // Everything a lead keeps (profile, index records, block memberships, registries) plus each
  // submission's apply-once record, kept for the request-id retention (7 days by default).
  const double stored = static_cast<double>(bench::UsedMemory(client) - memory_empty);
  std::printf("redis memory:              %.0f B per lead created, %.0f B per submission\n",
              stored / static_cast<double>(std::max<int64_t>(1, producer.created())),
              stored / handled);
  if (shape.commandstats) {
    absl::StatusOr<redis::Reply> stats = client.Command({"INFO", "commandstats"});
    if (stats.ok()) std::printf("%s\n", stats->str.c_str());
  }
  return run.errors == 0 && run.handled == submissions ? 0 : 2;
}

}  // namespace
}  // namespace leadflow::capture

int main(int argc, char** argv) { return leadflow::capture::Run(argc, argv); }
