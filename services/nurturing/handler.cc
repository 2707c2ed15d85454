#include "services/nurturing/handler.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/events/codec.h"
#include "leadflow/events/v1/lead.pb.h"
#include "spdlog/spdlog.h"

namespace leadflow::nurturing {
namespace {

using internal::v1::NurtureLeadState;

redis::ApplyOnceRequest RequestFor(const std::string& lead_id, std::string dedup_key,
                                   absl::Duration dedup_ttl) {
  redis::ApplyOnceRequest request;
  request.dedup_key = std::move(dedup_key);
  request.dedup_ttl = dedup_ttl;
  request.state_keys = {NurturingStore::EnrollmentKey(lead_id)};
  request.registry_key = NurturingStore::RegistryKey(lead_id);
  request.tombstone_key = NurturingStore::TombstoneKey(lead_id);
  return request;
}

}  // namespace

NurturingHandler::NurturingHandler(NurturingStore& store, TracksSource tracks,
                                   const runtime::Clock& clock, NurturingOptions options)
    : store_(store), tracks_(std::move(tracks)), clock_(clock), options_(options) {}

absl::StatusOr<std::vector<kafka::OutboundMessage>> NurturingHandler::HandleScored(
    const kafka::ConsumedMessage& message) {
  events::v1::LeadScored event;
  if (absl::Status s = events::Decode(message, &event); !s.ok()) return s;
  // Without an event id, the message's position identifies it: a re-delivery is a duplicate.
  const std::string event_id =
      !event.envelope().event_id().empty()
          ? event.envelope().event_id()
          : absl::StrCat("kafka:", message.topic, ":", message.partition, ":", message.offset);
  if (absl::Status s = ApplyScoredEvent(event, event_id); !s.ok()) return s;
  return std::vector<kafka::OutboundMessage>{};
}

absl::Status NurturingHandler::ApplyScoredEvent(const events::v1::LeadScored& event,
                                                const std::string& event_id) {
  const std::string lead_id =
      !event.envelope().lead_id().empty() ? event.envelope().lead_id() : event.lead().lead_id();
  if (lead_id.empty()) return absl::InvalidArgumentError("scored event without a lead id");
  const std::shared_ptr<const CompiledNurtureTracks> tracks = tracks_();
  const absl::Time now = clock_.Now();
  const redis::ApplyOnceRequest request =
      RequestFor(lead_id, NurturingStore::ScoredKey(lead_id, event_id), options_.dedup_ttl);
  auto planner = [&](const std::vector<redis::Versioned>& records) -> absl::StatusOr<redis::Plan> {
    absl::StatusOr<StoredState> stored = NurturingStore::ParseState(records[0]);
    if (!stored.ok()) return stored.status();
    NurtureLeadState& state = stored->state;
    ApplyScored(state, lead_id, event, *tracks, options_.policy, now);
    redis::Plan plan;
    plan.writes.push_back({records[0].key, state.SerializeAsString()});
    plan.extra_commands.push_back(NurturingStore::ScheduleCommand(lead_id, WakeUpAt(state)));
    return plan;
  };
  absl::StatusOr<redis::ApplyResult> applied = store_.apply().Run(request, planner);
  return applied.status();
}

absl::StatusOr<std::vector<kafka::OutboundMessage>> NurturingHandler::HandleErasure(
    const kafka::ConsumedMessage& message) {
  events::v1::LeadErasure erasure;
  if (absl::Status s = events::Decode(message, &erasure); !s.ok()) return s;
  const std::string& lead_id = erasure.envelope().lead_id();
  if (lead_id.empty()) return absl::InvalidArgumentError("erasure without envelope.lead_id");
  if (absl::Status s = store_.Erase(lead_id, options_.tombstone_ttl); !s.ok()) return s;
  spdlog::info("erased nurturing state of lead {} ({})", lead_id, erasure.reason());
  return std::vector<kafka::OutboundMessage>{};
}

absl::StatusOr<CommandOutcome> NurturingHandler::Pause(const std::string& lead_id,
                                                       const std::string& request_id) {
  return Command(lead_id, request_id, /*create_if_missing=*/false,
                 [](NurtureLeadState& state, absl::Time now) { return ApplyPause(state, now); });
}

absl::StatusOr<CommandOutcome> NurturingHandler::Resume(const std::string& lead_id,
                                                        const std::string& request_id) {
  return Command(lead_id, request_id, /*create_if_missing=*/false,
                 [](NurtureLeadState& state, absl::Time now) { return ApplyResume(state, now); });
}

absl::StatusOr<CommandOutcome> NurturingHandler::Unsubscribe(const std::string& lead_id,
                                                             events::v1::Channel channel,
                                                             const std::string& request_id) {
  return Command(lead_id, request_id, /*create_if_missing=*/true,
                 [channel](NurtureLeadState& state, absl::Time now) {
                   return ApplyUnsubscribe(state, channel, now);
                 });
}

absl::StatusOr<CommandOutcome> NurturingHandler::Command(const std::string& lead_id,
                                                         const std::string& request_id,
                                                         bool create_if_missing, Change change) {
  if (lead_id.empty()) return absl::InvalidArgumentError("lead_id is required");
  if (request_id.empty()) return absl::InvalidArgumentError("request_id is required");
  const absl::Time now = clock_.Now();
  const redis::ApplyOnceRequest request =
      RequestFor(lead_id, NurturingStore::RequestKey(lead_id, request_id), options_.dedup_ttl);
  auto planner = [&](const std::vector<redis::Versioned>& records) -> absl::StatusOr<redis::Plan> {
    absl::StatusOr<StoredState> stored = NurturingStore::ParseState(records[0]);
    if (!stored.ok()) return stored.status();
    NurtureLeadState& state = stored->state;
    if (stored->version == 0 && !create_if_missing) {
      return absl::NotFoundError(absl::StrCat("nurturing knows no lead ", lead_id));
    }
    state.set_lead_id(lead_id);
    if (absl::Status s = change(state, now); !s.ok()) return s;
    v1::Enrollment reply;
    if (state.has_current()) {
      reply = ToApiEnrollment(lead_id, state.current());
    } else {
      reply.set_lead_id(lead_id);
    }
    redis::Plan plan;
    plan.writes.push_back({records[0].key, state.SerializeAsString()});
    plan.extra_commands.push_back(NurturingStore::ScheduleCommand(lead_id, WakeUpAt(state)));
    plan.memo = reply.SerializeAsString();
    return plan;
  };
  absl::StatusOr<redis::ApplyResult> applied = store_.apply().Run(request, planner);
  if (!applied.ok()) return applied.status();
  if (applied->outcome == redis::ApplyOutcome::kErased) {
    return absl::NotFoundError(absl::StrCat("lead ", lead_id, " was erased"));
  }
  CommandOutcome outcome;
  if (!outcome.enrollment.ParseFromString(applied->memo)) {
    return absl::DataLossError(absl::StrCat("corrupt command memo for lead ", lead_id));
  }
  outcome.duplicate = applied->outcome == redis::ApplyOutcome::kDuplicate;
  return outcome;
}

}  // namespace leadflow::nurturing
