#pragma once

// NurtureScheduler: turns due leads into touches on `nurture.touches`.
//
// One pass (RunOnce), every `interval` while the service runs:
//   1. Confirm the deliveries the broker acknowledged since the last pass: clear the lead's
//      in-flight mark, put it back in the schedule at its next due time, release its claim.
//      When the lead's record is still as the send left it (the common case), one checked write
//      per touch records the delivery in the lead's delivery record (store.h ConfirmDelivered)
//      and the next decision folds it in; otherwise an apply-once over the record does it.
//   2. Reclaim expired leases: leads claimed by a scheduler that never finished with them (a
//      crash, a lost delivery report) go back to the schedule, due now.
//   3. Claim up to `max_claims_per_pass` due leads, atomically (two replicas never claim the
//      same lead), leasing each for `lease`. The bound is the drain rate: after downtime a
//      backlog drains at most max_claims_per_pass per interval instead of all at once
//      (configured as scheduling.max_touches_per_second in nurture.yaml, SchedulerOptionsFrom).
//   4. For each claimed lead, one apply-once over its record (enrollment.h DecideDue):
//      - send: dedup key `nurturing:{lead}:touch:<touch id>`, memo = the encoded touch; the
//        record advances to the next step and marks the touch in flight; the touch is produced
//        (key = lead id) and the lead stays claimed until the delivery report (step 1);
//      - resend: the record says a touch is in flight but its delivery was never confirmed
//        (the lease expired): the same dedup key returns the memo and the SAME touch is sent
//        again — at-least-once on the wire, never a second touch id for one step;
//      - anything else (deferred for quiet hours or the cap, steps skipped for lack of consent,
//        track completed, paused, exited): the record is written, the lead is rescheduled (or
//        not) and released.
//      Enrolment changes a decision makes (exhausted, enrolled after a cooldown, exited because
//      the track was removed) are part of its memo and go to `nurture.enrollments`. The same
//      apply records the decision in the outbox (store.h); once the broker acknowledged all of
//      its events the entry is removed (step 1 or 5).
//   0. Before all that, re-send the outbox: decisions (and operator commands, handler.h) whose
//      events were sent at least
//      `outbox_grace` ago and never acknowledged (a crash between the apply and the
//      acknowledgement, a broker that refused them) are re-sent from their memo, the same
//      events with the same ids, until acknowledged. So no enrolment event is lost either; a
//      consumer may see one twice (at-least-once, as everywhere). An entry whose apply-once
//      record expired (a broker down for longer than its ttl) is dropped with a warning.
//   5. Confirm the deliveries acknowledged meanwhile (a fast broker acknowledges within the pass).
//
// Time comes from the injected clock only. Delivery reports arrive on the producer's thread;
// they are queued and applied by the next pass (or at the end of this one), never on that thread.
//
// Thread safety: RunOnce() must not be called concurrently on one instance (Run() calls it from
// one thread); inside a pass, `workers` threads handle different leads (one lead is only ever
// handled by the thread that claimed it). Any number of instances, in any number of processes,
// may share one Redis.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/events/codec.h"
#include "common/kafka/producer.h"
#include "common/kafka/topics.h"
#include "common/log/log.h"
#include "common/runtime/clock.h"
#include "prometheus/counter.h"
#include "prometheus/registry.h"
#include "services/nurturing/handler.h"
#include "services/nurturing/store.h"

namespace leadflow::nurturing {

struct SchedulerOptions {
  // How often Run() starts a pass (start to start: a full pass that takes the whole interval is
  // followed at once, so the drain rate below holds however long passes take).
  absl::Duration interval = absl::Milliseconds(150);
  // Drain rate: leads claimed per pass (so at most this many per `interval`). The default is
  // scheduling.max_touches_per_second's default, 20000/s, at the default interval.
  int max_claims_per_pass = 3000;
  // Threads that work through one pass's claimed leads (and delivery reports) side by side.
  // Each lead costs a few Redis round trips; running several at once hides their latency.
  int workers = 4;
  // Expired leases moved back to the schedule per pass.
  int max_reclaims_per_pass = 1000;
  // How long a claimed lead is reserved; after that another pass (any replica) may take it.
  // Longer than a delivery normally takes, so a slow acknowledgement rarely causes a re-send.
  absl::Duration lease = absl::Minutes(2);
  // Encoding of `nurture.touches` (ServiceContext::JsonOutput).
  events::Encoding encoding = events::Encoding::kProtobuf;
  // Outbox entries re-sent per pass, and how long an entry's events may go unacknowledged
  // before they are re-sent (far longer than a healthy broker takes to acknowledge).
  int max_replays_per_pass = 500;
  absl::Duration outbox_grace = absl::Seconds(60);
  // How long Run() waits for outstanding deliveries when it stops.
  absl::Duration shutdown_flush = absl::Seconds(10);
};

// The scheduler options that a track file's `scheduling` section asks for, on top of `base`.
// INVALID_ARGUMENT naming the field for a negative value.
absl::StatusOr<SchedulerOptions> SchedulerOptionsFrom(const config::v1::Scheduling& scheduling,
                                                      SchedulerOptions base = {});

// What one pass did.
struct PassStats {
  int confirmed = 0;  // delivery reports applied
  int reclaimed = 0;  // expired leases moved back to the schedule
  int claimed = 0;    // due leads claimed
  int sent = 0;       // touches handed to the producer (re-sends included)
  int errors = 0;     // leads that failed (they stay claimed and are retried after the lease)
  int replayed = 0;   // outbox entries whose enrolment events were re-sent
};

class NurtureScheduler {
 public:
  NurtureScheduler(NurturingStore& store, TracksSource tracks, kafka::Producer& producer,
                   const kafka::Topics& topics, const runtime::Clock& clock,
                   prometheus::Registry& registry, NurturingOptions options = {},
                   SchedulerOptions scheduler_options = {});
  ~NurtureScheduler();

  // The BackgroundTask: a pass every `interval`, start to start (runtime/periodic.h), until
  // `stop`, then waits for outstanding deliveries and confirms them.
  void Run(const absl::Notification& stop);

  // One pass (see above). Errors: UNAVAILABLE when Redis cannot be reached for the claim; the
  // errors of single leads are counted in PassStats and logged, not returned.
  absl::StatusOr<PassStats> RunOnce();

 private:
  struct Delivery {
    DeliveredTouch touch;  // lead_id and touch_id empty for an enrolment event
    absl::Status status;
  };
  // Delivery reports, shared with the producer's callbacks, which may outlive the scheduler.
  struct DeliveryQueue {
    absl::Mutex mu;
    std::vector<Delivery> reports ABSL_GUARDED_BY(mu);
    // Outbox members whose events were all acknowledged: to be removed from the outbox.
    std::vector<std::string> acknowledged ABSL_GUARDED_BY(mu);
  };

  // One claimed lead's decision, ready to apply.
  struct Prepared {
    std::string lead_id;
    int64_t read_version = 0;
    int64_t read_delivery_version = 0;
    std::string read_incarnation;
    DueDecision decision;
    absl::Time decided_at;
    // Its enrolment events (nurture.enrollments messages).
    std::vector<kafka::OutboundMessage> changes;
    redis::ApplyOnceRequest request;
  };
  // `stored` is consumed: the decision is made on its state, not on a copy.
  Prepared Prepare(const std::string& lead_id, StoredState stored,
                   const CompiledNurtureTracks& tracks, absl::Time now) const;
  // The apply-once plan of a decision; ABORTED (stale) when the record moved since it was read.
  absl::StatusOr<redis::Plan> PlanFor(const Prepared& p,
                                      const std::vector<redis::Versioned>& records) const;
  // After the apply: the touch (and events) handed to the producer, or the erased lead dropped.
  absl::Status Finish(const Prepared& p, const redis::ApplyResult& applied, PassStats& stats);
  // One lead alone, re-deciding while its record changes under us.
  absl::Status ProcessLead(const std::string& lead_id, absl::Time now, PassStats& stats);
  // Claimed leads in a handful of pipelined round trips (ApplyOnce::RunBatch); a lead whose
  // record changed meanwhile falls back to ProcessLead. Errors are counted in `stats`.
  void ProcessBatch(const std::vector<std::string>& lead_ids, absl::Time now, PassStats& stats);
  // Runs `work(begin, end, stats)` over slices of [0, n) on up to `workers` threads (at least
  // 16 items each); returns the summed stats.
  PassStats InParallel(size_t n, const std::function<void(size_t, size_t, PassStats&)>& work);
  // Applies the queued delivery reports; returns how many confirmed a touch.
  int ConfirmDeliveries();
  redis::ApplyOnceRequest ConfirmRequest(const std::string& lead_id,
                                         const std::string& touch_id) const;
  static absl::StatusOr<redis::Plan> PlanConfirm(const std::string& lead_id,
                                                 const std::string& touch_id,
                                                 const std::vector<redis::Versioned>& records);
  void Send(DeliveredTouch touch, kafka::OutboundMessage message);
  // A decision's enrolment events; when the broker acknowledged all of them, `outbox_member`
  // is queued for removal. A failure is counted and logged; the outbox re-sends them.
  void SendEvents(const std::string& outbox_member, std::vector<kafka::OutboundMessage> events);
  // Step 0: re-sends the events of outbox entries unacknowledged for `outbox_grace`.
  absl::Status ReplayOutbox(absl::Time now, PassStats& stats);
  void LogError(const std::string& what, const absl::Status& status);

  NurturingStore& store_;
  const TracksSource tracks_;
  kafka::Producer& producer_;
  const std::string topic_;
  const runtime::Clock& clock_;
  const NurturingOptions options_;
  const SchedulerOptions scheduler_options_;
  const std::shared_ptr<DeliveryQueue> deliveries_;
  log::RateLimitedLog error_log_{absl::Seconds(10)};

  prometheus::Counter& touches_sent_;
  prometheus::Counter& touches_resent_;
  prometheus::Counter& delivery_failures_;
  prometheus::Counter& leads_claimed_;
  prometheus::Counter& leases_reclaimed_;
  prometheus::Counter& errors_;
  prometheus::Counter& event_failures_;
  prometheus::Counter& events_replayed_;
};

}  // namespace leadflow::nurturing
