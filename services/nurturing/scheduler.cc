#include "services/nurturing/scheduler.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/kafka/memo.h"
#include "common/redis/outbox.h"
#include "common/runtime/periodic.h"
#include "common/runtime/side_by_side.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "spdlog/spdlog.h"

namespace leadflow::nurturing {
namespace {

using internal::v1::NurtureEnrollment;
using internal::v1::NurtureLeadState;

// Bounded re-plans when the record changes between our read and our write.
constexpr int kMaxDecisionAttempts = 8;

// The touch's map (personalisation) has no stable default wire order; the memo must hold the
// same bytes however often the decision is re-planned.
std::string DeterministicBytes(const google::protobuf::Message& message) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&coded);
  }
  return bytes;
}

kafka::OutboundMessage EncodeTouch(const std::string& topic, const events::v1::NurtureTouch& touch,
                                   events::Encoding encoding) {
  kafka::OutboundMessage message =
      events::Encode(topic, touch.envelope().lead_id(), touch, encoding);
  if (encoding == events::Encoding::kProtobuf) message.value = DeterministicBytes(touch);
  return message;
}

prometheus::Counter& MakeCounter(prometheus::Registry& registry, const std::string& name,
                                 const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(registry).Add({});
}

// Set by a planner that found the record changed since the decision was made.
constexpr char kStaleDecision[] = "nurturing record changed; re-plan";
absl::Status StaleDecision() { return absl::AbortedError(kStaleDecision); }
bool IsStale(const absl::Status& s) { return absl::IsAborted(s) && s.message() == kStaleDecision; }

}  // namespace

absl::StatusOr<SchedulerOptions> SchedulerOptionsFrom(const config::v1::Scheduling& scheduling,
                                                      SchedulerOptions base) {
  if (scheduling.interval_ms() < 0 || scheduling.max_touches_per_second() < 0 ||
      scheduling.lease_seconds() < 0) {
    return absl::InvalidArgumentError(
        "nurture.scheduling: interval_ms, max_touches_per_second and lease_seconds must not be "
        "negative");
  }
  if (scheduling.interval_ms() > 0) base.interval = absl::Milliseconds(scheduling.interval_ms());
  if (scheduling.lease_seconds() > 0) base.lease = absl::Seconds(scheduling.lease_seconds());
  if (scheduling.workers() < 0) {
    return absl::InvalidArgumentError("nurture.scheduling.workers must not be negative");
  }
  if (scheduling.workers() > 0) base.workers = scheduling.workers();
  const double per_second =
      scheduling.max_touches_per_second() > 0 ? scheduling.max_touches_per_second() : 20000;
  // At least one per pass, or a tiny rate would never drain anything.
  base.max_claims_per_pass =
      std::max(1, static_cast<int>(std::ceil(per_second * absl::ToDoubleSeconds(base.interval))));
  return base;
}

NurtureScheduler::NurtureScheduler(NurturingStore& store, TracksSource tracks,
                                   kafka::Producer& producer, const kafka::Topics& topics,
                                   const runtime::Clock& clock, prometheus::Registry& registry,
                                   NurturingOptions options, SchedulerOptions scheduler_options)
    : store_(store),
      tracks_(std::move(tracks)),
      producer_(producer),
      topic_(topics.Name(kafka::kNurtureTouches)),
      clock_(clock),
      options_(options),
      scheduler_options_(scheduler_options),
      deliveries_(std::make_shared<DeliveryQueue>()),
      touches_sent_(MakeCounter(registry, "leadflow_nurture_touches_sent_total",
                                "Touches decided and handed to the producer (first sends).")),
      touches_resent_(MakeCounter(registry, "leadflow_nurture_touches_resent_total",
                                  "Touches sent again because their delivery was not confirmed.")),
      delivery_failures_(MakeCounter(registry, "leadflow_nurture_delivery_failures_total",
                                     "Touch deliveries the producer reported as failed.")),
      leads_claimed_(MakeCounter(registry, "leadflow_nurture_leads_claimed_total",
                                 "Due leads claimed by the scheduler.")),
      leases_reclaimed_(MakeCounter(registry, "leadflow_nurture_leases_reclaimed_total",
                                    "Claims whose lease expired and went back to the schedule.")),
      errors_(MakeCounter(registry, "leadflow_nurture_scheduler_errors_total",
                          "Scheduler failures (Redis, corrupt records); retried.")),
      event_failures_(
          MakeCounter(registry, "leadflow_nurture_enrollment_event_failures_total",
                      "Enrolment events from the scheduler the producer reported as failed "
                      "(re-sent from the outbox).")),
      events_replayed_(
          MakeCounter(registry, "leadflow_nurture_enrollment_events_replayed_total",
                      "Scheduler decisions whose enrolment events were re-sent from the outbox "
                      "because their acknowledgement never came.")) {}

NurtureScheduler::~NurtureScheduler() = default;

void NurtureScheduler::Run(const absl::Notification& stop) {
  runtime::RunEvery(scheduler_options_.interval, stop, [this] {
    absl::StatusOr<PassStats> pass = RunOnce();
    if (!pass.ok()) LogError("scheduler pass", pass.status());
  });
  // Let what we sent be acknowledged, so the next replica need not wait for the leases.
  if (absl::Status s = producer_.Flush(scheduler_options_.shutdown_flush); !s.ok()) {
    LogError("flushing touches at shutdown", s);
  }
  ConfirmDeliveries();
}

absl::StatusOr<PassStats> NurtureScheduler::RunOnce() {
  PassStats stats;
  stats.confirmed += ConfirmDeliveries();
  const absl::Time now = clock_.Now();
  if (absl::Status s = ReplayOutbox(now, stats); !s.ok()) return s;
  absl::StatusOr<std::vector<std::string>> reclaimed =
      store_.Reclaim(now, scheduler_options_.max_reclaims_per_pass);
  if (!reclaimed.ok()) return reclaimed.status();
  stats.reclaimed = static_cast<int>(reclaimed->size());
  leases_reclaimed_.Increment(stats.reclaimed);

  absl::StatusOr<std::vector<std::string>> claimed =
      store_.Claim(now, scheduler_options_.lease, scheduler_options_.max_claims_per_pass);
  if (!claimed.ok()) return claimed.status();
  leads_claimed_.Increment(static_cast<double>(claimed->size()));
  const PassStats processed =
      InParallel(claimed->size(), [&](size_t begin, size_t end, PassStats& worker_stats) {
        const std::vector<std::string> batch(claimed->begin() + begin, claimed->begin() + end);
        ProcessBatch(batch, now, worker_stats);
      });
  stats.claimed = static_cast<int>(claimed->size());
  stats.sent = processed.sent;
  stats.errors += processed.errors;
  stats.confirmed += ConfirmDeliveries();
  return stats;
}

absl::Status NurtureScheduler::ReplayOutbox(absl::Time now, PassStats& stats) {
  absl::StatusOr<std::vector<std::string>> stale = store_.outbox().TakeStale(
      now - scheduler_options_.outbox_grace, now, scheduler_options_.max_replays_per_pass);
  if (!stale.ok()) return stale.status();
  std::vector<std::string> done;  // entries with nothing (left) to send
  for (const std::string& member : *stale) {
    std::string lead_id;
    redis::ApplyOnceRequest request;
    if (!redis::ParseOutboxMember(member, &lead_id, &request.dedup_key)) {
      done.push_back(member);
      continue;
    }
    request.state_keys = NurturingStore::StateKeys(lead_id);
    request.registry_key = NurturingStore::RegistryKey(lead_id);
    request.tombstone_key = NurturingStore::TombstoneKey(lead_id);
    request.dedup_ttl = options_.dedup_ttl;
    // The decision was applied, so its apply-once record answers with the memo, unless it
    // expired: then there is nothing to rebuild the events from.
    absl::StatusOr<std::optional<redis::ApplyResult>> recorded = store_.apply().Recorded(request);
    if (recorded.ok() && !recorded->has_value()) {
      spdlog::warn(
          "enrolment events of {} (lead {}) were never acknowledged and their record "
          "expired; not re-sent",
          request.dedup_key, lead_id);
      done.push_back(member);
      continue;
    }
    if (!recorded.ok()) {
      // Stays in the outbox (moved to now): the next replay after the grace tries again.
      ++stats.errors;
      errors_.Increment();
      LogError(absl::StrCat("re-sending the enrolment events of lead ", lead_id),
               recorded.status());
      continue;
    }
    const redis::ApplyResult& applied = **recorded;
    std::vector<kafka::OutboundMessage> outputs;
    if (applied.outcome != redis::ApplyOutcome::kErased) {
      if (absl::Status s = kafka::DecodeMemo(applied.memo, &outputs); !s.ok()) {
        ++stats.errors;
        errors_.Increment();
        LogError(absl::StrCat("the outbox memo of lead ", lead_id), s);
        done.push_back(member);
        continue;
      }
    }
    std::vector<kafka::OutboundMessage> events;
    for (kafka::OutboundMessage& m : outputs) {
      if (m.topic != topic_) events.push_back(std::move(m));  // the touch has its own lease
    }
    if (events.empty()) {
      done.push_back(member);  // erased meanwhile, or nothing but a touch
      continue;
    }
    SendEvents(member, std::move(events));
    ++stats.replayed;
    events_replayed_.Increment();
  }
  return store_.outbox().Remove(done);
}

PassStats NurtureScheduler::InParallel(
    size_t n, const std::function<void(size_t, size_t, PassStats&)>& work) {
  // Contiguous slices keep the earliest-due leads first within each worker.
  const runtime::Slices slices = runtime::SliceUp(n, scheduler_options_.workers, 16);
  std::vector<PassStats> stats(slices.count);
  runtime::RunSideBySide(slices.count, [&](size_t t) {
    if (slices.begin(t) < slices.end(t)) work(slices.begin(t), slices.end(t), stats[t]);
  });
  PassStats total;
  for (const PassStats& s : stats) {
    total.confirmed += s.confirmed;
    total.sent += s.sent;
    total.errors += s.errors;
  }
  return total;
}

NurtureScheduler::Prepared NurtureScheduler::Prepare(const std::string& lead_id, StoredState stored,
                                                     const CompiledNurtureTracks& tracks,
                                                     absl::Time now) const {
  Prepared p;
  p.lead_id = lead_id;
  p.decided_at = now;
  p.read_version = stored.version;
  p.read_delivery_version = stored.delivery_version;
  p.read_incarnation = std::move(stored.incarnation);
  // The decision takes the state itself; only the enrolment it had is kept to tell what changed.
  std::optional<NurtureEnrollment> before;
  if (stored.state.has_current()) before = stored.state.current();
  p.decision = DecideDue(std::move(stored.state), tracks, options_.policy, now);
  const std::string cause = p.decision.state.current().cause_event_id();
  p.changes = EncodeEnrollmentChanges(
      EnrollmentChanges(before.has_value() ? &*before : nullptr, p.decision.state, cause, now),
      options_);
  p.request.state_keys = NurturingStore::StateKeys(lead_id);
  p.request.registry_key = NurturingStore::RegistryKey(lead_id);
  p.request.tombstone_key = NurturingStore::TombstoneKey(lead_id);
  // Every plan of a due decision writes the enrollment record (PlanFor), and erasure deletes it.
  p.request.anchor_key = p.request.state_keys[0];
  p.request.dedup_ttl = options_.dedup_ttl;
  switch (p.decision.kind) {
    case DueDecision::Kind::kSend:
    case DueDecision::Kind::kResend:
      p.request.dedup_key = NurturingStore::TouchKey(lead_id, p.decision.touch_id);
      break;
    case DueDecision::Kind::kUpdate:
      // Unique per version of the record: the version check makes it apply at most once.
      p.request.dedup_key = NurturingStore::DecisionKey(lead_id, p.read_version);
      p.request.dedup_ttl = options_.decision_ttl;
      break;
  }
  return p;
}

absl::StatusOr<redis::Plan> NurtureScheduler::PlanFor(
    const Prepared& p, const std::vector<redis::Versioned>& records) const {
  // The decision was made from these versions; on any other, decide again.
  if (records[0].version != p.read_version || records[1].version != p.read_delivery_version) {
    return StaleDecision();
  }
  const std::string& lead_id = p.lead_id;
  const DueDecision& decision = p.decision;
  redis::Plan plan;
  // A decision with enrolment events is in the outbox until the broker acknowledged them.
  if (!p.changes.empty() && decision.kind != DueDecision::Kind::kResend) {
    plan.extra_commands.push_back(
        redis::AddToOutboxCommand(NurturingStore::OutboxKey(),
                                  redis::OutboxMember(lead_id, p.request.dedup_key), p.decided_at));
  }
  switch (decision.kind) {
    case DueDecision::Kind::kSend: {
      // The lead stays claimed until the delivery report (ConfirmDelivery).
      plan.writes.push_back({records[0].key, decision.state.SerializeAsString()});
      // An event or command may have put the claimed lead back in the schedule meanwhile;
      // with a touch in flight it belongs in the in-flight set only (WakeUpAt is nullopt).
      plan.extra_commands.push_back(
          NurturingStore::ScheduleCommand(lead_id, WakeUpAt(decision.state)));
      // The delivery record ConfirmDelivered writes registers itself when it is created.
      std::vector<kafka::OutboundMessage> outputs = {
          EncodeTouch(topic_, decision.touch, scheduler_options_.encoding)};
      outputs.insert(outputs.end(), p.changes.begin(), p.changes.end());
      plan.memo = kafka::EncodeMemo(outputs);
      return plan;
    }
    case DueDecision::Kind::kResend: {
      // The touch's record expired (a broker down for longer than dedup_ttl): the touch cannot
      // be rebuilt as it was, so it is given up and the lead carries on.
      spdlog::warn("touch {} of lead {} was never confirmed and its record expired; not re-sent",
                   decision.touch_id, lead_id);
      NurtureLeadState state = decision.state;
      state.clear_in_flight_touch_id();
      plan.writes.push_back({records[0].key, state.SerializeAsString()});
      plan.extra_commands.push_back(NurturingStore::ScheduleCommand(lead_id, WakeUpAt(state)));
      plan.extra_commands.push_back(NurturingStore::ReleaseCommand(lead_id));
      return plan;
    }
    case DueDecision::Kind::kUpdate:
      // Always written, even unchanged: the version must move so that the next decision gets a
      // fresh dedup key.
      plan.writes.push_back({records[0].key, decision.state.SerializeAsString()});
      plan.extra_commands.push_back(
          NurturingStore::ScheduleCommand(lead_id, WakeUpAt(decision.state)));
      plan.extra_commands.push_back(NurturingStore::ReleaseCommand(lead_id));
      if (!p.changes.empty()) plan.memo = kafka::EncodeMemo(p.changes);
      return plan;
  }
  return absl::InternalError("unknown decision");
}

absl::Status NurtureScheduler::Finish(const Prepared& p, const redis::ApplyResult& applied,
                                      PassStats& stats) {
  if (applied.outcome == redis::ApplyOutcome::kErased) return store_.Forget(p.lead_id);
  if (applied.memo.empty()) return absl::OkStatus();
  std::vector<kafka::OutboundMessage> outputs;
  if (absl::Status s = kafka::DecodeMemo(applied.memo, &outputs); !s.ok()) return s;
  std::vector<kafka::OutboundMessage> events;
  for (kafka::OutboundMessage& message : outputs) {
    if (message.topic != topic_) {
      events.push_back(std::move(message));
      continue;
    }
    // What the fast confirmation checks: the record as this decision left it.
    DeliveredTouch touch;
    touch.lead_id = p.lead_id;
    touch.touch_id = p.decision.touch_id;
    const bool wrote = applied.outcome == redis::ApplyOutcome::kApplied &&
                       p.decision.kind == DueDecision::Kind::kSend;
    touch.version = wrote ? p.read_version + 1 : p.read_version;
    touch.incarnation = p.read_incarnation;
    touch.due_after = WakeUpAtOnceDelivered(p.decision.state);
    Send(std::move(touch), std::move(message));
    ++stats.sent;
    if (applied.outcome == redis::ApplyOutcome::kDuplicate) {
      touches_resent_.Increment();
    } else {
      touches_sent_.Increment();
    }
  }
  if (!events.empty()) {
    SendEvents(redis::OutboxMember(p.lead_id, p.request.dedup_key), std::move(events));
  }
  return absl::OkStatus();
}

absl::Status NurtureScheduler::ProcessLead(const std::string& lead_id, absl::Time now,
                                           PassStats& stats) {
  const std::shared_ptr<const CompiledNurtureTracks> tracks = tracks_();
  for (int attempt = 0; attempt < kMaxDecisionAttempts; ++attempt) {
    absl::StatusOr<StoredState> stored = store_.Load(lead_id);
    if (!stored.ok()) return stored.status();
    if (stored->version == 0) {
      // Nothing to do for a lead without a record (erased meanwhile): drop the claim.
      return store_.Forget(lead_id);
    }
    const Prepared p = Prepare(lead_id, *std::move(stored), *tracks, now);
    absl::StatusOr<redis::ApplyResult> applied = store_.apply().Run(
        p.request,
        [&](const std::vector<redis::Versioned>& records) { return PlanFor(p, records); });
    if (!applied.ok()) {
      if (IsStale(applied.status())) continue;
      return applied.status();
    }
    return Finish(p, *applied, stats);
  }
  return absl::AbortedError(absl::StrCat("lead ", lead_id, " kept changing while scheduling"));
}

void NurtureScheduler::ProcessBatch(const std::vector<std::string>& lead_ids, absl::Time now,
                                    PassStats& stats) {
  auto failed = [&](const std::string& lead_id, const absl::Status& s) {
    // The lead stays claimed; the lease brings it back.
    ++stats.errors;
    errors_.Increment();
    LogError(absl::StrCat("lead ", lead_id), s);
  };
  const std::shared_ptr<const CompiledNurtureTracks> tracks = tracks_();
  // One round trip reads every record and one transaction (two more) applies every decision
  // (ApplyOnce::RunBatchOnRead), however many leads the batch holds.
  std::vector<std::string> keys;
  keys.reserve(2 * lead_ids.size());
  for (const std::string& id : lead_ids) {
    for (std::string& key : NurturingStore::StateKeys(id)) keys.push_back(std::move(key));
  }
  absl::StatusOr<std::vector<redis::Versioned>> records = store_.apply().Read(keys);
  if (!records.ok()) {
    for (const std::string& id : lead_ids) failed(id, records.status());
    return;
  }
  std::vector<Prepared> prepared;
  std::vector<std::vector<redis::Versioned>> read;
  prepared.reserve(lead_ids.size());
  read.reserve(lead_ids.size());
  for (size_t i = 0; i < lead_ids.size(); ++i) {
    std::vector<redis::Versioned> lead_records;
    lead_records.reserve(2);
    lead_records.push_back(std::move((*records)[2 * i]));
    lead_records.push_back(std::move((*records)[2 * i + 1]));
    absl::StatusOr<StoredState> stored = NurturingStore::ParseState(lead_records);
    if (!stored.ok()) {
      failed(lead_ids[i], stored.status());
      continue;
    }
    if (stored->version == 0) {
      // Nothing to do for a lead without a record (erased meanwhile): drop the claim.
      if (absl::Status s = store_.Forget(lead_ids[i]); !s.ok()) failed(lead_ids[i], s);
      continue;
    }
    prepared.push_back(Prepare(lead_ids[i], *std::move(stored), *tracks, now));
    read.push_back(std::move(lead_records));
  }
  std::vector<redis::ApplyOnceRequest> requests;
  requests.reserve(prepared.size());
  for (const Prepared& p : prepared) requests.push_back(p.request);
  // The records just read are planned on as they are (the transaction checks them).
  std::vector<absl::StatusOr<redis::ApplyResult>> results = store_.apply().RunBatchOnRead(
      requests, read, [&](size_t i, const std::vector<redis::Versioned>& state) {
        return PlanFor(prepared[i], state);
      });
  for (size_t i = 0; i < prepared.size(); ++i) {
    absl::Status s;
    if (results[i].ok()) {
      s = Finish(prepared[i], *results[i], stats);
    } else if (IsStale(results[i].status())) {
      // Changed by an event or command since we read it: decide again, alone.
      s = ProcessLead(prepared[i].lead_id, now, stats);
    } else {
      s = results[i].status();
    }
    if (!s.ok()) failed(prepared[i].lead_id, s);
  }
}

void NurtureScheduler::Send(DeliveredTouch touch, kafka::OutboundMessage message) {
  // The callback may run after this scheduler is gone (the producer flushes on destruction):
  // it holds the queue, not the scheduler.
  std::shared_ptr<DeliveryQueue> queue = deliveries_;
  kafka::Producer::DeliveryCallback on_delivery =
      [queue, touch = std::move(touch)](const absl::Status& status) {
        absl::MutexLock lock(&queue->mu);
        queue->reports.push_back({touch, status});
      };
  if (absl::Status s = producer_.Send(std::move(message), on_delivery); !s.ok()) {
    // Not even enqueued: the same as a failed delivery, the lease brings the touch back.
    on_delivery(s);
  }
}

void NurtureScheduler::SendEvents(const std::string& outbox_member,
                                  std::vector<kafka::OutboundMessage> events) {
  // The callbacks may run after this scheduler is gone: they hold the queue, not the scheduler.
  // The last report of the batch decides: all acknowledged, the outbox entry can go.
  struct Pending {
    absl::Mutex mu;
    size_t left ABSL_GUARDED_BY(mu) = 0;
    bool failed ABSL_GUARDED_BY(mu) = false;
  };
  auto pending = std::make_shared<Pending>();
  {
    absl::MutexLock lock(&pending->mu);
    pending->left = events.size();
  }
  std::shared_ptr<DeliveryQueue> queue = deliveries_;
  for (kafka::OutboundMessage& message : events) {
    kafka::Producer::DeliveryCallback on_delivery = [queue, pending,
                                                     outbox_member](const absl::Status& status) {
      bool all_acknowledged = false;
      {
        absl::MutexLock lock(&pending->mu);
        if (!status.ok()) pending->failed = true;
        all_acknowledged = --pending->left == 0 && !pending->failed;
      }
      if (status.ok() && !all_acknowledged) return;
      absl::MutexLock lock(&queue->mu);
      if (!status.ok()) queue->reports.push_back({DeliveredTouch{}, status});
      if (all_acknowledged) queue->acknowledged.push_back(outbox_member);
    };
    if (absl::Status s = producer_.Send(std::move(message), on_delivery); !s.ok()) on_delivery(s);
  }
}

int NurtureScheduler::ConfirmDeliveries() {
  std::vector<Delivery> reports;
  std::vector<std::string> acknowledged;
  {
    absl::MutexLock lock(&deliveries_->mu);
    reports.swap(deliveries_->reports);
    acknowledged.swap(deliveries_->acknowledged);
  }
  if (absl::Status s = store_.outbox().Remove(acknowledged); !s.ok()) {
    // Left in the outbox: re-sent after the grace, a duplicate on the wire but nothing lost.
    errors_.Increment();
    LogError(absl::StrCat("removing ", acknowledged.size(), " acknowledged outbox entries"), s);
  }
  std::vector<DeliveredTouch> delivered;
  for (Delivery& d : reports) {
    if (d.touch.touch_id.empty()) {
      // A failed enrolment event (SendEvents): its decision stays in the outbox.
      event_failures_.Increment();
      LogError("delivery of an enrolment event", d.status);
    } else if (!d.status.ok()) {
      // Left claimed: when the lease expires the same touch is sent again.
      delivery_failures_.Increment();
      LogError(absl::StrCat("delivery of touch ", d.touch.touch_id), d.status);
    } else {
      delivered.push_back(std::move(d.touch));
    }
  }
  const PassStats done =
      InParallel(delivered.size(), [&](size_t begin, size_t end, PassStats& stats) {
        const std::vector<DeliveredTouch> slice(delivered.begin() + begin, delivered.begin() + end);
        absl::StatusOr<std::vector<DeliveryRecorded>> recorded = store_.ConfirmDelivered(slice);
        if (!recorded.ok()) {
          // Left claimed: the lease brings the leads back and their touches are sent again.
          errors_.Increment(static_cast<double>(slice.size()));
          LogError(absl::StrCat("confirming ", slice.size(), " touches"), recorded.status());
          return;
        }
        // Records that moved since the send (an event, a command, an erasure) are confirmed by an
        // apply-once over the record as it is now.
        std::vector<const DeliveredTouch*> moved;
        std::vector<redis::ApplyOnceRequest> requests;
        for (size_t i = 0; i < slice.size(); ++i) {
          if ((*recorded)[i] != DeliveryRecorded::kRecordMoved) {
            ++stats.confirmed;
            continue;
          }
          moved.push_back(&slice[i]);
          requests.push_back(ConfirmRequest(slice[i].lead_id, slice[i].touch_id));
        }
        if (requests.empty()) return;
        std::vector<absl::StatusOr<redis::ApplyResult>> results = store_.apply().RunBatch(
            requests, [&](size_t i, const std::vector<redis::Versioned>& records) {
              return PlanConfirm(moved[i]->lead_id, moved[i]->touch_id, records);
            });
        for (size_t i = 0; i < results.size(); ++i) {
          if (!results[i].ok()) {
            errors_.Increment();
            LogError(absl::StrCat("confirming touch ", moved[i]->touch_id), results[i].status());
            continue;
          }
          ++stats.confirmed;
        }
      });
  return done.confirmed;
}

redis::ApplyOnceRequest NurtureScheduler::ConfirmRequest(const std::string& lead_id,
                                                         const std::string& touch_id) const {
  redis::ApplyOnceRequest request;
  request.dedup_key = NurturingStore::DeliveredKey(lead_id, touch_id);
  request.dedup_ttl = options_.dedup_ttl;
  request.state_keys = NurturingStore::StateKeys(lead_id);
  request.registry_key = NurturingStore::RegistryKey(lead_id);
  request.tombstone_key = NurturingStore::TombstoneKey(lead_id);
  return request;
}

absl::StatusOr<redis::Plan> NurtureScheduler::PlanConfirm(
    const std::string& lead_id, const std::string& touch_id,
    const std::vector<redis::Versioned>& records) {
  absl::StatusOr<StoredState> stored = NurturingStore::ParseState(records);
  if (!stored.ok()) return stored.status();
  redis::Plan plan;
  // A report for a touch that is no longer the one in flight changes nothing: the lead's claim
  // (if any) belongs to a later decision.
  if (!ApplyDelivered(stored->state, touch_id)) return plan;
  plan.writes.push_back({records[0].key, stored->state.SerializeAsString()});
  plan.extra_commands.push_back(NurturingStore::ScheduleCommand(lead_id, WakeUpAt(stored->state)));
  plan.extra_commands.push_back(NurturingStore::ReleaseCommand(lead_id));
  return plan;
}

void NurtureScheduler::LogError(const std::string& what, const absl::Status& status) {
  int64_t suppressed = 0;
  if (!error_log_.ShouldLog(&suppressed)) return;
  spdlog::error("nurturing scheduler: {}: {} ({} similar errors suppressed)", what,
                status.ToString(), suppressed);
}

}  // namespace leadflow::nurturing
