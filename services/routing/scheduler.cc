#include "services/routing/scheduler.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/events/codec.h"
#include "common/runtime/periodic.h"
#include "leadflow/events/v1/routing.pb.h"
#include "spdlog/spdlog.h"

namespace leadflow::routing {
namespace {

prometheus::Counter& MakeCounter(prometheus::Registry& registry, const std::string& name,
                                 const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(registry).Add({});
}

// The kind of the first event of a step, for the breach counter's label.
std::string KindLabel(const PassStep& step) {
  if (step.outputs.empty()) return "none";
  kafka::ConsumedMessage consumed;
  consumed.topic = step.outputs[0].topic;
  consumed.value = step.outputs[0].value;
  consumed.headers = step.outputs[0].headers;
  events::v1::LeadRouted routed;
  if (!events::Decode(consumed, &routed).ok()) return "unknown";
  switch (routed.kind()) {
    case events::v1::LeadRouted::KIND_REASSIGNED:
      return "reassigned";
    case events::v1::LeadRouted::KIND_ESCALATED:
      return "escalated";
    case events::v1::LeadRouted::KIND_QUEUED:
      return "queued";
    default:
      return "other";
  }
}

}  // namespace

RoutingScheduler::RoutingScheduler(RoutingHandler& handler, EffectiveRules& rules,
                                   RoutingStore& store, kafka::Producer& producer,
                                   const runtime::Clock& clock, prometheus::Registry& registry,
                                   RoutingSchedulerOptions options)
    : handler_(handler),
      rules_(rules),
      store_(store),
      producer_(producer),
      clock_(clock),
      options_(options),
      sla_breaches_(prometheus::BuildCounter()
                        .Name("leadflow_routing_sla_breaches_total")
                        .Help("SLA breaches fired, by what happened to the lead "
                              "(reassigned, escalated, queued).")
                        .Register(registry)),
      drained_(MakeCounter(registry, "leadflow_routing_queue_drained_total",
                           "Queued leads given to a rep by the scheduler.")),
      replayed_(MakeCounter(registry, "leadflow_routing_outbox_replayed_total",
                            "Pass decisions whose events were re-sent from the outbox.")),
      errors_(MakeCounter(registry, "leadflow_routing_scheduler_errors_total",
                          "Scheduler failures (Redis, broker, corrupt records); retried.")) {}

void RoutingScheduler::Run(const absl::Notification& stop) {
  runtime::RunEvery(options_.interval, stop, [this] {
    absl::StatusOr<RoutingPassStats> pass = RunOnce();
    if (!pass.ok()) LogError("routing pass", pass.status());
  });
}

absl::StatusOr<RoutingPassStats> RoutingScheduler::RunOnce() {
  RoutingPassStats stats;
  const absl::Time now = clock_.Now();
  auto failed = [&](const std::string& what, const absl::Status& status) {
    ++stats.errors;
    errors_.Increment();
    LogError(what, status);
  };

  // 1. The outbox.
  absl::StatusOr<std::vector<std::string>> stale =
      store_.StaleOutbox(now - options_.outbox_grace, options_.max_replays_per_pass);
  if (!stale.ok()) return stale.status();
  for (const std::string& member : *stale) {
    std::string event_id;
    std::string lead_id;
    if (!RoutingStore::ParseOutboxMember(member, &event_id, &lead_id)) {
      if (absl::Status s = store_.Command({"ZREM", RoutingStore::OutboxKey(), member}); !s.ok()) {
        failed("dropping a malformed outbox entry", s);
      }
      continue;
    }
    absl::StatusOr<std::vector<kafka::OutboundMessage>> outputs =
        handler_.Replay(lead_id, event_id);
    if (!outputs.ok()) {
      failed(absl::StrCat("replaying ", member), outputs.status());
      continue;
    }
    PassStep step;
    step.event_id = event_id;
    step.outputs = *std::move(outputs);
    if (absl::Status s = Publish(lead_id, step); !s.ok()) {
      failed(absl::StrCat("re-sending ", member), s);
      continue;
    }
    ++stats.replayed;
    replayed_.Increment();
  }

  // 2. Due SLAs.
  absl::StatusOr<std::vector<std::string>> due = store_.DueSla(now, options_.max_sla_per_pass);
  if (!due.ok()) return due.status();
  for (const std::string& lead_id : *due) {
    absl::StatusOr<PassStep> step = handler_.HandleSlaDue(lead_id);
    if (!step.ok()) {
      failed(absl::StrCat("SLA of lead ", lead_id), step.status());
      continue;
    }
    if (step->outputs.empty()) continue;
    if (step->applied_now) {
      ++stats.sla_fired;
      sla_breaches_.Add({{"action", KindLabel(*step)}}).Increment();
    }
    if (absl::Status s = Publish(lead_id, *step); !s.ok()) {
      failed(absl::StrCat("publishing the SLA breach of lead ", lead_id), s);
    }
  }

  // 3. Team queues.
  absl::StatusOr<std::shared_ptr<const CompiledRoutingRules>> rules = rules_.Current();
  if (!rules.ok()) return rules.status();
  for (const config::v1::Team& team : (*rules)->teams()) {
    absl::StatusOr<std::vector<std::string>> assigned = DrainTeam(team.id(), &stats);
    if (!assigned.ok()) return assigned.status();
  }
  return stats;
}

absl::StatusOr<std::vector<std::string>> RoutingScheduler::DrainTeam(const std::string& team_id,
                                                                     RoutingPassStats* stats) {
  std::vector<std::string> assigned;
  absl::StatusOr<std::vector<std::string>> queued =
      store_.TeamQueue(team_id, options_.max_drain_per_team);
  if (!queued.ok()) return queued.status();
  for (const std::string& lead_id : *queued) {
    bool nobody = false;
    absl::StatusOr<PassStep> step = handler_.DrainQueued(lead_id, team_id, &nobody);
    if (!step.ok()) {
      if (stats != nullptr) ++stats->errors;
      errors_.Increment();
      LogError(absl::StrCat("draining lead ", lead_id, " from ", team_id), step.status());
      continue;
    }
    // Leads wait in order: when the oldest cannot be placed, neither can the rest (barring
    // reps excluded for having had a lead, which a later pass revisits).
    if (nobody) break;
    if (step->outputs.empty()) continue;
    if (absl::Status s = Publish(lead_id, *step); !s.ok()) {
      if (stats != nullptr) ++stats->errors;
      errors_.Increment();
      LogError(absl::StrCat("publishing the drain of lead ", lead_id), s);
      continue;
    }
    if (step->applied_now) {
      if (stats != nullptr) ++stats->drained;
      drained_.Increment();
    }
    assigned.push_back(lead_id);
  }
  return assigned;
}

absl::Status RoutingScheduler::Reroute(const std::string& lead_id, const std::string& reason,
                                       const std::string& request_id) {
  absl::StatusOr<PassStep> step = handler_.Reroute(lead_id, reason, request_id);
  if (!step.ok()) return step.status();
  return Publish(lead_id, *step);
}

absl::Status RoutingScheduler::Publish(const std::string& lead_id, const PassStep& step) {
  for (const kafka::OutboundMessage& message : step.outputs) {
    if (absl::Status s = producer_.SendAndWait(message, options_.ack_timeout); !s.ok()) return s;
  }
  // Acknowledged: the decision is durable on the topic, its outbox entry can go.
  return store_.Command(
      {"ZREM", RoutingStore::OutboxKey(), RoutingStore::OutboxMember(step.event_id, lead_id)});
}

void RoutingScheduler::LogError(const std::string& what, const absl::Status& status) {
  int64_t suppressed = 0;
  if (!error_log_.ShouldLog(&suppressed)) return;
  spdlog::error("routing scheduler: {}: {} ({} similar errors suppressed)", what, status.ToString(),
                suppressed);
}

}  // namespace leadflow::routing
