#include "services/nurturing/scheduler.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/kafka/memo.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "spdlog/spdlog.h"

namespace leadflow::nurturing {
namespace {

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
absl::Status StaleDecision() { return absl::AbortedError("nurturing record changed; re-plan"); }

}  // namespace

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
                          "Scheduler failures (Redis, corrupt records); retried.")) {}

NurtureScheduler::~NurtureScheduler() = default;

void NurtureScheduler::Run(const absl::Notification& stop) {
  while (!stop.WaitForNotificationWithTimeout(scheduler_options_.interval)) {
    absl::StatusOr<PassStats> pass = RunOnce();
    if (!pass.ok()) LogError("scheduler pass", pass.status());
  }
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
  absl::StatusOr<std::vector<std::string>> reclaimed =
      store_.Reclaim(now, scheduler_options_.max_reclaims_per_pass);
  if (!reclaimed.ok()) return reclaimed.status();
  stats.reclaimed = static_cast<int>(reclaimed->size());
  leases_reclaimed_.Increment(stats.reclaimed);

  absl::StatusOr<std::vector<std::string>> claimed =
      store_.Claim(now, scheduler_options_.lease, scheduler_options_.max_claims_per_pass);
  if (!claimed.ok()) return claimed.status();
  stats.claimed = static_cast<int>(claimed->size());
  leads_claimed_.Increment(stats.claimed);
  for (const std::string& lead_id : *claimed) {
    if (absl::Status s = ProcessLead(lead_id, now, stats); !s.ok()) {
      // The lead stays claimed; the lease brings it back.
      ++stats.errors;
      errors_.Increment();
      LogError(absl::StrCat("lead ", lead_id), s);
    }
  }
  stats.confirmed += ConfirmDeliveries();
  return stats;
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
    const int64_t read_version = stored->version;
    const DueDecision decision = DecideDue(stored->state, *tracks, options_.policy, now);

    redis::ApplyOnceRequest request;
    request.state_keys = {NurturingStore::EnrollmentKey(lead_id)};
    request.registry_key = NurturingStore::RegistryKey(lead_id);
    request.tombstone_key = NurturingStore::TombstoneKey(lead_id);
    request.dedup_ttl = options_.dedup_ttl;
    switch (decision.kind) {
      case DueDecision::Kind::kSend:
      case DueDecision::Kind::kResend:
        request.dedup_key = NurturingStore::TouchKey(lead_id, decision.touch_id);
        break;
      case DueDecision::Kind::kUpdate:
        // Unique per version of the record: the version check makes it apply at most once.
        request.dedup_key = NurturingStore::DecisionKey(lead_id, read_version);
        request.dedup_ttl = options_.decision_ttl;
        break;
    }

    bool stale = false;
    auto planner =
        [&](const std::vector<redis::Versioned>& records) -> absl::StatusOr<redis::Plan> {
      // The decision was made from `read_version`; on any other version, decide again.
      if (records[0].version != read_version) {
        stale = true;
        return StaleDecision();
      }
      redis::Plan plan;
      switch (decision.kind) {
        case DueDecision::Kind::kSend:
          // The lead stays claimed until the delivery report (ConfirmDelivery).
          plan.writes.push_back({records[0].key, decision.state.SerializeAsString()});
          // An event or command may have put the claimed lead back in the schedule meanwhile;
          // with a touch in flight it belongs in the in-flight set only (WakeUpAt is nullopt).
          plan.extra_commands.push_back(
              NurturingStore::ScheduleCommand(lead_id, WakeUpAt(decision.state)));
          plan.memo =
              kafka::EncodeMemo({EncodeTouch(topic_, decision.touch, scheduler_options_.encoding)});
          return plan;
        case DueDecision::Kind::kResend: {
          // The touch's record expired (a broker down for longer than dedup_ttl): the touch
          // cannot be rebuilt as it was, so it is given up and the lead carries on.
          spdlog::warn(
              "touch {} of lead {} was never confirmed and its record expired; "
              "not re-sent",
              decision.touch_id, lead_id);
          NurtureLeadState state = decision.state;
          state.clear_in_flight_touch_id();
          plan.writes.push_back({records[0].key, state.SerializeAsString()});
          plan.extra_commands.push_back(NurturingStore::ScheduleCommand(lead_id, WakeUpAt(state)));
          plan.extra_commands.push_back(NurturingStore::ReleaseCommand(lead_id));
          return plan;
        }
        case DueDecision::Kind::kUpdate:
          // Always written, even unchanged: the version must move so that the next decision
          // gets a fresh dedup key.
          plan.writes.push_back({records[0].key, decision.state.SerializeAsString()});
          plan.extra_commands.push_back(
              NurturingStore::ScheduleCommand(lead_id, WakeUpAt(decision.state)));
          plan.extra_commands.push_back(NurturingStore::ReleaseCommand(lead_id));
          return plan;
      }
      return absl::InternalError("unknown decision");
    };
    absl::StatusOr<redis::ApplyResult> applied = store_.apply().Run(request, planner);
    if (!applied.ok()) {
      if (stale) continue;
      return applied.status();
    }
    if (applied->outcome == redis::ApplyOutcome::kErased) return store_.Forget(lead_id);
    if (decision.kind == DueDecision::Kind::kUpdate) return absl::OkStatus();

    std::vector<kafka::OutboundMessage> outputs;
    if (absl::Status s = kafka::DecodeMemo(applied->memo, &outputs); !s.ok()) return s;
    for (kafka::OutboundMessage& message : outputs) {
      Send(lead_id, decision.touch_id, std::move(message));
      ++stats.sent;
      if (applied->outcome == redis::ApplyOutcome::kDuplicate) {
        touches_resent_.Increment();
      } else {
        touches_sent_.Increment();
      }
    }
    return absl::OkStatus();
  }
  return absl::AbortedError(absl::StrCat("lead ", lead_id, " kept changing while scheduling"));
}

void NurtureScheduler::Send(const std::string& lead_id, const std::string& touch_id,
                            kafka::OutboundMessage message) {
  // The callback may run after this scheduler is gone (the producer flushes on destruction):
  // it holds the queue, not the scheduler.
  std::shared_ptr<DeliveryQueue> queue = deliveries_;
  kafka::Producer::DeliveryCallback on_delivery = [queue, lead_id,
                                                   touch_id](const absl::Status& status) {
    absl::MutexLock lock(&queue->mu);
    queue->reports.push_back({lead_id, touch_id, status});
  };
  if (absl::Status s = producer_.Send(std::move(message), on_delivery); !s.ok()) {
    // Not even enqueued: the same as a failed delivery, the lease brings the touch back.
    on_delivery(s);
  }
}

int NurtureScheduler::ConfirmDeliveries() {
  std::vector<Delivery> reports;
  {
    absl::MutexLock lock(&deliveries_->mu);
    reports.swap(deliveries_->reports);
  }
  int confirmed = 0;
  for (const Delivery& d : reports) {
    if (!d.status.ok()) {
      // Left claimed: when the lease expires the same touch is sent again.
      delivery_failures_.Increment();
      LogError(absl::StrCat("delivery of touch ", d.touch_id), d.status);
      continue;
    }
    if (absl::Status s = ConfirmDelivery(d.lead_id, d.touch_id); !s.ok()) {
      errors_.Increment();
      LogError(absl::StrCat("confirming touch ", d.touch_id), s);
      continue;
    }
    ++confirmed;
  }
  return confirmed;
}

absl::Status NurtureScheduler::ConfirmDelivery(const std::string& lead_id,
                                               const std::string& touch_id) {
  redis::ApplyOnceRequest request;
  request.dedup_key = NurturingStore::DeliveredKey(lead_id, touch_id);
  request.dedup_ttl = options_.dedup_ttl;
  request.state_keys = {NurturingStore::EnrollmentKey(lead_id)};
  request.registry_key = NurturingStore::RegistryKey(lead_id);
  request.tombstone_key = NurturingStore::TombstoneKey(lead_id);
  auto planner = [&](const std::vector<redis::Versioned>& records) -> absl::StatusOr<redis::Plan> {
    absl::StatusOr<StoredState> stored = NurturingStore::ParseState(records[0]);
    if (!stored.ok()) return stored.status();
    redis::Plan plan;
    // A report for a touch that is no longer the one in flight changes nothing: the lead's
    // claim (if any) belongs to a later decision.
    if (!ApplyDelivered(stored->state, touch_id)) return plan;
    plan.writes.push_back({records[0].key, stored->state.SerializeAsString()});
    plan.extra_commands.push_back(
        NurturingStore::ScheduleCommand(lead_id, WakeUpAt(stored->state)));
    plan.extra_commands.push_back(NurturingStore::ReleaseCommand(lead_id));
    return plan;
  };
  return store_.apply().Run(request, planner).status();
}

void NurtureScheduler::LogError(const std::string& what, const absl::Status& status) {
  int64_t suppressed = 0;
  if (!error_log_.ShouldLog(&suppressed)) return;
  spdlog::error("nurturing scheduler: {}: {} ({} similar errors suppressed)", what,
                status.ToString(), suppressed);
}

}  // namespace leadflow::nurturing
