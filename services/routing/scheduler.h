#pragma once

// RoutingScheduler: the routing work that no input event triggers — speed-to-lead SLA breaches
// and draining team queues — done in periodic passes (modelled on nurturing's scheduler).
//
// One pass (RunOnce), every `interval` while the service runs:
//   1. Re-send the outbox: pass decisions applied at least `outbox_grace` ago whose events were
//      never acknowledged (a crash or a broker outage between the apply and the ack). Their
//      memo holds the very same events (same ids); once acknowledged the entry is removed.
//   2. SLA: the leads of the SLA index (store.h routing:sla) due at `now`, earliest first, at
//      most `max_sla_per_pass` — O(due), never a scan. RoutingHandler::HandleSlaDue fires the
//      breach (REASSIGNED / ESCALATED / QUEUED event) or corrects a stale index entry.
//   3. Queues: for every team with leads waiting, oldest first, RoutingHandler::DrainQueued
//      gives each lead to a rep who can take it now — one who came back (SetAvailability, an
//      away period that expired), whose working hours started, or who got capacity back —
//      until nobody can take the next one (at most `max_drain_per_team` per team).
// Each decision is applied once (apply-once on a synthetic input id derived from the
// assignment it acts on) together with an outbox entry; its events are then sent and awaited,
// and only after the broker's acknowledgement is the outbox entry removed: an event is never
// lost, and a retried pass — or a second replica deciding the same lead at the same moment —
// publishes the same event ids (consumers de-duplicate on event id), never a second decision.
//
// Time comes from the injected clock only, so tests drive passes with a SimulatedClock.
//
// Thread safety: RunOnce() and DrainTeam() may be called concurrently (on one instance or
// across replicas sharing one Redis): the version checks and apply-once make it safe.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/kafka/producer.h"
#include "common/log/log.h"
#include "common/runtime/clock.h"
#include "prometheus/counter.h"
#include "prometheus/registry.h"
#include "services/routing/effective_rules.h"
#include "services/routing/handler.h"
#include "services/routing/store.h"

namespace leadflow::routing {

struct RoutingSchedulerOptions {
  // How often Run() makes a pass (LEADFLOW_ROUTING_PASS_INTERVAL_MS). The SLA fires at most
  // this late.
  absl::Duration interval = absl::Seconds(1);
  // Due SLAs handled per pass.
  int max_sla_per_pass = 500;
  // Queued leads drained per team per pass.
  int max_drain_per_team = 200;
  // Outbox entries re-sent per pass, and how old one must be to count as unacknowledged
  // (longer than a send normally takes, so a healthy replica's in-flight events are not
  // re-sent by another one).
  int max_replays_per_pass = 200;
  absl::Duration outbox_grace = absl::Seconds(60);
  // How long one send waits for the broker's acknowledgement.
  absl::Duration ack_timeout = absl::Seconds(30);
};

// What one pass did.
struct RoutingPassStats {
  int replayed = 0;   // outbox entries re-sent and acknowledged
  int sla_fired = 0;  // SLA breaches decided now (re-assigned, escalated or queued)
  int drained = 0;    // queued leads given to a rep now
  int errors = 0;     // leads that failed (retried by a later pass)
};

class RoutingScheduler {
 public:
  // Borrows everything; all must outlive the scheduler.
  RoutingScheduler(RoutingHandler& handler, EffectiveRules& rules, RoutingStore& store,
                   kafka::Producer& producer, const runtime::Clock& clock,
                   prometheus::Registry& registry, RoutingSchedulerOptions options = {});

  // The BackgroundTask: a pass every `interval`, start to start (runtime/periodic.h), until
  // `stop`.
  void Run(const absl::Notification& stop);

  // One pass (see above). UNAVAILABLE when Redis cannot be reached for the indexes; the errors
  // of single leads are counted in the stats and logged, not returned.
  absl::StatusOr<RoutingPassStats> RunOnce();

  // Step 3 for one team, now (after SetAvailability): the ids of the leads it assigned.
  absl::StatusOr<std::vector<std::string>> DrainTeam(const std::string& team_id,
                                                     RoutingPassStats* stats = nullptr);

  // An explicit re-route (gRPC Reroute): RoutingHandler::Reroute, then its events are sent and
  // awaited like a pass decision's (outbox entry removed on the acknowledgement; re-sent by a
  // later pass otherwise). A retried request id re-sends the same events.
  absl::Status Reroute(const std::string& lead_id, const std::string& reason,
                       const std::string& request_id);

 private:
  // Sends a step's events, waits for their acknowledgement, then removes its outbox entry.
  absl::Status Publish(const std::string& lead_id, const PassStep& step);
  void LogError(const std::string& what, const absl::Status& status);

  RoutingHandler& handler_;
  EffectiveRules& rules_;
  RoutingStore& store_;
  kafka::Producer& producer_;
  const runtime::Clock& clock_;
  const RoutingSchedulerOptions options_;
  log::RateLimitedLog error_log_{absl::Seconds(10)};

  prometheus::Family<prometheus::Counter>& sla_breaches_;
  prometheus::Counter& drained_;
  prometheus::Counter& replayed_;
  prometheus::Counter& errors_;
};

}  // namespace leadflow::routing
