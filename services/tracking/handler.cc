#include "services/tracking/handler.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/events/codec.h"
#include "common/events/envelope.h"
#include "common/kafka/memo.h"
#include "common/redis/keys.h"
#include "leadflow/events/v1/lead.pb.h"
#include "leadflow/internal/v1/tracking_state.pb.h"
#include "services/tracking/segment_json.h"
#include "spdlog/spdlog.h"

namespace leadflow::tracking {
namespace {

// An activities.inbound message: a Segment call as JSON (DecodeSegmentJson: the JSON mapping's
// result at a fraction of its cost) or as protobuf.
absl::Status DecodeInbound(const kafka::ConsumedMessage& message,
                           events::v1::InboundActivity* out) {
  absl::StatusOr<events::Encoding> encoding = events::PayloadEncoding(message);
  if (!encoding.ok()) return encoding.status();
  if (*encoding == events::Encoding::kJson) return DecodeSegmentJson(message.value, out);
  return events::Decode(message, out);
}

using events::v1::Activity;
using events::v1::LeadAggregates;
using internal::v1::PendingActivities;

std::string TraitEmail(const events::v1::InboundActivity& inbound) {
  auto it = inbound.traits().fields().find("email");
  if (it == inbound.traits().fields().end() || !it->second.has_string_value()) return "";
  return absl::AsciiStrToLower(it->second.string_value());
}

// Identities an activity can be attributed through, most specific first.
std::vector<std::string> IdentitiesOf(const events::v1::InboundActivity& inbound) {
  std::vector<std::string> ids;
  if (!inbound.user_id().empty()) ids.push_back("user:" + inbound.user_id());
  if (!inbound.anonymous_id().empty()) ids.push_back("anon:" + inbound.anonymous_id());
  if (std::string email = TraitEmail(inbound); !email.empty()) ids.push_back("email:" + email);
  return ids;
}

// Identities a captured lead is known by.
std::vector<std::string> IdentitiesOf(const events::v1::LeadProfile& lead) {
  std::vector<std::string> ids = {"user:" + lead.lead_id()};
  for (const std::string& ext : lead.external_ids()) ids.push_back("user:" + ext);
  if (!lead.email().empty()) {
    ids.push_back("user:" + lead.email());
    ids.push_back("email:" + absl::AsciiStrToLower(lead.email()));
  }
  for (const std::string& anon : lead.anonymous_ids()) ids.push_back("anon:" + anon);
  return ids;
}

absl::StatusOr<ActivityHistory> ParseHistory(const redis::Versioned& record) {
  return ActivityHistory::Parse(record.data.value_or(""));
}

// The parked activities of the pending records `state`, oldest first; each record is deleted
// by `plan`.
absl::StatusOr<std::vector<Activity>> TakeParked(const std::vector<redis::Versioned>& state,
                                                 redis::Plan* plan) {
  std::vector<Activity> parked;
  for (size_t i = 0; i < state.size(); ++i) {
    if (!state[i].data.has_value()) continue;
    PendingActivities pending;
    if (!pending.ParseFromString(*state[i].data)) {
      return absl::DataLossError("corrupt pending activities " + state[i].key);
    }
    for (Activity& a : *pending.mutable_activities()) parked.push_back(std::move(a));
    plan->writes.push_back({state[i].key, std::nullopt});
  }
  std::stable_sort(parked.begin(), parked.end(), [](const Activity& a, const Activity& b) {
    return events::FromProto(a.occurred_at()) < events::FromProto(b.occurred_at());
  });
  return parked;
}

}  // namespace

TrackingHandler::TrackingHandler(const ActivityNormalizer& normalizer, TrackingStore& store,
                                 const kafka::Topics& topics, const runtime::Clock& clock,
                                 TrackingOptions options)
    : normalizer_(normalizer), store_(store), topics_(topics), clock_(clock), options_(options) {}

kafka::OutboundMessage TrackingHandler::ActivityEvent(
    const std::string& lead_id, const Activity& activity, const LeadAggregates& aggregates,
    bool backfilled, const std::string& trace_id, absl::Time now,
    const std::vector<std::string>& merged) const {
  events::v1::LeadActivity event;
  *event.mutable_envelope() = events::MakeEnvelope({
      .event_id = events::DeriveEventId("activity", activity.message_id()),
      .lead_id = lead_id,
      .occurred_at = events::FromProtoOr(activity.occurred_at(), now),
      .produced_at = now,
      .causation_id = activity.message_id(),
      .trace_id = trace_id.empty() ? activity.message_id() : trace_id,
      .producer = kService,
  });
  *event.mutable_activity() = activity;
  *event.mutable_aggregates() = aggregates;
  event.set_backfilled(backfilled);
  for (const std::string& id : merged) event.add_merged_lead_ids(id);
  return events::Encode(topics_.Name(kafka::kLeadsActivity), lead_id, event);
}

redis::ApplyOnceRequest TrackingHandler::RequestFor(const std::optional<std::string>& lead_id,
                                                    const Activity& activity,
                                                    const events::v1::InboundActivity& inbound,
                                                    const std::vector<std::string>& identities,
                                                    std::string* parked_under) const {
  redis::ApplyOnceRequest request;
  request.dedup_key = TrackingStore::MessageKey(activity.message_id());
  request.dedup_ttl = options_.dedup_window;
  if (lead_id.has_value()) {
    request.state_keys = {TrackingStore::HistoryKey(*lead_id)};
    // An identify (or a known user seen with a new anonymous id) also claims whatever was
    // parked under this call's other identities.
    for (const std::string& id : identities) {
      request.state_keys.push_back(TrackingStore::PendingKey(id));
    }
    request.registry_key = redis::RegistryKey(kService, *lead_id);
    request.tombstone_key = redis::TombstoneKey(kService, *lead_id);
    return request;
  }
  // Unknown: park under the most specific identity until a lead claims it.
  *parked_under =
      !inbound.anonymous_id().empty() ? "anon:" + inbound.anonymous_id() : identities.front();
  request.state_keys = {TrackingStore::PendingKey(*parked_under)};
  // A userId may be a lead id ("user:<lead_id>" is one of a lead's identities). Erasure deleted
  // that link, so an erased lead's late activities (opens of mails already sent) end up here:
  // its tombstone must stop them being parked again under its id.
  if (!inbound.user_id().empty()) {
    request.tombstone_key = redis::TombstoneKey(kService, inbound.user_id());
  }
  return request;
}

absl::StatusOr<redis::Plan> TrackingHandler::PlanKnown(
    const std::string& lead_id, const Activity& activity,
    const std::vector<std::string>& identities, const std::string& message_id, absl::Time now,
    const std::vector<redis::Versioned>& state, std::optional<std::string>* merged_into) const {
  *merged_into = TrackingStore::MergedInto(state[0]);
  if (merged_into->has_value()) return absl::AbortedError("lead merged");
  absl::StatusOr<ActivityHistory> history = ParseHistory(state[0]);
  if (!history.ok()) return history.status();
  redis::Plan plan;
  absl::StatusOr<std::vector<kafka::OutboundMessage>> outputs =
      Backfill(lead_id, {state.begin() + 1, state.end()}, message_id, now, &*history, &plan);
  if (!outputs.ok()) return outputs.status();
  LeadAggregates aggregates;
  ApplyActivity(activity, now, &*history, &aggregates);
  plan.writes.push_back({state[0].key, history->Serialize()});
  const std::string timeline = TrackingStore::TimelineKey(lead_id);
  plan.extra_commands.push_back({"LPUSH", timeline, activity.SerializeAsString()});
  plan.extra_commands.push_back({"LTRIM", timeline, "0", absl::StrCat(kTimelineLength - 1)});
  plan.register_keys.push_back(timeline);
  // An identify (or a known user with a new anonymous id) links the other identities too.
  for (const std::string& id : identities) {
    plan.extra_commands.push_back({"SET", TrackingStore::IdentityKey(id), lead_id});
    plan.register_keys.push_back(TrackingStore::IdentityKey(id));
  }
  outputs->push_back(ActivityEvent(lead_id, activity, aggregates, false, "", now));
  plan.memo = kafka::EncodeMemo(*outputs);
  return plan;
}

absl::StatusOr<redis::Plan> TrackingHandler::PlanParked(
    const Activity& activity, const std::vector<redis::Versioned>& state) const {
  PendingActivities pending;
  if (state[0].data.has_value() && !pending.ParseFromString(*state[0].data)) {
    return absl::DataLossError("corrupt pending activities " + state[0].key);
  }
  *pending.add_activities() = activity;
  const int excess = pending.activities_size() - options_.anonymous_cap;
  if (excess > 0) {
    pending.mutable_activities()->DeleteSubrange(0, excess);
    pending.set_dropped(pending.dropped() + excess);
  }
  redis::Plan plan;
  plan.writes.push_back({state[0].key, pending.SerializeAsString(), options_.anonymous_ttl});
  plan.memo = kafka::EncodeMemo({});
  return plan;
}

absl::StatusOr<TrackOutcome> TrackingHandler::OutcomeOf(
    const absl::StatusOr<redis::ApplyResult>& applied, const std::string& message_id,
    const std::optional<std::string>& lead_id) const {
  if (!applied.ok()) return applied.status();
  TrackOutcome outcome;
  outcome.result.set_message_id(message_id);
  if (lead_id.has_value()) outcome.result.set_lead_id(*lead_id);
  switch (applied->outcome) {
    case redis::ApplyOutcome::kDuplicate:
      outcome.result.set_status("duplicate");
      break;
    case redis::ApplyOutcome::kErased:
      outcome.result.set_status("erased");
      return outcome;
    case redis::ApplyOutcome::kApplied:
      outcome.result.set_status(lead_id.has_value() ? "recorded" : "anonymous");
      break;
  }
  if (absl::Status s = kafka::DecodeMemo(applied->memo, &outcome.outputs); !s.ok()) return s;
  return outcome;
}

absl::StatusOr<TrackOutcome> TrackingHandler::Replay(const std::string& message_id) {
  redis::ApplyOnceRequest request;
  request.dedup_key = TrackingStore::MessageKey(message_id);
  request.dedup_ttl = options_.dedup_window;
  absl::StatusOr<std::optional<redis::ApplyResult>> recorded = store_.apply().Recorded(request);
  if (!recorded.ok()) return recorded.status();
  if (!recorded->has_value()) {
    return absl::NotFoundError(absl::StrCat("no activity recorded for message ", message_id));
  }
  return OutcomeOf(**recorded, message_id, std::nullopt);
}

absl::StatusOr<TrackOutcome> TrackingHandler::Track(const events::v1::InboundActivity& inbound,
                                                    absl::Time received_at) {
  absl::StatusOr<Activity> normalized = normalizer_.Normalize(inbound, received_at);
  if (!normalized.ok()) return normalized.status();
  const Activity& activity = *normalized;
  const std::vector<std::string> identities = IdentitiesOf(inbound);
  const absl::Time now = clock_.Now();

  absl::StatusOr<std::optional<std::string>> lead = store_.Resolve(identities);
  if (!lead.ok()) return lead.status();
  if (!lead->has_value()) {
    std::string parked_under;
    const redis::ApplyOnceRequest request =
        RequestFor(std::nullopt, activity, inbound, identities, &parked_under);
    return OutcomeOf(store_.apply().Run(request,
                                        [&](const std::vector<redis::Versioned>& state) {
                                          return PlanParked(activity, state);
                                        }),
                     activity.message_id(), std::nullopt);
  }
  // A lead merged into another keeps a redirect where its history was: follow it (an identity
  // that still names the old id, an activity resolved just before the merge).
  std::string lead_id = **lead;
  for (int hop = 0;; ++hop) {
    const redis::ApplyOnceRequest request =
        RequestFor(lead_id, activity, inbound, identities, nullptr);
    std::optional<std::string> merged_into;
    absl::StatusOr<redis::ApplyResult> applied =
        store_.apply().Run(request, [&](const std::vector<redis::Versioned>& state) {
          return PlanKnown(lead_id, activity, identities, inbound.message_id(), now, state,
                           &merged_into);
        });
    if (applied.ok() || !merged_into.has_value()) {
      return OutcomeOf(applied, activity.message_id(), lead_id);
    }
    if (hop >= TrackingStore::kMaxMergeHops) {
      return absl::DataLossError(absl::StrCat("lead ", **lead, ": merge chain too long"));
    }
    lead_id = *merged_into;
  }
}

std::vector<absl::StatusOr<TrackOutcome>> TrackingHandler::TrackBatch(
    const std::vector<const events::v1::InboundActivity*>& inbound,
    const std::vector<absl::Time>& received_at) {
  const size_t n = inbound.size();
  const absl::Time now = clock_.Now();
  std::vector<absl::StatusOr<TrackOutcome>> results(n, absl::UnknownError("not run"));
  std::vector<std::optional<Activity>> activities(n);
  std::vector<std::vector<std::string>> identities(n);
  std::vector<size_t> valid;
  for (size_t i = 0; i < n; ++i) {
    absl::StatusOr<Activity> normalized = normalizer_.Normalize(*inbound[i], received_at[i]);
    if (!normalized.ok()) {
      results[i] = normalized.status();
      continue;
    }
    activities[i] = *std::move(normalized);
    identities[i] = IdentitiesOf(*inbound[i]);
    valid.push_back(i);
  }
  std::vector<std::vector<std::string>> to_resolve;
  for (size_t i : valid) to_resolve.push_back(identities[i]);
  absl::StatusOr<std::vector<std::optional<std::string>>> leads = store_.ResolveMany(to_resolve);
  if (!leads.ok()) {
    for (size_t i : valid) results[i] = leads.status();
    return results;
  }
  std::vector<redis::ApplyOnceRequest> requests;
  requests.reserve(valid.size());
  for (size_t k = 0; k < valid.size(); ++k) {
    std::string parked_under;
    const size_t i = valid[k];
    requests.push_back(
        RequestFor((*leads)[k], *activities[i], *inbound[i], identities[i], &parked_under));
  }
  std::vector<std::optional<std::string>> merged_into(valid.size());
  std::vector<absl::StatusOr<redis::ApplyResult>> applied =
      store_.apply().RunBatch(requests, [&](size_t k, const std::vector<redis::Versioned>& state) {
        const size_t i = valid[k];
        if (!(*leads)[k].has_value()) return PlanParked(*activities[i], state);
        return PlanKnown(*(*leads)[k], *activities[i], identities[i], inbound[i]->message_id(), now,
                         state, &merged_into[k]);
      });
  for (size_t k = 0; k < valid.size(); ++k) {
    const size_t i = valid[k];
    // A lead merged meanwhile: follow the redirect alone, as Track() does.
    results[i] = !applied[k].ok() && merged_into[k].has_value()
                     ? Track(*inbound[i], received_at[i])
                     : OutcomeOf(applied[k], activities[i]->message_id(), (*leads)[k]);
  }
  return results;
}

absl::StatusOr<std::vector<kafka::OutboundMessage>> TrackingHandler::Backfill(
    const std::string& lead_id, const std::vector<redis::Versioned>& pending,
    const std::string& trace_id, absl::Time now, ActivityHistory* history,
    redis::Plan* plan) const {
  absl::StatusOr<std::vector<Activity>> parked = TakeParked(pending, plan);
  if (!parked.ok()) return parked.status();
  std::vector<kafka::OutboundMessage> outputs;
  if (parked->empty()) return outputs;
  const std::string timeline = TrackingStore::TimelineKey(lead_id);
  for (const Activity& a : *parked) {
    LeadAggregates aggregates;
    ApplyActivity(a, now, history, &aggregates);
    outputs.push_back(ActivityEvent(lead_id, a, aggregates, /*backfilled=*/true, trace_id, now));
    plan->extra_commands.push_back({"LPUSH", timeline, a.SerializeAsString()});
  }
  plan->extra_commands.push_back({"LTRIM", timeline, "0", absl::StrCat(kTimelineLength - 1)});
  plan->register_keys.push_back(timeline);
  return outputs;
}

absl::StatusOr<std::vector<kafka::OutboundMessage>> TrackingHandler::HandleInbound(
    const kafka::ConsumedMessage& message) {
  events::v1::InboundActivity inbound;
  if (absl::Status s = DecodeInbound(message, &inbound); !s.ok()) return s;
  const absl::Time received =
      message.timestamp == absl::InfinitePast() ? clock_.Now() : message.timestamp;
  absl::StatusOr<TrackOutcome> outcome = Track(inbound, received);
  if (!outcome.ok()) return outcome.status();
  return std::move(outcome->outputs);
}

std::vector<kafka::HandleResult> TrackingHandler::HandleInboundBatch(
    const std::vector<const kafka::ConsumedMessage*>& messages) {
  kafka::BatchSubset<kafka::HandleResult> subset(messages.size());
  std::vector<events::v1::InboundActivity> decoded(messages.size());
  std::vector<const events::v1::InboundActivity*> inbound;
  std::vector<absl::Time> received;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (absl::Status s = DecodeInbound(*messages[i], &decoded[i]); !s.ok()) {
      subset.Settle(i, s);
      continue;
    }
    inbound.push_back(&decoded[i]);
    received.push_back(messages[i]->timestamp == absl::InfinitePast() ? clock_.Now()
                                                                      : messages[i]->timestamp);
    subset.Keep(i);
  }
  return std::move(subset).Merge(TrackBatch(inbound, received),
                                 [](absl::StatusOr<TrackOutcome> outcome) -> kafka::HandleResult {
                                   if (!outcome.ok()) return outcome.status();
                                   return std::move(outcome->outputs);
                                 });
}

absl::StatusOr<std::vector<kafka::OutboundMessage>> TrackingHandler::HandleCaptured(
    const kafka::ConsumedMessage& message) {
  events::v1::LeadCaptured captured;
  if (absl::Status s = events::Decode(message, &captured); !s.ok()) return s;
  const std::string& lead_id = captured.envelope().lead_id();
  if (lead_id.empty()) return absl::InvalidArgumentError("captured event without lead_id");
  const std::vector<std::string> identities = IdentitiesOf(captured.lead());
  std::vector<std::string> absorbed;
  for (const std::string& id : captured.merged_lead_ids()) {
    if (!id.empty() && id != lead_id &&
        std::find(absorbed.begin(), absorbed.end(), id) == absorbed.end()) {
      absorbed.push_back(id);
    }
  }
  const absl::Time now = clock_.Now();

  // State: [0] the lead's history, [1, absorbed_at) the pending records of its identities,
  // [absorbed_at, end) the histories of the leads capture merged into it.
  redis::ApplyOnceRequest request;
  request.dedup_key = redis::AppliedKey(kService, lead_id, captured.envelope().event_id());
  request.dedup_ttl = options_.dedup_window;
  request.registry_key = redis::RegistryKey(kService, lead_id);
  request.tombstone_key = redis::TombstoneKey(kService, lead_id);
  request.state_keys = {TrackingStore::HistoryKey(lead_id)};
  for (const std::string& id : identities) {
    request.state_keys.push_back(TrackingStore::PendingKey(id));
  }
  const size_t absorbed_at = request.state_keys.size();
  for (const std::string& id : absorbed) {
    request.state_keys.push_back(TrackingStore::HistoryKey(id));
  }
  absl::StatusOr<redis::ApplyResult> applied = store_.apply().Run(
      request, [&](const std::vector<redis::Versioned>& state) -> absl::StatusOr<redis::Plan> {
        redis::Plan plan;
        if (TrackingStore::MergedInto(state[0]).has_value()) {
          // A late (re-delivered) event of a lead merged away since: its identities and
          // behaviour belong to the survivor now.
          plan.memo = kafka::EncodeMemo({});
          return plan;
        }
        absl::StatusOr<ActivityHistory> history = ParseHistory(state[0]);
        if (!history.ok()) return history.status();
        std::vector<std::string> merged;
        absl::StatusOr<bool> timeline_changed =
            MergeAbsorbed(lead_id, absorbed, {state.begin() + absorbed_at, state.end()}, now,
                          &*history, &merged, &plan);
        if (!timeline_changed.ok()) return timeline_changed.status();
        absl::StatusOr<std::vector<kafka::OutboundMessage>> outputs =
            Backfill(lead_id, {state.begin() + 1, state.begin() + absorbed_at},
                     captured.envelope().trace_id(), now, &*history, &plan);
        if (!outputs.ok()) return outputs.status();
        if (!outputs->empty() || *timeline_changed || !merged.empty()) {
          plan.writes.push_back({state[0].key, history->Serialize()});
        }
        for (const std::string& id : identities) {
          plan.extra_commands.push_back({"SET", TrackingStore::IdentityKey(id), lead_id});
          plan.register_keys.push_back(TrackingStore::IdentityKey(id));
        }
        if (!merged.empty()) {
          // One event for scoring: the survivor's aggregates now include the absorbed leads'.
          Activity activity;
          activity.set_message_id(absl::StrCat("merge:", captured.envelope().event_id()));
          activity.set_type(std::string(kLeadMergedActivity));
          *activity.mutable_occurred_at() =
              events::ToProto(events::FromProtoOr(captured.envelope().occurred_at(), now));
          outputs->push_back(ActivityEvent(lead_id, activity, history->Aggregates(now),
                                           /*backfilled=*/false, captured.envelope().trace_id(),
                                           now, merged));
        }
        plan.memo = kafka::EncodeMemo(*outputs);
        return plan;
      });
  if (!applied.ok()) return applied.status();
  std::vector<kafka::OutboundMessage> outputs;
  if (absl::Status s = kafka::DecodeMemo(applied->memo, &outputs); !s.ok()) return s;
  return outputs;
}

absl::StatusOr<bool> TrackingHandler::MergeAbsorbed(const std::string& lead_id,
                                                    const std::vector<std::string>& absorbed,
                                                    const std::vector<redis::Versioned>& records,
                                                    absl::Time now, ActivityHistory* history,
                                                    std::vector<std::string>* merged,
                                                    redis::Plan* plan) {
  std::vector<std::vector<Activity>> timelines;
  for (size_t j = 0; j < absorbed.size(); ++j) {
    const std::string& id = absorbed[j];
    const redis::Versioned& record = records[j];
    if (TrackingStore::MergedInto(record).has_value()) continue;  // merged before
    // The absorbed id redirects here from now on; everything it registered is the survivor's.
    plan->writes.push_back({record.key, TrackingStore::MergedHistory(lead_id)});
    const std::string user = TrackingStore::IdentityKey("user:" + id);
    plan->extra_commands.push_back({"SET", user, lead_id});
    plan->register_keys.push_back(user);
    for (redis::Args& c : redis::AdoptRegistryCommands(redis::RegistryKey(kService, lead_id),
                                                       redis::RegistryKey(kService, id))) {
      plan->extra_commands.push_back(std::move(c));
    }
    merged->push_back(id);
    if (!record.data.has_value()) continue;  // no behaviour recorded under it
    absl::StatusOr<ActivityHistory> theirs = ParseHistory(record);
    if (!theirs.ok()) return theirs.status();
    history->MergeFrom(*theirs, now);
    // Timelines are lists, not versioned records. Reading them here is still consistent: every
    // write to a lead's timeline writes its history record in the same apply, and the history
    // records of both leads are version-checked state of this apply, so a timeline changed
    // after this read fails the apply and this planner runs again.
    absl::StatusOr<std::vector<Activity>> timeline = store_.Timeline(id, 0, kTimelineLength);
    if (!timeline.ok()) return timeline.status();
    timelines.push_back(*std::move(timeline));
    plan->extra_commands.push_back({"DEL", TrackingStore::TimelineKey(id)});
  }
  if (timelines.empty()) return false;
  absl::StatusOr<std::vector<Activity>> ours = store_.Timeline(lead_id, 0, kTimelineLength);
  if (!ours.ok()) return ours.status();
  timelines.insert(timelines.begin(), *std::move(ours));
  const std::vector<Activity> combined = MergeTimelines(timelines, kTimelineLength);
  const std::string key = TrackingStore::TimelineKey(lead_id);
  plan->extra_commands.push_back({"DEL", key});
  if (!combined.empty()) {
    redis::Args push = {"RPUSH", key};  // newest first, as LPUSH keeps it
    for (const Activity& a : combined) push.push_back(a.SerializeAsString());
    plan->extra_commands.push_back(std::move(push));
    plan->register_keys.push_back(key);
  }
  return true;
}

absl::StatusOr<std::vector<kafka::OutboundMessage>> TrackingHandler::HandleErasure(
    const kafka::ConsumedMessage& message) {
  events::v1::LeadErasure erasure;
  if (absl::Status s = events::Decode(message, &erasure); !s.ok()) return s;
  if (erasure.envelope().lead_id().empty()) {
    return absl::InvalidArgumentError("erasure without envelope.lead_id");
  }
  if (absl::Status s = store_.Erase(erasure.envelope().lead_id(), options_.tombstone_ttl);
      !s.ok()) {
    return s;
  }
  return std::vector<kafka::OutboundMessage>{};
}

}  // namespace leadflow::tracking
