#pragma once

// Scoring's background tasks: scores that change with time alone, and with the rules.
//
// DecayScheduler — a lead who goes quiet must drop category without any new event. Every apply
// puts the lead in `scoring:decay:schedule` at the engine's NextChangeAt (a window emptying, the
// interest boundary, decay crossing a threshold or bucket). One pass (RunOnce), every
// `interval`, modelled on nurturing's scheduler (services/nurturing/scheduler.h):
//   1. Reclaim expired leases: claims of a pass that never finished (a crash, a failed delivery)
//      go back to the schedule at the due time they were claimed at.
//   2. Claim up to `max_claims_per_pass` due leads atomically (two replicas never claim the same
//      lead), leased for `lease`.
//   3. Re-score each (ScoringHandler::Rescore) under the cause "decay:<lead>:<due ms>": applied
//      once, so a re-claim after a crash returns the same `leads.scored` (same event id) instead
//      of a second change; the apply puts the lead back in the schedule at its next time.
//   4. Send the events, wait for the broker's acknowledgements, and only then release the claims;
//      a lead whose delivery failed stays claimed and its lease brings it back (same event again).
//
// Rescorer — after a rules change every lead is re-scored, throttled to `leads_per_second`:
// the lead index `scoring:leads` is walked in lexical order from the cursor in `scoring:rescore`
// (so a restart resumes where the last replica stopped), each lead re-scored under the cause
// "rescore:<lead>:<rules fingerprint>" (once per lead and rule content), its events sent and
// acknowledged before the cursor moves past it. Only one replica walks at a time (a lock with a
// lease). The first start with a fingerprint never finished re-scores everything once; leads.scored
// is emitted only where something changed.
//
// Time comes from the injected clock only. Thread safety: RunOnce() of one instance must not be
// called concurrently (Run() calls it from one thread); any number of instances in any number of
// processes may share one Redis.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/kafka/producer.h"
#include "common/log/log.h"
#include "common/runtime/clock.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"
#include "services/scoring/handler.h"
#include "services/scoring/store.h"

namespace leadflow::scoring {

struct DecaySchedulerOptions {
  // How often Run() makes a pass.
  absl::Duration interval = absl::Seconds(1);
  // Drain rate: leads claimed per pass.
  int max_claims_per_pass = 200;
  // Expired leases moved back per pass.
  int max_reclaims_per_pass = 1000;
  // How long a claim is reserved; after that any replica may take the lead again.
  absl::Duration lease = absl::Minutes(2);
  // How long a pass waits for the broker to acknowledge its events.
  absl::Duration flush_timeout = absl::Seconds(30);
};

// What one pass did.
struct DecayPassStats {
  int reclaimed = 0;  // expired claims put back
  int claimed = 0;    // due leads claimed
  int emitted = 0;    // leads.scored sent
  int released = 0;   // claims finished (re-scored and acknowledged)
  int errors = 0;     // leads left claimed (re-score or delivery failed)
};

class DecayScheduler {
 public:
  // Borrows everything; all must outlive the scheduler.
  DecayScheduler(ScoringHandler& handler, ScoringStore& store, kafka::Producer& producer,
                 const runtime::Clock& clock, prometheus::Registry& registry,
                 DecaySchedulerOptions options = {});

  // The BackgroundTask: a pass every `interval`, start to start (runtime/periodic.h), until
  // `stop`.
  void Run(const absl::Notification& stop);
  // One pass (see above). UNAVAILABLE when Redis cannot be reached for the claim; single leads'
  // errors are counted and logged, not returned.
  absl::StatusOr<DecayPassStats> RunOnce();

 private:
  ScoringHandler& handler_;
  ScoringStore& store_;
  kafka::Producer& producer_;
  const runtime::Clock& clock_;
  const DecaySchedulerOptions options_;
  log::RateLimitedLog error_log_{absl::Seconds(10)};
  prometheus::Counter& rescored_;
  prometheus::Counter& emitted_;
  prometheus::Counter& errors_;
};

struct RescorerOptions {
  // How often Run() makes a pass.
  absl::Duration interval = absl::Milliseconds(100);
  // Throttle: leads re-scored per second at most (token bucket, burst of one second).
  double leads_per_second = 100;
  // The lock's lease: another replica takes over this long after the holder stops renewing.
  absl::Duration lock_lease = absl::Seconds(30);
  // How long a pass waits for the broker to acknowledge its events.
  absl::Duration flush_timeout = absl::Seconds(30);
  // Names this replica in the lock; empty: host name, process id and address.
  std::string owner;
};

// What one pass did.
struct RescorePassStats {
  bool locked = false;    // this replica holds the re-score lock
  int rescored = 0;       // leads re-scored (cursor moved past them)
  int emitted = 0;        // leads.scored sent
  int64_t remaining = 0;  // leads still to re-score for the rules in force
  bool finished = false;  // the rules in force have been applied to every lead
};

class Rescorer {
 public:
  // Borrows everything; all must outlive the rescorer.
  Rescorer(ScoringHandler& handler, const ScoringRulesSource& rules, ScoringStore& store,
           kafka::Producer& producer, const runtime::Clock& clock, prometheus::Registry& registry,
           RescorerOptions options = {});

  void Run(const absl::Notification& stop);
  // One pass. UNAVAILABLE when Redis cannot be reached; a lead that fails stops the pass there
  // (the cursor stays before it and the next pass retries it).
  absl::StatusOr<RescorePassStats> RunOnce();

 private:
  ScoringHandler& handler_;
  const ScoringRulesSource& rules_;
  ScoringStore& store_;
  kafka::Producer& producer_;
  const runtime::Clock& clock_;
  const RescorerOptions options_;
  std::string owner_;
  double tokens_ = 0;
  absl::Time refilled_at_ = absl::InfinitePast();
  log::RateLimitedLog error_log_{absl::Seconds(10)};
  prometheus::Counter& rescored_;
  prometheus::Counter& emitted_;
  prometheus::Gauge& remaining_;
};

}  // namespace leadflow::scoring
