#pragma once

// NurturingHandler: `leads.scored`, `leads.outcomes`, `leads.routed`, `leads.activity`,
// `leads.captured` (merges only) and `leads.erasure` → the lead's nurturing record, and the
// operator commands of the gRPC API, each one atomic apply-once over the record (store.h):
//
//   scored event   → ApplyScored (enrollment.h): snapshots refreshed; exit, or enrol
//   outcome        → ApplyOutcome: won exits (converted); lost recycles into a re-engagement track
//   routed         → ApplyRouted: sales has the lead, it exits (routed)
//   activity       → ApplyActivity: opens/clicks of the last touch (branches), hard bounce and
//                    unsubscribe exits; other activity is skipped without a Redis call
//   captured       → only with merged_lead_ids: each absorbed lead's open enrolment exits
//                    ("merged") and it is never enrolled again (ApplyMerged)
//   erasure        → every key of the lead deleted, tombstone left, lead out of the schedule;
//                    an open enrolment is reported exited (erased)
//   Pause/Resume/Unsubscribe → the command (dedup: the client's request id; memo: the reply and
//                    the enrolment events, which the gRPC service publishes)
//
// Every change of an enrolment (enrolled, exited, exhausted, paused, resumed) is published on
// `nurture.enrollments` (enrollment.h EnrollmentChanges). The events are the apply's memo, so a
// re-delivered input re-produces the same events with the same ids.
//
// Each apply also puts the lead where its new state says in `nurturing:schedule`, in the same
// atomic step; the scheduler (scheduler.h) does the rest.
//
// `leads.scored` and `leads.activity` also have batch routes (HandleScoredBatch,
// HandleActivityBatch) for one wave of a poll's batch (kafka::HandleInKeyWaves: distinct leads):
// the wave's applies share round trips (ApplyOnce::RunBatch), each still its own atomic,
// version-checked apply over the lead's one record, and each result is what the single route
// gives (same events, same ids, the memo on a re-delivery). Both paths share the request, the
// plan and the outcome code (EventInput, PlanEvent, OutcomeOf).
//
// Thread safety: all methods may be called concurrently (consumer loop and gRPC threads);
// concurrent changes of one lead resolve through the record's version check.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "common/events/codec.h"
#include "common/kafka/handler.h"
#include "common/kafka/message.h"
#include "common/runtime/clock.h"
#include "leadflow/nurturing/v1/nurturing.pb.h"
#include "services/nurturing/engine.h"
#include "services/nurturing/enrollment.h"
#include "services/nurturing/store.h"

namespace leadflow::nurturing {

// The track rules in force (a Reloadable's Current() in the service, a fixed set in tests).
using TracksSource = std::function<std::shared_ptr<const CompiledNurtureTracks>()>;

struct NurturingOptions {
  NurturingPolicy policy;
  // How long applied scored events, commands and touch decisions are remembered.
  absl::Duration dedup_ttl = absl::Hours(24 * 7);
  // How long the records of scheduler decisions that sent nothing are kept (they only guard
  // one version of the record, see store.h).
  absl::Duration decision_ttl = absl::Hours(24);
  absl::Duration tombstone_ttl = absl::Hours(24 * 30);
  // Where enrolment events go (the resolved name of `nurture.enrollments`) and how encoded.
  std::string enrollments_topic = "nurture.enrollments";
  events::Encoding enrollments_encoding = events::Encoding::kProtobuf;
};

// The `nurture.enrollments` messages of `changes` (key = lead id).
std::vector<kafka::OutboundMessage> EncodeEnrollmentChanges(
    const std::vector<events::v1::NurtureEnrollmentChanged>& changes,
    const NurturingOptions& options);

struct CommandOutcome {
  // The lead's current enrolment after the command (only lead_id when it has none).
  v1::Enrollment enrollment;
  // The enrolment events the command caused (the same on a duplicate), for the caller to
  // publish before it replies.
  std::vector<kafka::OutboundMessage> events;
  // True when the request id had been applied before: nothing changed, the first reply is
  // returned.
  bool duplicate = false;
  // The command's entry in nurturing's outbox while `events` are unacknowledged (empty without
  // events): NurturingHandler::Acknowledged removes it.
  std::string outbox_member;
};

class NurturingHandler {
 public:
  NurturingHandler(NurturingStore& store, TracksSource tracks, const runtime::Clock& clock,
                   NurturingOptions options = {});

  // Consumer-loop routes. Poison input (undecodable, no lead id) is INVALID_ARGUMENT.
  absl::StatusOr<std::vector<kafka::OutboundMessage>> HandleScored(
      const kafka::ConsumedMessage& message);
  // HandleScored() for the inputs of one wave (kafka::HandleInKeyWaves), through
  // ApplyScoredEvents(): result i is what HandleScored(*messages[i]) gives.
  std::vector<kafka::HandleResult> HandleScoredBatch(
      const std::vector<const kafka::ConsumedMessage*>& messages);
  absl::StatusOr<std::vector<kafka::OutboundMessage>> HandleOutcome(
      const kafka::ConsumedMessage& message);
  absl::StatusOr<std::vector<kafka::OutboundMessage>> HandleRouted(
      const kafka::ConsumedMessage& message);
  absl::StatusOr<std::vector<kafka::OutboundMessage>> HandleActivity(
      const kafka::ConsumedMessage& message);
  // HandleActivity() for the inputs of one wave (kafka::HandleInKeyWaves): the activities that
  // matter to nurturing share one ApplyOnce::RunBatch. Result i is HandleActivity(*messages[i]).
  std::vector<kafka::HandleResult> HandleActivityBatch(
      const std::vector<const kafka::ConsumedMessage*>& messages);
  absl::StatusOr<std::vector<kafka::OutboundMessage>> HandleErasure(
      const kafka::ConsumedMessage& message);
  // `leads.captured`: only events with merged_lead_ids matter (others return at once, without
  // Redis): each absorbed lead's enrolment ends (ApplyMerged).
  absl::StatusOr<std::vector<kafka::OutboundMessage>> HandleCaptured(
      const kafka::ConsumedMessage& message);

  // Applies one scored event (`event_id` is its idempotency key); returns the enrolment events.
  absl::StatusOr<std::vector<kafka::OutboundMessage>> ApplyScoredEvent(
      const events::v1::LeadScored& event, const std::string& event_id);
  // ApplyScoredEvent() for many events at once, sharing round trips (ApplyOnce::RunBatch):
  // result i is what ApplyScoredEvent(*events[i], event_ids[i]) gives. Events of one lead
  // should be in different calls (in order): within a call, the later one is re-planned alone
  // after the earlier one applied.
  std::vector<kafka::HandleResult> ApplyScoredEvents(
      const std::vector<const events::v1::LeadScored*>& events,
      const std::vector<std::string>& event_ids);
  // Applies one outcome / routed / activity event of `lead_id` (`event_id`: idempotency key).
  absl::StatusOr<std::vector<kafka::OutboundMessage>> ApplyOutcomeEvent(
      const std::string& lead_id, const events::v1::LeadOutcome& outcome,
      const std::string& event_id);
  absl::StatusOr<std::vector<kafka::OutboundMessage>> ApplyRoutedEvent(const std::string& lead_id,
                                                                       const std::string& event_id);
  absl::StatusOr<std::vector<kafka::OutboundMessage>> ApplyActivityEvent(
      const std::string& lead_id, const events::v1::Activity& activity,
      const std::string& event_id);
  // Capture merged `absorbed_id` into `survivor_id` (`event_id`: the LeadCaptured event's).
  absl::StatusOr<std::vector<kafka::OutboundMessage>> ApplyMergedEvent(
      const std::string& absorbed_id, const std::string& survivor_id, const std::string& event_id);

  // Operator commands, idempotent per request id. A command with enrolment events records
  // itself in nurturing's outbox in the same apply; the caller publishes the events and, once
  // they are acknowledged, calls Acknowledged(); until then the scheduler re-sends them after
  // its outbox grace (so a caller that gives up loses nothing). NOT_FOUND for a lead nurturing
  // never saw (Pause, Resume); FAILED_PRECONDITION when the enrolment's state does not allow it;
  // INVALID_ARGUMENT for a missing lead id, request id or channel.
  absl::StatusOr<CommandOutcome> Pause(const std::string& lead_id, const std::string& request_id);
  // Takes the command's events out of the outbox (best effort: a left-over entry only means the
  // scheduler re-sends them once more).
  absl::Status Acknowledged(const CommandOutcome& outcome);
  absl::StatusOr<CommandOutcome> Resume(const std::string& lead_id, const std::string& request_id);
  // Works for leads nurturing has not seen yet: the withdrawal then waits for them.
  absl::StatusOr<CommandOutcome> Unsubscribe(const std::string& lead_id,
                                             events::v1::Channel channel,
                                             const std::string& request_id);

  // The lead's record (version 0 when there is none).
  absl::StatusOr<StoredState> Load(const std::string& lead_id) { return store_.Load(lead_id); }

  const NurturingOptions& options() const { return options_; }

 private:
  using Change =
      absl::FunctionRef<absl::Status(internal::v1::NurtureLeadState& state, absl::Time now)>;
  absl::StatusOr<CommandOutcome> Command(const std::string& lead_id, const std::string& request_id,
                                         bool create_if_missing, Change change);
  // One input event's change of a lead's record; `change` returns whether it changed anything
  // (nothing is written otherwise). A lead without a record is only created when
  // `create_if_missing`. The single path (ApplyEvent, Run) and the batch path (ApplyEvents,
  // RunBatch) share the request, the plan (PlanEvent) and the outcome (OutcomeOf).
  struct EventInput {
    std::string lead_id;
    std::string dedup_key;  // the event's apply-once record
    std::string cause_id;   // the cause of the enrolment events
    bool create_if_missing = false;
  };
  using EventChange = absl::FunctionRef<bool(internal::v1::NurtureLeadState& state,
                                             const CompiledNurtureTracks& tracks, absl::Time now)>;
  // Returns the enrolment events (from the memo on a duplicate).
  absl::StatusOr<std::vector<kafka::OutboundMessage>> ApplyEvent(const EventInput& input,
                                                                 EventChange change);
  // ApplyEvent() for many inputs (different leads) over one RunBatch; `change(i, ...)` is input
  // i's change. Result i is what ApplyEvent(inputs[i], change i) gives.
  using IndexedEventChange =
      absl::FunctionRef<bool(size_t i, internal::v1::NurtureLeadState& state,
                             const CompiledNurtureTracks& tracks, absl::Time now)>;
  std::vector<kafka::HandleResult> ApplyEvents(const std::vector<EventInput>& inputs,
                                               IndexedEventChange change);
  // The plan of `input`'s change over its record `records[0]`: the record, its place in the
  // schedule, and the enrolment events as memo. An empty plan when nothing changes.
  absl::StatusOr<redis::Plan> PlanEvent(const EventInput& input,
                                        const CompiledNurtureTracks& tracks, absl::Time now,
                                        const std::vector<redis::Versioned>& records,
                                        EventChange change) const;
  // The enrolment events of an apply's outcome.
  static kafka::HandleResult OutcomeOf(const absl::StatusOr<redis::ApplyResult>& applied);

  // The pieces of the scored and activity routes shared by their single and batch paths.
  static std::string ScoredEventId(const kafka::ConsumedMessage& message,
                                   const events::v1::LeadScored& event);
  static absl::StatusOr<EventInput> ScoredInput(const events::v1::LeadScored& event,
                                                const std::string& event_id);
  bool ChangeScored(const events::v1::LeadScored& event, const std::string& lead_id,
                    internal::v1::NurtureLeadState& state, const CompiledNurtureTracks& tracks,
                    absl::Time now) const;
  static absl::StatusOr<EventInput> ActivityInput(const std::string& lead_id,
                                                  const std::string& event_id);
  bool ChangeActivity(const events::v1::Activity& activity, internal::v1::NurtureLeadState& state,
                      const CompiledNurtureTracks& tracks, absl::Time now) const;

  NurturingStore& store_;
  const TracksSource tracks_;
  const runtime::Clock& clock_;
  const NurturingOptions options_;
};

}  // namespace leadflow::nurturing
