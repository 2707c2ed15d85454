// Store-level benchmark of routing decisions against a real redis-server this tool starts on a
// free port (never the stack's; AOF on, as in the stack). Each decision is the production
// consumer path for one sales-ready `leads.scored` event — RoutingHandler::HandleScored (decode,
// MatchTeam, PickRep over the team's stored counters and the reps' presence, one atomic
// apply-once over the assignment, the team record and the indexes) and its `leads.routed`
// output handed to a producer that acknowledges at once — without Kafka. It reports the latency
// of each decision (p50 / p99 / p99.9) and decisions per second, with `--workers` threads (and
// Redis connections) sharing the leads, as that many replicas would. With `--batch N` each
// thread hands its leads over N at a time, as the consumer loop hands over a poll's batch, to
// the wave route (kafka::HandleInKeyWaves over RoutingHandler::HandleScoredBatch: chained team
// records, one pipeline of scripts); a decision's latency is then its batch's, and a transient
// failure is retried one by one with HandleScored, as the loop does; `--lanes` sets how many
// threads one batch's independent teams are decided on (RoutingOptions::wave_lanes).
//   build/bench/routing_store_bench --leads 20000 --teams 4 --reps 8 --workers 1 [--batch 256]
// At the end it checks that every lead was assigned exactly once and that the teams' open-lead
// counters add up to the number of leads.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/bench_support.h"
#include "common/config/yaml_proto.h"
#include "common/events/codec.h"
#include "common/events/envelope.h"
#include "common/kafka/handler.h"
#include "common/kafka/producer.h"
#include "common/kafka/topics.h"
#include "common/redis/hiredis_client.h"
#include "common/testing/events.h"
#include "common/testing/redis_server.h"
#include "common/testing/simulated_clock.h"
#include "leadflow/events/v1/routing.pb.h"
#include "leadflow/events/v1/scoring.pb.h"
#include "prometheus/registry.h"
#include "services/routing/effective_rules.h"
#include "services/routing/handler.h"
#include "services/routing/store.h"

namespace leadflow::routing {
namespace {

using bench::CommandCalls;
using bench::CountingProducer;
using bench::RedisCpu;

// `teams` teams of `reps` reps each, no caps, no working hours, a 15-minute SLA; strategies
// cycle round-robin, weighted, least-loaded. One rule per team but the last, which is the
// default: a lead of country C<t> goes to team t.
config::v1::RoutingRules BenchRules(int teams, int reps) {
  config::v1::RoutingRules rules;
  rules.set_version("routing-store-bench");
  rules.set_route_at("sales_ready");
  const config::v1::Strategy strategies[] = {config::v1::STRATEGY_ROUND_ROBIN,
                                             config::v1::STRATEGY_WEIGHTED_ROUND_ROBIN,
                                             config::v1::STRATEGY_LEAST_LOADED};
  for (int t = 0; t < teams; ++t) {
    config::v1::Team& team = *rules.add_teams();
    team.set_id(absl::StrCat("team-", t));
    team.set_strategy(strategies[t % 3]);
    team.set_sla_minutes(15);
    team.set_escalate_to("manager");
    for (int r = 0; r < reps; ++r) {
      config::v1::Rep& rep = *team.add_reps();
      rep.set_id(absl::StrCat("rep-", t, "-", r));
      rep.set_weight(1 + r % 3);
    }
    if (t + 1 < teams) {
      config::v1::RoutingRule& rule = *rules.add_rules();
      rule.set_id(absl::StrCat("rule-", t));
      rule.set_team(team.id());
      config::v1::Condition& when = *rule.add_when();
      when.set_field("country");
      when.mutable_in()->add_values(absl::StrCat("C", t));
    }
  }
  rules.set_default_team(absl::StrCat("team-", teams - 1));
  return rules;
}

// The sales-ready crossing of lead `i`, as scoring publishes it.
kafka::ConsumedMessage ScoredEvent(int i, int teams, const kafka::Topics& topics, absl::Time now) {
  const std::string lead_id = absl::StrCat("L-", i);
  events::v1::LeadScored scored;
  *scored.mutable_envelope() = testing::Envelope(lead_id, absl::StrCat("scored-", i), now);
  events::v1::LeadProfile& lead = *scored.mutable_lead();
  lead.set_lead_id(lead_id);
  lead.set_email(absl::StrCat("lead", i, "@example.com"));
  lead.set_first_name("Jane");
  lead.set_last_name("Doe");
  lead.set_company("Example Corp");
  lead.set_country(absl::StrCat("C", i % teams));
  lead.add_interests("shoes");
  lead.add_sources("web");
  lead.set_time_zone("Europe/London");
  scored.mutable_previous()->set_category(events::v1::CATEGORY_QUALIFIED);
  scored.mutable_previous()->set_total(55);
  scored.mutable_score()->set_category(events::v1::CATEGORY_SALES_READY);
  scored.mutable_score()->set_stage(events::v1::STAGE_QUALIFIED);
  scored.mutable_score()->set_total(90);
  return testing::Consumed(events::Encode(topics.Name(kafka::kLeadsScored), lead_id, scored));
}

double Percentile(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t at = std::min(sorted.size() - 1, static_cast<size_t>(p * sorted.size()));
  return static_cast<double>(sorted[at]) / 1000.0;  // ns → µs
}

int Run(int argc, char** argv) {
  int leads = 20000;
  int teams = 4;
  int reps = 8;
  int workers = 1;
  int batch = 1;
  bool commandstats = false;
  int lanes = RoutingOptions{}.wave_lanes;
  CLI::App app{"routing_store_bench — routing decisions against a private redis-server"};
  app.add_option("--leads", leads, "sales-ready leads to route")->check(CLI::Range(1, 10000000));
  app.add_option("--teams", teams, "teams (leads spread evenly)")->check(CLI::Range(1, 1000));
  app.add_option("--reps", reps, "reps per team")->check(CLI::Range(1, 1000));
  app.add_option("--workers", workers, "worker threads (and Redis connections)")
      ->check(CLI::Range(1, 64));
  app.add_option("--batch", batch,
                 "inputs handed over at once, as a poll's batch (1: one by one, HandleScored())")
      ->check(CLI::Range(1, 100000));
  app.add_flag("--commandstats", commandstats, "print Redis INFO commandstats at the end");
  app.add_option("--lanes", lanes,
                 "threads a batch's independent teams are decided on (RoutingOptions::wave_lanes)")
      ->check(CLI::Range(1, 64));
  CLI11_PARSE(app, argc, argv);

  absl::StatusOr<bench::PrivateRedis> private_redis = bench::StartPrivateRedis(workers * lanes + 1);
  if (!private_redis.ok()) {
    std::fprintf(stderr, "redis-server: %s\n", private_redis.status().ToString().c_str());
    return 1;
  }
  redis::RedisClient& client = *private_redis->client;

  // The Reloadable needs a file; the bench's own rules replace the default ones at once.
  absl::StatusOr<std::unique_ptr<RoutingRulesSource>> yaml = RoutingRulesSource::Create(
      std::string(LEADFLOW_SOURCE_DIR) + "/config/routing.yaml", LoadRoutingRules);
  if (!yaml.ok()) {
    std::fprintf(stderr, "rules: %s\n", yaml.status().ToString().c_str());
    return 1;
  }
  absl::StatusOr<std::shared_ptr<const CompiledRoutingRules>> compiled =
      CompileRoutingRules(BenchRules(teams, reps));
  if (!compiled.ok()) {
    std::fprintf(stderr, "bench rules: %s\n", compiled.status().ToString().c_str());
    return 1;
  }
  (*yaml)->SetForTest(*compiled);

  // Monday noon UTC. The clock stands still: "today" and the SLA deadlines are the same for
  // every decision, and the overrides record is read once (as a live replica reads it once a
  // second).
  testing::SimulatedClock clock;
  clock.Set(absl::FromCivil(absl::CivilSecond(2026, 1, 5, 12, 0, 0), absl::UTCTimeZone()));
  kafka::Topics topics;
  prometheus::Registry registry;
  RoutingStore store(client);
  EffectiveRules rules(**yaml, store, clock);
  RoutingOptions options;
  options.wave_lanes = lanes;
  RoutingHandler handler(rules, store, topics, clock, registry, options);
  CountingProducer producer;

  std::vector<kafka::ConsumedMessage> messages;
  messages.reserve(leads);
  for (int i = 0; i < leads; ++i) messages.push_back(ScoredEvent(i, teams, topics, clock.Now()));

  const int64_t exec_before = CommandCalls(client, "exec");
  const double cpu_start = RedisCpu(client);
  const double process_cpu_start = bench::ProcessCpu();
  std::atomic<int> next{0};
  std::atomic<int64_t> errors{0};
  std::atomic<int64_t> assigned{0};
  std::atomic<int64_t> retried{0};
  std::vector<std::vector<int64_t>> latencies(workers);
  // What a decision produced: counted, and handed to the producer.
  auto publish = [&](std::vector<kafka::OutboundMessage>& out) {
    for (kafka::OutboundMessage& m : out) {
      events::v1::LeadRouted routed;
      if (events::Decode(testing::Consumed(m), &routed).ok() &&
          routed.kind() == events::v1::LeadRouted::KIND_ASSIGNED) {
        assigned.fetch_add(1);
      }
      (void)producer.Send(std::move(m), [](const absl::Status&) {});
    }
  };
  auto fail = [&](int i, const absl::Status& status) {
    errors.fetch_add(1);
    std::fprintf(stderr, "lead %d: %s\n", i, status.ToString().c_str());
  };
  // One lead through the single-message route; false (and reported) when it failed.
  auto decide_alone = [&](int i) {
    absl::StatusOr<std::vector<kafka::OutboundMessage>> out = handler.HandleScored(messages[i]);
    if (!out.ok()) {
      fail(i, out.status());
      return false;
    }
    publish(*out);
    return true;
  };
  const absl::Time start = absl::Now();
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      latencies[w].reserve(leads / workers + 1);
      if (batch == 1) {
        for (int i = next.fetch_add(1); i < leads; i = next.fetch_add(1)) {
          const absl::Time t0 = absl::Now();
          if (!decide_alone(i)) continue;
          latencies[w].push_back(absl::ToInt64Nanoseconds(absl::Now() - t0));
        }
        return;
      }
      std::vector<const kafka::ConsumedMessage*> inputs;
      for (int from = next.fetch_add(batch); from < leads; from = next.fetch_add(batch)) {
        const int to = std::min(leads, from + batch);
        inputs.clear();
        for (int i = from; i < to; ++i) inputs.push_back(&messages[i]);
        const absl::Time t0 = absl::Now();
        std::vector<kafka::HandleResult> results = kafka::HandleInKeyWaves(
            inputs, [&](const std::vector<const kafka::ConsumedMessage*>& wave) {
              return handler.HandleScoredBatch(wave);
            });
        int decided = 0;
        for (int i = from; i < to; ++i) {
          const size_t k = i - from;
          if (k >= results.size() || !results[k].ok()) {
            // As the consumer loop: the rest of the batch one by one.
            retried.fetch_add(1);
            if (decide_alone(i)) ++decided;
            continue;
          }
          publish(*results[k]);
          ++decided;
        }
        const int64_t took = absl::ToInt64Nanoseconds(absl::Now() - t0);
        for (int d = 0; d < decided; ++d) latencies[w].push_back(took);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const absl::Duration wall = absl::Now() - start;
  const double redis_cpu = RedisCpu(client) - cpu_start;
  const double process_cpu = bench::ProcessCpu() - process_cpu_start;
  const int64_t exec = CommandCalls(client, "exec") - exec_before;

  std::vector<int64_t> all;
  for (const std::vector<int64_t>& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());

  // Every lead assigned once: the counters of the team records add up to the leads.
  int64_t open = 0;
  for (int t = 0; t < teams; ++t) {
    absl::StatusOr<internal::v1::RoutingTeamState> state =
        store.LoadTeamState(absl::StrCat("team-", t));
    if (!state.ok()) return 1;
    for (const auto& [id, counters] : state->reps()) open += counters.open_leads();
  }

  std::printf("decisions:                 %lld of %d leads (%d teams x %d reps), %lld errors\n",
              static_cast<long long>(all.size()), leads, teams, reps,
              static_cast<long long>(errors.load()));
  const double wall_seconds = absl::FDivDuration(wall, absl::Seconds(1));
  std::printf("decisions per second:      %.0f (%d worker threads, batches of %d, %.2f s)\n",
              all.size() / wall_seconds, workers, batch, wall_seconds);
  std::printf("latency per decision (us): p50 %.0f  p99 %.0f  p99.9 %.0f  max %.0f%s\n",
              Percentile(all, 0.50), Percentile(all, 0.99), Percentile(all, 0.999),
              Percentile(all, 1.0), batch > 1 ? " (a decision waits for its whole batch)" : "");
  if (batch > 1) {
    std::printf("retried one by one:        %lld (transient in the batch)\n",
                static_cast<long long>(retried.load()));
  }
  std::printf("apply transactions:        %.3f per decision (1/batch ideally; more: conflicts)\n",
              static_cast<double>(exec) / std::max<size_t>(1, all.size()));
  std::printf("redis-server CPU:          %.2f s (%.1f us per decision)\n", redis_cpu,
              1e6 * redis_cpu / std::max<size_t>(1, all.size()));
  std::printf("this process:              %.2f s CPU (%.1f us per decision)\n", process_cpu,
              1e6 * process_cpu / std::max<size_t>(1, all.size()));
  std::printf(
      "check:                     %lld KIND_ASSIGNED events, %lld open leads counted, "
      "%lld sent\n",
      static_cast<long long>(assigned.load()), static_cast<long long>(open),
      static_cast<long long>(producer.sent()));
  if (commandstats) {
    absl::StatusOr<redis::Reply> stats = client.Command({"INFO", "commandstats"});
    if (stats.ok()) std::printf("%s\n", stats->str.c_str());
  }
  const bool consistent = errors.load() == 0 && assigned.load() == leads && open == leads;
  if (!consistent) std::fprintf(stderr, "INCONSISTENT: see the check line\n");
  return consistent ? 0 : 2;
}

}  // namespace
}  // namespace leadflow::routing

int main(int argc, char** argv) { return leadflow::routing::Run(argc, argv); }
