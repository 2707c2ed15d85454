#include "services/nurturing/handler.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/events/codec.h"
#include "common/events/envelope.h"
#include "common/kafka/memo.h"
#include "common/redis/outbox.h"
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
  request.state_keys = NurturingStore::StateKeys(lead_id);
  request.registry_key = NurturingStore::RegistryKey(lead_id);
  request.tombstone_key = NurturingStore::TombstoneKey(lead_id);
  return request;
}

}  // namespace

NurturingHandler::NurturingHandler(NurturingStore& store, TracksSource tracks,
                                   const runtime::Clock& clock, NurturingOptions options)
    : store_(store), tracks_(std::move(tracks)), clock_(clock), options_(options) {}

std::vector<kafka::OutboundMessage> EncodeEnrollmentChanges(
    const std::vector<events::v1::NurtureEnrollmentChanged>& changes,
    const NurturingOptions& options) {
  std::vector<kafka::OutboundMessage> out;
  out.reserve(changes.size());
  for (const events::v1::NurtureEnrollmentChanged& change : changes) {
    out.push_back(events::Encode(options.enrollments_topic, change.envelope().lead_id(), change,
                                 options.enrollments_encoding));
  }
  return out;
}

absl::StatusOr<std::vector<kafka::OutboundMessage>> NurturingHandler::HandleScored(
    const kafka::ConsumedMessage& message) {
  events::v1::LeadScored event;
  if (absl::Status s = events::Decode(message, &event); !s.ok()) return s;
  return ApplyScoredEvent(event, ScoredEventId(message, event));
}

std::vector<kafka::HandleResult> NurturingHandler::HandleScoredBatch(
    const std::vector<const kafka::ConsumedMessage*>& messages) {
  std::vector<kafka::HandleResult> results(messages.size(), absl::UnknownError("not run"));
  std::vector<events::v1::LeadScored> decoded(messages.size());
  std::vector<const events::v1::LeadScored*> events;
  std::vector<std::string> event_ids;
  std::vector<size_t> index;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (absl::Status s = events::Decode(*messages[i], &decoded[i]); !s.ok()) {
      results[i] = s;
      continue;
    }
    events.push_back(&decoded[i]);
    event_ids.push_back(ScoredEventId(*messages[i], decoded[i]));
    index.push_back(i);
  }
  std::vector<kafka::HandleResult> applied = ApplyScoredEvents(events, event_ids);
  for (size_t k = 0; k < index.size(); ++k) results[index[k]] = std::move(applied[k]);
  return results;
}

std::string NurturingHandler::ScoredEventId(const kafka::ConsumedMessage& message,
                                            const events::v1::LeadScored& event) {
  // Without an event id, the message's position identifies it: a re-delivery is a duplicate.
  return !event.envelope().event_id().empty() ? event.envelope().event_id()
                                              : events::PositionId(message);
}

absl::StatusOr<NurturingHandler::EventInput> NurturingHandler::ScoredInput(
    const events::v1::LeadScored& event, const std::string& event_id) {
  const std::string lead_id =
      !event.envelope().lead_id().empty() ? event.envelope().lead_id() : event.lead().lead_id();
  if (lead_id.empty()) return absl::InvalidArgumentError("scored event without a lead id");
  return EventInput{lead_id, NurturingStore::ScoredKey(lead_id, event_id), event_id,
                    /*create_if_missing=*/true};
}

bool NurturingHandler::ChangeScored(const events::v1::LeadScored& event, const std::string& lead_id,
                                    NurtureLeadState& state, const CompiledNurtureTracks& tracks,
                                    absl::Time now) const {
  ApplyScored(state, lead_id, event, tracks, options_.policy, now);
  return true;
}

absl::StatusOr<std::vector<kafka::OutboundMessage>> NurturingHandler::ApplyScoredEvent(
    const events::v1::LeadScored& event, const std::string& event_id) {
  absl::StatusOr<EventInput> input = ScoredInput(event, event_id);
  if (!input.ok()) return input.status();
  return ApplyEvent(
      *input, [&](NurtureLeadState& state, const CompiledNurtureTracks& tracks, absl::Time now) {
        return ChangeScored(event, input->lead_id, state, tracks, now);
      });
}

std::vector<kafka::HandleResult> NurturingHandler::ApplyScoredEvents(
    const std::vector<const events::v1::LeadScored*>& events,
    const std::vector<std::string>& event_ids) {
  kafka::BatchSubset<kafka::HandleResult> subset(events.size());
  std::vector<EventInput> inputs;
  for (size_t i = 0; i < events.size(); ++i) {
    absl::StatusOr<EventInput> input = ScoredInput(*events[i], event_ids[i]);
    if (!input.ok()) {
      subset.Settle(i, input.status());
      continue;
    }
    inputs.push_back(*std::move(input));
    subset.Keep(i);
  }
  const std::vector<size_t>& index = subset.kept();
  std::vector<kafka::HandleResult> applied = ApplyEvents(
      inputs,
      [&](size_t k, NurtureLeadState& state, const CompiledNurtureTracks& tracks, absl::Time now) {
        return ChangeScored(*events[index[k]], inputs[k].lead_id, state, tracks, now);
      });
  return std::move(subset).Merge(std::move(applied));
}

absl::StatusOr<std::vector<kafka::OutboundMessage>> NurturingHandler::HandleOutcome(
    const kafka::ConsumedMessage& message) {
  events::v1::LeadOutcome outcome;
  if (absl::Status s = events::Decode(message, &outcome); !s.ok()) return s;
  absl::StatusOr<events::InputIdentity> input =
      events::IdentifyInput(message, outcome.envelope(), "", clock_.Now());
  if (!input.ok()) return input.status();
  return ApplyOutcomeEvent(input->lead_id, outcome, input->event_id);
}

absl::StatusOr<std::vector<kafka::OutboundMessage>> NurturingHandler::ApplyOutcomeEvent(
    const std::string& lead_id, const events::v1::LeadOutcome& outcome,
    const std::string& event_id) {
  if (lead_id.empty()) return absl::InvalidArgumentError("outcome without a lead id");
  if (outcome.kind() != events::v1::LeadOutcome::KIND_WON &&
      outcome.kind() != events::v1::LeadOutcome::KIND_LOST) {
    return std::vector<kafka::OutboundMessage>{};  // scoring reports the other stages
  }
  // A lost lead nurturing never saw is still recycled: its profile follows with the next score.
  return ApplyEvent(
      {lead_id, NurturingStore::ScoredKey(lead_id, event_id), event_id,
       /*create_if_missing=*/true},
      [&](NurtureLeadState& state, const CompiledNurtureTracks& tracks, absl::Time now) {
        return ApplyOutcome(state, lead_id, outcome, tracks, options_.policy, now);
      });
}

absl::StatusOr<std::vector<kafka::OutboundMessage>> NurturingHandler::HandleRouted(
    const kafka::ConsumedMessage& message) {
  events::v1::LeadRouted routed;
  if (absl::Status s = events::Decode(message, &routed); !s.ok()) return s;
  absl::StatusOr<events::InputIdentity> input =
      events::IdentifyInput(message, routed.envelope(), routed.lead().lead_id(), clock_.Now());
  if (!input.ok()) return input.status();
  return ApplyRoutedEvent(input->lead_id, input->event_id);
}

absl::StatusOr<std::vector<kafka::OutboundMessage>> NurturingHandler::ApplyRoutedEvent(
    const std::string& lead_id, const std::string& event_id) {
  if (lead_id.empty()) return absl::InvalidArgumentError("routed event without a lead id");
  return ApplyEvent({lead_id, NurturingStore::ScoredKey(lead_id, event_id), event_id,
                     /*create_if_missing=*/false},
                    [&](NurtureLeadState& state, const CompiledNurtureTracks&, absl::Time now) {
                      return ApplyRouted(state, options_.policy, now);
                    });
}

absl::StatusOr<std::vector<kafka::OutboundMessage>> NurturingHandler::HandleActivity(
    const kafka::ConsumedMessage& message) {
  std::vector<kafka::HandleResult> results = HandleActivityBatch({&message});
  return std::move(results.front());
}

std::vector<kafka::HandleResult> NurturingHandler::HandleActivityBatch(
    const std::vector<const kafka::ConsumedMessage*>& messages) {
  kafka::BatchSubset<kafka::HandleResult> subset(messages.size());
  std::vector<events::v1::LeadActivity> decoded(messages.size());
  std::vector<EventInput> inputs;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (absl::Status s = events::Decode(*messages[i], &decoded[i]); !s.ok()) {
      subset.Settle(i, s);
      continue;
    }
    // Most activity is page views and the like: skipped before any Redis call.
    if (!IsNurtureActivity(decoded[i].activity())) {
      subset.Settle(i, std::vector<kafka::OutboundMessage>{});
      continue;
    }
    absl::StatusOr<events::InputIdentity> identity =
        events::IdentifyInput(*messages[i], decoded[i].envelope(), "", clock_.Now());
    if (!identity.ok()) {
      subset.Settle(i, identity.status());
      continue;
    }
    absl::StatusOr<EventInput> input = ActivityInput(identity->lead_id, identity->event_id);
    if (!input.ok()) {
      subset.Settle(i, input.status());
      continue;
    }
    inputs.push_back(*std::move(input));
    subset.Keep(i);
  }
  const std::vector<size_t>& index = subset.kept();
  std::vector<kafka::HandleResult> applied = ApplyEvents(
      inputs,
      [&](size_t k, NurtureLeadState& state, const CompiledNurtureTracks& tracks, absl::Time now) {
        return ChangeActivity(decoded[index[k]].activity(), state, tracks, now);
      });
  return std::move(subset).Merge(std::move(applied));
}

absl::StatusOr<NurturingHandler::EventInput> NurturingHandler::ActivityInput(
    const std::string& lead_id, const std::string& event_id) {
  if (lead_id.empty()) return absl::InvalidArgumentError("activity without a lead id");
  return EventInput{lead_id, NurturingStore::ScoredKey(lead_id, event_id), event_id,
                    /*create_if_missing=*/false};
}

bool NurturingHandler::ChangeActivity(const events::v1::Activity& activity, NurtureLeadState& state,
                                      const CompiledNurtureTracks& tracks, absl::Time now) const {
  return ApplyActivity(state, activity, tracks, options_.policy, now);
}

absl::StatusOr<std::vector<kafka::OutboundMessage>> NurturingHandler::ApplyActivityEvent(
    const std::string& lead_id, const events::v1::Activity& activity, const std::string& event_id) {
  absl::StatusOr<EventInput> input = ActivityInput(lead_id, event_id);
  if (!input.ok()) return input.status();
  if (!IsNurtureActivity(activity)) return std::vector<kafka::OutboundMessage>{};
  return ApplyEvent(
      *input, [&](NurtureLeadState& state, const CompiledNurtureTracks& tracks, absl::Time now) {
        return ChangeActivity(activity, state, tracks, now);
      });
}

absl::StatusOr<redis::Plan> NurturingHandler::PlanEvent(
    const EventInput& input, const CompiledNurtureTracks& tracks, absl::Time now,
    const std::vector<redis::Versioned>& records, EventChange change) const {
  absl::StatusOr<StoredState> stored = NurturingStore::ParseState(records);
  if (!stored.ok()) return stored.status();
  redis::Plan plan;
  if (stored->version == 0 && !input.create_if_missing) return plan;
  const NurtureLeadState before = stored->state;
  NurtureLeadState& state = stored->state;
  if (!change(state, tracks, now)) return plan;
  plan.writes.push_back({records[0].key, state.SerializeAsString()});
  plan.extra_commands.push_back(NurturingStore::ScheduleCommand(input.lead_id, WakeUpAt(state)));
  plan.memo = kafka::EncodeMemo(
      EncodeEnrollmentChanges(EnrollmentChanges(before, state, input.cause_id, now), options_));
  return plan;
}

kafka::HandleResult NurturingHandler::OutcomeOf(const absl::StatusOr<redis::ApplyResult>& applied) {
  if (!applied.ok()) return applied.status();
  std::vector<kafka::OutboundMessage> outputs;
  if (applied->memo.empty()) return outputs;
  if (absl::Status s = kafka::DecodeMemo(applied->memo, &outputs); !s.ok()) return s;
  return outputs;
}

absl::StatusOr<std::vector<kafka::OutboundMessage>> NurturingHandler::ApplyEvent(
    const EventInput& input, EventChange change) {
  const std::shared_ptr<const CompiledNurtureTracks> tracks = tracks_();
  const absl::Time now = clock_.Now();
  return OutcomeOf(
      store_.apply().Run(RequestFor(input.lead_id, input.dedup_key, options_.dedup_ttl),
                         [&](const std::vector<redis::Versioned>& records) {
                           return PlanEvent(input, *tracks, now, records, change);
                         }));
}

std::vector<kafka::HandleResult> NurturingHandler::ApplyEvents(
    const std::vector<EventInput>& inputs, IndexedEventChange change) {
  if (inputs.empty()) return {};
  if (inputs.size() == 1) {
    // A wave of one (Handle(), a lone lead): Run(), without RunBatch's extra probe round trip.
    return {ApplyEvent(inputs[0], [&](NurtureLeadState& state, const CompiledNurtureTracks& t,
                                      absl::Time at) { return change(0, state, t, at); })};
  }
  const std::shared_ptr<const CompiledNurtureTracks> tracks = tracks_();
  const absl::Time now = clock_.Now();
  std::vector<redis::ApplyOnceRequest> requests;
  requests.reserve(inputs.size());
  for (const EventInput& input : inputs) {
    requests.push_back(RequestFor(input.lead_id, input.dedup_key, options_.dedup_ttl));
  }
  std::vector<absl::StatusOr<redis::ApplyResult>> applied = store_.apply().RunBatch(
      requests, [&](size_t k, const std::vector<redis::Versioned>& records) {
        return PlanEvent(inputs[k], *tracks, now, records,
                         [&](NurtureLeadState& state, const CompiledNurtureTracks& t,
                             absl::Time at) { return change(k, state, t, at); });
      });
  std::vector<kafka::HandleResult> results;
  results.reserve(applied.size());
  for (const absl::StatusOr<redis::ApplyResult>& a : applied) results.push_back(OutcomeOf(a));
  return results;
}

absl::StatusOr<std::vector<kafka::OutboundMessage>> NurturingHandler::HandleCaptured(
    const kafka::ConsumedMessage& message) {
  events::v1::LeadCaptured captured;
  if (absl::Status s = events::Decode(message, &captured); !s.ok()) return s;
  std::vector<kafka::OutboundMessage> outputs;
  if (captured.merged_lead_ids().empty()) return outputs;  // nothing for nurturing, no Redis call
  absl::StatusOr<events::InputIdentity> input =
      events::IdentifyInput(message, captured.envelope(), captured.lead().lead_id(), clock_.Now());
  if (!input.ok()) return input.status();
  for (const std::string& absorbed : captured.merged_lead_ids()) {
    absl::StatusOr<std::vector<kafka::OutboundMessage>> changes =
        ApplyMergedEvent(absorbed, input->lead_id, input->event_id);
    if (!changes.ok()) return changes.status();
    for (kafka::OutboundMessage& m : *changes) outputs.push_back(std::move(m));
  }
  return outputs;
}

absl::StatusOr<std::vector<kafka::OutboundMessage>> NurturingHandler::ApplyMergedEvent(
    const std::string& absorbed_id, const std::string& survivor_id, const std::string& event_id) {
  if (absorbed_id.empty() || absorbed_id == survivor_id) {
    return std::vector<kafka::OutboundMessage>{};
  }
  // Per absorbed lead, its own record and dedup key: a re-delivery re-produces the same exit.
  return ApplyEvent({absorbed_id, NurturingStore::ScoredKey(absorbed_id, event_id), event_id,
                     /*create_if_missing=*/false},
                    [&](NurtureLeadState& state, const CompiledNurtureTracks&, absl::Time now) {
                      return ApplyMerged(state, options_.policy, now);
                    });
}

absl::StatusOr<std::vector<kafka::OutboundMessage>> NurturingHandler::HandleErasure(
    const kafka::ConsumedMessage& message) {
  events::v1::LeadErasure erasure;
  if (absl::Status s = events::Decode(message, &erasure); !s.ok()) return s;
  const std::string& lead_id = erasure.envelope().lead_id();
  if (lead_id.empty()) return absl::InvalidArgumentError("erasure without envelope.lead_id");
  // An open enrolment is reported as exited. Read before the erase: a re-delivered erasure
  // finds nothing and reports nothing again (the event carries only ids, no personal data).
  absl::StatusOr<StoredState> stored = store_.Load(lead_id);
  if (!stored.ok()) return stored.status();
  std::vector<kafka::OutboundMessage> outputs;
  if (stored->version != 0) {
    NurtureLeadState after = stored->state;
    const absl::Time now = clock_.Now();
    if (ApplyExit(after, kExitErased, options_.policy, now)) {
      const std::string cause = !erasure.envelope().event_id().empty()
                                    ? erasure.envelope().event_id()
                                    : events::PositionId(message);
      outputs =
          EncodeEnrollmentChanges(EnrollmentChanges(stored->state, after, cause, now), options_);
    }
  }
  if (absl::Status s = store_.Erase(lead_id, options_.tombstone_ttl); !s.ok()) return s;
  spdlog::info("erased nurturing state of lead {} ({})", lead_id, erasure.reason());
  return outputs;
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
                 [this, channel](NurtureLeadState& state, absl::Time now) {
                   if (absl::Status s = ApplyUnsubscribe(state, channel, now); !s.ok()) return s;
                   ExitIfUnreachable(state, *tracks_(), options_.policy, now);
                   return absl::OkStatus();
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
  const std::string outbox_member = redis::OutboxMember(lead_id, request.dedup_key);
  auto planner = [&](const std::vector<redis::Versioned>& records) -> absl::StatusOr<redis::Plan> {
    absl::StatusOr<StoredState> stored = NurturingStore::ParseState(records);
    if (!stored.ok()) return stored.status();
    NurtureLeadState& state = stored->state;
    if (stored->version == 0 && !create_if_missing) {
      return absl::NotFoundError(absl::StrCat("nurturing knows no lead ", lead_id));
    }
    state.set_lead_id(lead_id);
    const NurtureLeadState before = state;
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
    std::vector<kafka::OutboundMessage> events =
        EncodeEnrollmentChanges(EnrollmentChanges(before, state, request_id, now), options_);
    // Its events are in the outbox until the caller saw them acknowledged (Acknowledged);
    // otherwise the scheduler re-sends them (scheduler.h, step 0).
    if (!events.empty()) {
      plan.extra_commands.push_back(
          redis::AddToOutboxCommand(NurturingStore::OutboxKey(), outbox_member, now));
    }
    plan.memo = kafka::EncodeMemo(events, reply.SerializeAsString());
    return plan;
  };
  absl::StatusOr<redis::ApplyResult> applied = store_.apply().Run(request, planner);
  if (!applied.ok()) return applied.status();
  if (applied->outcome == redis::ApplyOutcome::kErased) {
    return absl::NotFoundError(absl::StrCat("lead ", lead_id, " was erased"));
  }
  CommandOutcome outcome;
  std::string reply;
  if (absl::Status s = kafka::DecodeMemo(applied->memo, &outcome.events, &reply); !s.ok()) {
    return s;
  }
  if (!outcome.enrollment.ParseFromString(reply)) {
    return absl::DataLossError(absl::StrCat("corrupt command memo for lead ", lead_id));
  }
  outcome.duplicate = applied->outcome == redis::ApplyOutcome::kDuplicate;
  if (!outcome.events.empty()) outcome.outbox_member = outbox_member;
  return outcome;
}

absl::Status NurturingHandler::Acknowledged(const CommandOutcome& outcome) {
  if (outcome.outbox_member.empty()) return absl::OkStatus();
  return store_.outbox().Remove({outcome.outbox_member});
}

}  // namespace leadflow::nurturing
