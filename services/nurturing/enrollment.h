#pragma once

// The per-lead state machine of nurturing, over internal::v1::NurtureLeadState: what a scored
// event, a due timer, a delivery report and an operator command do to one lead's record, and
// when the scheduler must look at the lead next. The engine (engine.h) decides about one step;
// this file keeps the enrolment around those decisions.
//
// Contract:
// - Pure: values in, new values out, `now` passed in. The apply-once planners that call these
//   functions may run more than once, and a replayed input must give the same result.
// - Lifecycle of an enrolment: a scored event enrols a lead that is not in a track (nor in its
//   re-enrolment cooldown, nor leaving nurturing) into ChooseTrack's track → ACTIVE. Each due
//   step is sent, deferred or skipped; after the last step → COMPLETED (never re-entered). A
//   scored event for which ShouldExit holds → EXITED. Pause/Resume toggle PAUSED. An ended
//   enrolment starts the cooldown; a scored event arriving in it is reconsidered when it ends.
// - A decided touch is "in flight" (state.in_flight_touch_id) until its delivery is confirmed;
//   while it is, the lead waits in the in-flight set and WakeUpAt() is nullopt, so exactly one
//   of {delivery report, lease expiry} moves it on.
//
// Thread safety: free functions over values; safe from any thread.

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "leadflow/config/v1/nurture_tracks.pb.h"
#include "leadflow/events/v1/activity.pb.h"
#include "leadflow/events/v1/nurture.pb.h"
#include "leadflow/events/v1/routing.pb.h"
#include "leadflow/events/v1/scoring.pb.h"
#include "leadflow/internal/v1/nurturing_state.pb.h"
#include "leadflow/nurturing/v1/nurturing.pb.h"
#include "services/nurturing/engine.h"

namespace leadflow::nurturing {

inline constexpr char kService[] = "nurturing";

// Service-wide rules that are not part of the track file.
struct NurturingPolicy {
  // Quiet hours, frequency cap and default time zone.
  DeliveryPolicy delivery;
  // No new enrolment this long after one ended (completed or exited).
  absl::Duration reenroll_cooldown = absl::Hours(7 * 24);
  // Past enrolments kept per lead (for GetEnrollments); older ones are dropped.
  int max_past_enrollments = 10;
  // Touch times kept per lead (only those inside the cap window are kept at all).
  int max_recent_touches = 50;
};

// The policy a track file's `delivery` section asks for, defaults filled in. INVALID_ARGUMENT
// naming the field for a malformed time, a negative window or an unknown time zone.
absl::StatusOr<NurturingPolicy> PolicyFromConfig(const config::v1::Delivery& delivery);

// "active", "paused", "exited", "completed"; "" when unset.
absl::string_view EnrollmentStateName(internal::v1::NurtureEnrollmentState state);

// When the scheduler must next look at the lead; nullopt when only an event, a command or a
// delivery report can move it (no active enrolment and nothing to reconsider, paused, or a
// touch in flight).
std::optional<absl::Time> WakeUpAt(const internal::v1::NurtureLeadState& state);
// WakeUpAt() of `state` once its in-flight touch is delivered (ApplyDelivered), without a copy.
std::optional<absl::Time> WakeUpAtOnceDelivered(const internal::v1::NurtureLeadState& state);

// A `leads.scored` event for `lead_id`: refreshes the profile and score snapshots (consent
// changes apply to future touches), then exits the open enrolment if ShouldExit holds, its
// track's goal is reached ("goal_reached") or the profile no longer consents to any of the
// remaining steps' channels ("consent_withdrawn"); or, when the lead is not in a track, enrols
// it in ChooseTrack's
// choice (step 0 due at now + its delay).
void ApplyScored(internal::v1::NurtureLeadState& state, const std::string& lead_id,
                 const events::v1::LeadScored& event, const CompiledNurtureTracks& tracks,
                 const NurturingPolicy& policy, absl::Time now);

// A `leads.outcomes` event. WON: the lead converted — the open enrolment exits ("converted")
// and no new one starts. LOST: sales gave the lead back — an open enrolment exits ("lost") and
// the lead is recycled: enrolled at once in ChooseTrack's choice with stage lost; a track marked
// recycle_lost ignores the re-enrolment cooldown and carries the lost reason. Other kinds change
// nothing (scoring reports their stage). Returns whether the state changed.
bool ApplyOutcome(internal::v1::NurtureLeadState& state, const std::string& lead_id,
                  const events::v1::LeadOutcome& outcome, const CompiledNurtureTracks& tracks,
                  const NurturingPolicy& policy, absl::Time now);

// Ends the open (active or paused) enrolment as exited with `reason`; false when there is none.
bool ApplyExit(internal::v1::NurtureLeadState& state, absl::string_view reason,
               const NurturingPolicy& policy, absl::Time now);

// Capture merged this lead into another (`leads.captured` of the survivor names it in
// merged_lead_ids): the open enrolment exits ("merged") and the lead is never enrolled again
// (cooldown_until at the end of time, no pending reconsideration or recycle), so one person is
// not nurtured twice — late scored events of the old id cannot re-enrol it. Returns whether the
// state changed (false when it had already been merged).
bool ApplyMerged(internal::v1::NurtureLeadState& state, const NurturingPolicy& policy,
                 absl::Time now);

// A `leads.routed` event: sales has the lead, the open enrolment exits ("routed"). Returns
// whether the state changed.
bool ApplyRouted(internal::v1::NurtureLeadState& state, const NurturingPolicy& policy,
                 absl::Time now);

// Whether a `leads.activity` event can matter to nurturing (engagement with a touch, a bounce,
// an unsubscribe); the handler skips the others without touching Redis.
bool IsNurtureActivity(const events::v1::Activity& activity);

// A `leads.activity` event: an open or click carrying the touch id of the enrolment's last touch
// is recorded for branch conditions; a hard bounce ("email_bounce" with properties.bounce_type
// "hard", or "email_hard_bounce") withdraws e-mail consent and exits ("hard_bounce"); an
// unsubscribe ("email_unsubscribe", "unsubscribe") withdraws e-mail consent and exits the
// enrolment if no remaining step can reach the lead. Returns whether the state changed.
bool ApplyActivity(internal::v1::NurtureLeadState& state, const events::v1::Activity& activity,
                   const CompiledNurtureTracks& tracks, const NurturingPolicy& policy,
                   absl::Time now);

// Exits the open enrolment with `reason` when the lead consents to none of the channels of its
// track's remaining steps. Returns whether it did.
bool ExitIfUnreachable(internal::v1::NurtureLeadState& state, const CompiledNurtureTracks& tracks,
                       const NurturingPolicy& policy, absl::Time now,
                       absl::string_view reason = kExitUnsubscribed);

// The enrolment events (`nurture.enrollments`) that the change from `before` to `after` makes:
// enrolled, exited (with reason), exhausted (track finished), paused, resumed. Event ids are
// derived from the enrolment ("<lead>:<track>:<attempt>:<kind>", pause and resume add the pause
// time), so re-planning the same change gives the same ids. Envelopes: occurred_at = produced_at
// = now, causation_id = `cause_id`.
std::vector<events::v1::NurtureEnrollmentChanged> EnrollmentChanges(
    const internal::v1::NurtureLeadState& before, const internal::v1::NurtureLeadState& after,
    const std::string& cause_id, absl::Time now);
// The same, from the enrolment `before` had (nullptr: none), for a caller that moved `before`
// on (the scheduler decides on the state itself, not a copy).
std::vector<events::v1::NurtureEnrollmentChanged> EnrollmentChanges(
    const internal::v1::NurtureEnrollment* before_current,
    const internal::v1::NurtureLeadState& after, const std::string& cause_id, absl::Time now);

// What the scheduler does with a lead it claimed.
struct DueDecision {
  enum class Kind {
    // The in-flight touch `touch_id` was never confirmed: send it again (from its memo).
    kResend,
    // Send `touch` now; `state` has advanced past its step and marks it in flight.
    kSend,
    // No touch now; write `state` (deferred, skipped, completed, exited, enrolled, or unchanged).
    kUpdate,
  };
  Kind kind = Kind::kUpdate;
  internal::v1::NurtureLeadState state;
  // kSend and kResend.
  std::string touch_id;
  // kSend: envelope complete (event_id = touch_id, produced_at = now).
  events::v1::NurtureTouch touch;
};

// Plans the lead's due work at `now`: re-send an unconfirmed touch; else reconsider a deferred
// enrolment; else plan the current step. Due steps the lead cannot receive are skipped at once
// (the result is a send, a deferral or the end of the track); a step not yet due is only judged
// when it is, so a consent given meanwhile counts.
// `state` is taken by value: a caller done with it moves it in, and the decision's state is it.
DueDecision DecideDue(internal::v1::NurtureLeadState state, const CompiledNurtureTracks& tracks,
                      const NurturingPolicy& policy, absl::Time now);

// The broker acknowledged `touch_id`: clears the in-flight mark if it names that touch. Returns
// false (and changes nothing) otherwise.
bool ApplyDelivered(internal::v1::NurtureLeadState& state, absl::string_view touch_id);

// Operator commands. Pause: ACTIVE → PAUSED (PAUSED stays). Resume: PAUSED → ACTIVE with the
// remaining schedule shifted by the time spent paused (ACTIVE stays). FAILED_PRECONDITION when
// the lead has no enrolment in a state that allows it.
absl::Status ApplyPause(internal::v1::NurtureLeadState& state, absl::Time now);
absl::Status ApplyResume(internal::v1::NurtureLeadState& state, absl::Time now);
// Records a withdrawn consent for `channel` at `now`; steps on that channel are skipped from
// now on (unless the profile later carries a newer opt-in). INVALID_ARGUMENT without a channel.
absl::Status ApplyUnsubscribe(internal::v1::NurtureLeadState& state, events::v1::Channel channel,
                              absl::Time now);

// The profile the planner sees: the snapshot plus nurturing's own consent withdrawals.
events::v1::LeadProfile EffectiveProfile(const internal::v1::NurtureLeadState& state);

// API views: one enrolment, and all of a lead's (current first, then past, newest first).
v1::Enrollment ToApiEnrollment(const std::string& lead_id,
                               const internal::v1::NurtureEnrollment& enrollment);
std::vector<v1::Enrollment> ApiEnrollments(const internal::v1::NurtureLeadState& state);

}  // namespace leadflow::nurturing
