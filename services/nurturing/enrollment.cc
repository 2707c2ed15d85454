#include "services/nurturing/enrollment.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/events/envelope.h"
#include "common/rules/time_util.h"

namespace leadflow::nurturing {

absl::StatusOr<NurturingPolicy> PolicyFromConfig(const config::v1::Delivery& delivery) {
  NurturingPolicy policy;
  auto minutes = [](const std::string& hh_mm, const char* field,
                    int fallback) -> absl::StatusOr<int> {
    if (hh_mm.empty()) return fallback;
    std::optional<int> m = rules::ParseClockMinutes(hh_mm);
    if (!m.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("nurture.delivery.", field, ": '", hh_mm, "' is not HH:MM"));
    }
    return *m;
  };
  absl::StatusOr<int> start = minutes(delivery.quiet_hours_start(), "quiet_hours_start",
                                      policy.delivery.quiet_start_minute);
  if (!start.ok()) return start.status();
  absl::StatusOr<int> end =
      minutes(delivery.quiet_hours_end(), "quiet_hours_end", policy.delivery.quiet_end_minute);
  if (!end.ok()) return end.status();
  policy.delivery.quiet_start_minute = *start;
  policy.delivery.quiet_end_minute = *end;
  if (delivery.max_touches() < 0) {
    policy.delivery.max_touches = 0;  // disabled
  } else if (delivery.max_touches() > 0) {
    policy.delivery.max_touches = delivery.max_touches();
  }
  if (delivery.cap_window_days() < 0 || delivery.reenroll_cooldown_hours() < 0) {
    return absl::InvalidArgumentError(
        "nurture.delivery: cap_window_days and reenroll_cooldown_hours must not be negative");
  }
  if (delivery.cap_window_days() > 0) {
    policy.delivery.cap_window = absl::Hours(24 * delivery.cap_window_days());
  }
  if (delivery.reenroll_cooldown_hours() > 0) {
    policy.reenroll_cooldown = absl::Hours(delivery.reenroll_cooldown_hours());
  }
  if (!delivery.default_time_zone().empty()) {
    absl::TimeZone zone;
    if (!absl::LoadTimeZone(delivery.default_time_zone(), &zone)) {
      return absl::InvalidArgumentError(absl::StrCat("nurture.delivery.default_time_zone: '",
                                                     delivery.default_time_zone(),
                                                     "' is not a known time zone"));
    }
    policy.delivery.default_time_zone = delivery.default_time_zone();
  }
  return policy;
}

namespace {

using internal::v1::NurtureEnrollment;
using internal::v1::NurtureLeadState;

constexpr char kTrackRemoved[] = "track_removed";
constexpr char kUnsubscribeSource[] = "nurturing:unsubscribe";

absl::Time TimeOf(const google::protobuf::Timestamp& ts) { return rules::ToTime(ts); }
google::protobuf::Timestamp Stamp(absl::Time t) { return rules::ToTimestamp(t); }

bool IsOpen(const NurtureLeadState& state) {
  return state.has_current() &&
         (state.current().state() == internal::v1::NURTURE_ENROLLMENT_ACTIVE ||
          state.current().state() == internal::v1::NURTURE_ENROLLMENT_PAUSED);
}

// When step `enrollment.next_step()` falls due; the base time itself once the track is done.
absl::Time NextDue(const NurtureEnrollment& enrollment, const config::v1::Track& track) {
  const absl::Time base = TimeOf(enrollment.step_base_at());
  if (enrollment.next_step() >= track.steps_size()) return base;
  return base + absl::Hours(track.steps(enrollment.next_step()).delay_hours());
}

// Moves past the current step, whose due time was `due_at`.
void Advance(NurtureEnrollment& enrollment, const config::v1::Track& track, absl::Time due_at) {
  enrollment.set_next_step(enrollment.next_step() + 1);
  *enrollment.mutable_step_base_at() = Stamp(due_at);
  *enrollment.mutable_next_due_at() = Stamp(NextDue(enrollment, track));
}

void End(NurtureLeadState& state, internal::v1::NurtureEnrollmentState how,
         absl::string_view reason, const NurturingPolicy& policy, absl::Time now) {
  NurtureEnrollment& current = *state.mutable_current();
  current.set_state(how);
  current.set_exit_reason(std::string(reason));
  current.clear_paused_at();
  *current.mutable_ended_at() = Stamp(now);
  *state.mutable_cooldown_until() = Stamp(now + policy.reenroll_cooldown);
  if (how == internal::v1::NURTURE_ENROLLMENT_COMPLETED) {
    const auto& done = state.completed_tracks();
    if (std::find(done.begin(), done.end(), current.track_id()) == done.end()) {
      state.add_completed_tracks(current.track_id());
    }
  }
}

void Enroll(NurtureLeadState& state, const config::v1::Track& track, const std::string& version,
            const NurturingPolicy& policy, absl::Time now, const std::string& cause_event_id,
            const std::string& trace_id, const std::string& recycle_reason) {
  if (state.has_current()) {
    // Newest first, bounded.
    auto& past = *state.mutable_past();
    *past.Add() = std::move(*state.mutable_current());
    for (int i = past.size() - 1; i > 0; --i) past.SwapElements(i, i - 1);
    while (past.size() > policy.max_past_enrollments) past.RemoveLast();
  }
  int32_t& count = (*state.mutable_enrollments_per_track())[track.id()];
  ++count;
  NurtureEnrollment& e = *state.mutable_current();
  e.Clear();
  e.set_track_id(track.id());
  e.set_track_version(version);
  e.set_state(internal::v1::NURTURE_ENROLLMENT_ACTIVE);
  e.set_next_step(0);
  *e.mutable_step_base_at() = Stamp(now);
  *e.mutable_enrolled_at() = Stamp(now);
  *e.mutable_next_due_at() = Stamp(NextDue(e, track));
  e.set_attempt(count);
  e.set_cause_event_id(cause_event_id);
  e.set_trace_id(trace_id);
  e.set_recycle_reason(recycle_reason);
  state.clear_reconsider_at();
}

// When the lead last finished every step of `track_id` (the newest such enrolment kept), or
// nullopt when that is no longer in its bounded history.
std::optional<absl::Time> LastCompletion(const NurtureLeadState& state,
                                         absl::string_view track_id) {
  auto finished = [track_id](const NurtureEnrollment& e) {
    return e.track_id() == track_id && e.state() == internal::v1::NURTURE_ENROLLMENT_COMPLETED &&
           e.has_ended_at();
  };
  if (state.has_current() && finished(state.current())) return TimeOf(state.current().ended_at());
  for (const NurtureEnrollment& e : state.past()) {
    if (finished(e)) return TimeOf(e.ended_at());
  }
  return std::nullopt;
}

// The track of higher priority than `current_track_id` that the lead should be in now, if any
// (and it has not exhausted that track, or may enter it again by the track's policy). The lead
// moves there at once, past the cooldown: it progressed (reached its track's goal, or now
// matches a track of higher priority), which is no over-messaging.
const config::v1::Track* BetterTrack(const NurtureLeadState& state,
                                     const CompiledNurtureTracks& tracks,
                                     absl::string_view current_track_id, absl::Time now) {
  const config::v1::Track* current = tracks.FindTrack(current_track_id);
  if (current == nullptr) return nullptr;  // removed by a reload: the scheduler ends it
  const std::optional<std::string> choice =
      ChooseTrack(tracks, EffectiveProfile(state), state.score());
  if (!choice.has_value() || *choice == current_track_id) return nullptr;
  const config::v1::Track* better = tracks.FindTrack(*choice);
  if (better == nullptr || better->priority() <= current->priority()) return nullptr;
  // Re-engagement tracks take recycled leads only, which ApplyOutcome enrols.
  if (better->recycle_lost()) return nullptr;
  const auto& done = state.completed_tracks();
  if (std::find(done.begin(), done.end(), *choice) != done.end()) {
    if (better->reenroll_after_days() <= 0) return nullptr;
    const std::optional<absl::Time> finished = LastCompletion(state, *choice);
    if (finished.has_value() && now < *finished + absl::Hours(24 * better->reenroll_after_days())) {
      return nullptr;
    }
  }
  return better;
}

// Enrols a lead that is not in a track, if it should be and may be now; during the cooldown,
// remembers to reconsider when it ends.
void MaybeEnroll(NurtureLeadState& state, const CompiledNurtureTracks& tracks,
                 const NurturingPolicy& policy, absl::Time now, const std::string& cause_event_id,
                 const std::string& trace_id) {
  state.clear_reconsider_at();
  const events::v1::LeadProfile profile = EffectiveProfile(state);
  if (ShouldExit(state.score(), profile) != ExitReason::kNone) return;
  const std::optional<std::string> choice = ChooseTrack(tracks, profile, state.score());
  if (!choice.has_value()) return;
  const config::v1::Track& track = *tracks.FindTrack(*choice);
  // A lead sales just gave back enters a re-engagement track at once, even one it finished
  // after an earlier loss: the loss is news, the cooldown is about not over-messaging.
  const bool recycle = state.recycle_pending() && track.recycle_lost();
  const auto& done = state.completed_tracks();
  if (!recycle && std::find(done.begin(), done.end(), *choice) != done.end()) {
    // Exhausted before: again only by the track's policy, and not before its time.
    if (track.reenroll_after_days() <= 0) return;
    const std::optional<absl::Time> finished = LastCompletion(state, track.id());
    if (finished.has_value() && now < *finished + absl::Hours(24 * track.reenroll_after_days())) {
      *state.mutable_reconsider_at() =
          Stamp(*finished + absl::Hours(24 * track.reenroll_after_days()));
      return;
    }
  }
  if (!recycle && state.has_cooldown_until() && now < TimeOf(state.cooldown_until())) {
    *state.mutable_reconsider_at() = state.cooldown_until();
    return;
  }
  Enroll(state, track, tracks.version(), policy, now, cause_event_id, trace_id,
         recycle ? state.pending_recycle_reason() : "");
  if (recycle) {
    state.clear_recycle_pending();
    state.clear_pending_recycle_reason();
  }
}

bool ConsentsTo(const events::v1::LeadProfile& profile, events::v1::Channel channel) {
  if (profile.do_not_contact()) return false;
  const events::v1::Consent* consent = rules::LatestConsent(profile, channel);
  return consent != nullptr && consent->granted();
}

void Exit(NurtureLeadState& state, absl::string_view reason, const NurturingPolicy& policy,
          absl::Time now) {
  End(state, internal::v1::NURTURE_ENROLLMENT_EXITED, reason, policy, now);
}

// The reaction to the touch that step `step_index` of `track` branches on.
PreviousTouch PreviousTouchFor(const NurtureEnrollment& e, const config::v1::Track& track,
                               int step_index) {
  PreviousTouch previous;
  if (step_index < 0 || step_index >= track.steps_size()) return previous;
  const int judged = JudgedStep(track.steps(step_index), step_index);
  for (const internal::v1::NurtureSentTouch& t : e.sent_touches()) {
    if (t.step() != judged) continue;
    previous.sent = true;
    previous.sent_at = TimeOf(t.sent_at());
    if (t.has_opened_at()) previous.opened_at = TimeOf(t.opened_at());
    if (t.has_clicked_at()) previous.clicked_at = TimeOf(t.clicked_at());
  }
  return previous;
}

// Appends a consent withdrawal for `channel` recorded by nurturing itself (`source`).
void Withdraw(NurtureLeadState& state, events::v1::Channel channel, absl::string_view source,
              absl::Time now) {
  auto& overrides = *state.mutable_consent_overrides();
  for (int i = overrides.size() - 1; i >= 0; --i) {
    if (overrides.Get(i).channel() == channel) overrides.DeleteSubrange(i, 1);
  }
  events::v1::Consent& withdrawal = *overrides.Add();
  withdrawal.set_channel(channel);
  withdrawal.set_granted(false);
  *withdrawal.mutable_at() = Stamp(now);
  withdrawal.set_source(std::string(source));
}

TouchHistory HistoryOf(const NurtureLeadState& state) {
  TouchHistory history;
  for (const auto& ts : state.recent_touches()) history.sent_at.push_back(TimeOf(ts));
  return history;
}

void RecordTouch(NurtureLeadState& state, const NurturingPolicy& policy, absl::Time now) {
  auto& touches = *state.mutable_recent_touches();
  *touches.Add() = Stamp(now);
  // Only touches inside the cap window count; keep the newest few.
  const absl::Time horizon = now - policy.delivery.cap_window;
  int drop = 0;
  while (drop < touches.size() && TimeOf(touches.Get(drop)) <= horizon) ++drop;
  drop = std::max(drop, touches.size() - policy.max_recent_touches);
  if (drop > 0) touches.DeleteSubrange(0, drop);
}

}  // namespace

absl::string_view EnrollmentStateName(internal::v1::NurtureEnrollmentState state) {
  switch (state) {
    case internal::v1::NURTURE_ENROLLMENT_ACTIVE:
      return "active";
    case internal::v1::NURTURE_ENROLLMENT_PAUSED:
      return "paused";
    case internal::v1::NURTURE_ENROLLMENT_EXITED:
      return "exited";
    case internal::v1::NURTURE_ENROLLMENT_COMPLETED:
      return "completed";
    default:
      return "";
  }
}

std::optional<absl::Time> WakeUpAt(const NurtureLeadState& state) {
  if (!state.in_flight_touch_id().empty()) return std::nullopt;
  return WakeUpAtOnceDelivered(state);
}

std::optional<absl::Time> WakeUpAtOnceDelivered(const NurtureLeadState& state) {
  if (state.has_current() && state.current().state() == internal::v1::NURTURE_ENROLLMENT_ACTIVE) {
    return TimeOf(state.current().next_due_at());
  }
  if (state.has_reconsider_at()) return TimeOf(state.reconsider_at());
  return std::nullopt;
}

void ApplyScored(NurtureLeadState& state, const std::string& lead_id,
                 const events::v1::LeadScored& event, const CompiledNurtureTracks& tracks,
                 const NurturingPolicy& policy, absl::Time now) {
  state.set_lead_id(lead_id);
  *state.mutable_profile() = event.lead();
  state.mutable_profile()->set_lead_id(lead_id);
  *state.mutable_score() = event.score();
  state.mutable_score()->clear_contributions();
  state.mutable_score()->clear_top_factors();
  *state.mutable_updated_at() = Stamp(now);
  if (IsOpen(state)) {
    const events::v1::LeadProfile profile = EffectiveProfile(state);
    const ExitReason exit = ShouldExit(state.score(), profile);
    const std::string current_track = state.current().track_id();
    if (exit != ExitReason::kNone) {
      Exit(state, ExitReasonName(exit), policy, now);
    } else if (tracks.GoalReached(current_track, profile, state.score())) {
      Exit(state, kExitGoalReached, policy, now);
      // The goal of one track is often the entry of the next (warm → qualified).
      if (const config::v1::Track* next = BetterTrack(state, tracks, current_track, now)) {
        Enroll(state, *next, tracks.version(), policy, now, event.envelope().event_id(),
               event.envelope().trace_id(), "");
      }
    } else if (const config::v1::Track* better = BetterTrack(state, tracks, current_track, now)) {
      Exit(state, kExitSwitchedTrack, policy, now);
      Enroll(state, *better, tracks.version(), policy, now, event.envelope().event_id(),
             event.envelope().trace_id(), "");
    } else {
      ExitIfUnreachable(state, tracks, policy, now, kExitConsentWithdrawn);
    }
    return;
  }
  MaybeEnroll(state, tracks, policy, now, event.envelope().event_id(), event.envelope().trace_id());
}

bool ApplyOutcome(NurtureLeadState& state, const std::string& lead_id,
                  const events::v1::LeadOutcome& outcome, const CompiledNurtureTracks& tracks,
                  const NurturingPolicy& policy, absl::Time now) {
  const bool won = outcome.kind() == events::v1::LeadOutcome::KIND_WON;
  const bool lost = outcome.kind() == events::v1::LeadOutcome::KIND_LOST;
  if (!won && !lost) return false;
  state.set_lead_id(lead_id);
  *state.mutable_updated_at() = Stamp(now);
  // The snapshot learns the stage now; scoring's own event with it may come before or after.
  state.mutable_score()->set_stage(won ? events::v1::STAGE_CUSTOMER : events::v1::STAGE_LOST);
  if (won) {
    state.clear_recycle_pending();
    state.clear_pending_recycle_reason();
    state.clear_reconsider_at();
    if (IsOpen(state)) Exit(state, ExitReasonName(ExitReason::kConverted), policy, now);
    return true;
  }
  state.set_recycle_pending(true);
  state.set_pending_recycle_reason(
      absl::StrCat("lost", outcome.reason().empty() ? "" : ": ", outcome.reason()));
  if (IsOpen(state)) Exit(state, kExitLost, policy, now);
  MaybeEnroll(state, tracks, policy, now, outcome.envelope().event_id(),
              outcome.envelope().trace_id());
  return true;
}

bool ApplyExit(NurtureLeadState& state, absl::string_view reason, const NurturingPolicy& policy,
               absl::Time now) {
  if (!IsOpen(state)) return false;
  Exit(state, reason, policy, now);
  *state.mutable_updated_at() = Stamp(now);
  return true;
}

bool ApplyMerged(NurtureLeadState& state, const NurturingPolicy& policy, absl::Time now) {
  // The largest time a Timestamp holds: "never again".
  const absl::Time never = absl::FromUnixSeconds(253402300799);  // 9999-12-31T23:59:59Z
  if (state.has_cooldown_until() && TimeOf(state.cooldown_until()) >= never) return false;
  if (IsOpen(state)) Exit(state, kExitMerged, policy, now);
  *state.mutable_cooldown_until() = Stamp(never);
  state.clear_reconsider_at();
  state.clear_recycle_pending();
  state.clear_pending_recycle_reason();
  *state.mutable_updated_at() = Stamp(now);
  return true;
}

bool ApplyRouted(NurtureLeadState& state, const NurturingPolicy& policy, absl::Time now) {
  // A lead recycled after a loss is routed again only on a fresh crossing, which is news: it
  // leaves its re-engagement track too.
  return ApplyExit(state, kExitRouted, policy, now);
}

namespace {

bool IsOpenActivity(const events::v1::Activity& a) { return a.type() == "email_open"; }
bool IsClickActivity(const events::v1::Activity& a) { return a.type() == "email_click"; }
bool IsHardBounce(const events::v1::Activity& a) {
  if (a.type() == "email_hard_bounce") return true;
  if (a.type() != "email_bounce" && a.type() != "email_bounced") return false;
  const auto& fields = a.properties().fields();
  auto it = fields.find("bounce_type");
  return it != fields.end() && it->second.string_value() == "hard";
}
bool IsUnsubscribe(const events::v1::Activity& a) {
  return a.type() == "email_unsubscribe" || a.type() == "unsubscribe";
}

constexpr char kHardBounceSource[] = "nurturing:hard_bounce";

}  // namespace

bool IsNurtureActivity(const events::v1::Activity& activity) {
  return ((IsOpenActivity(activity) || IsClickActivity(activity)) &&
          !activity.touch_id().empty()) ||
         IsHardBounce(activity) || IsUnsubscribe(activity);
}

bool ApplyActivity(NurtureLeadState& state, const events::v1::Activity& activity,
                   const CompiledNurtureTracks& tracks, const NurturingPolicy& policy,
                   absl::Time now) {
  if (IsHardBounce(activity)) {
    // The address is dead: no e-mail goes to it again, whatever the profile's consent says.
    Withdraw(state, events::v1::CHANNEL_EMAIL, kHardBounceSource, now);
    Withdraw(state, events::v1::CHANNEL_NEWSLETTER, kHardBounceSource, now);
    if (IsOpen(state)) Exit(state, kExitHardBounce, policy, now);
    *state.mutable_updated_at() = Stamp(now);
    return true;
  }
  if (IsUnsubscribe(activity)) {
    Withdraw(state, events::v1::CHANNEL_EMAIL, kUnsubscribeSource, now);
    Withdraw(state, events::v1::CHANNEL_NEWSLETTER, kUnsubscribeSource, now);
    ExitIfUnreachable(state, tracks, policy, now);
    *state.mutable_updated_at() = Stamp(now);
    return true;
  }
  if (!state.has_current() || activity.touch_id().empty()) return false;
  // Only the touches of the current enrolment can move its branches.
  internal::v1::NurtureSentTouch* touch = nullptr;
  for (internal::v1::NurtureSentTouch& t : *state.mutable_current()->mutable_sent_touches()) {
    if (t.touch_id() == activity.touch_id()) touch = &t;
  }
  if (touch == nullptr) return false;
  const absl::Time at = activity.has_occurred_at() ? TimeOf(activity.occurred_at()) : now;
  bool changed = false;
  if (!touch->has_opened_at()) {  // a click implies an open
    *touch->mutable_opened_at() = Stamp(at);
    changed = true;
  }
  if (IsClickActivity(activity) && !touch->has_clicked_at()) {
    *touch->mutable_clicked_at() = Stamp(at);
    changed = true;
  }
  if (changed) *state.mutable_updated_at() = Stamp(now);
  return changed;
}

bool ExitIfUnreachable(NurtureLeadState& state, const CompiledNurtureTracks& tracks,
                       const NurturingPolicy& policy, absl::Time now, absl::string_view reason) {
  if (!IsOpen(state)) return false;
  const config::v1::Track* track = tracks.FindTrack(state.current().track_id());
  if (track == nullptr || state.current().next_step() >= track->steps_size()) return false;
  const events::v1::LeadProfile profile = EffectiveProfile(state);
  for (int i = state.current().next_step(); i < track->steps_size(); ++i) {
    if (ConsentsTo(profile, track->steps(i).channel())) return false;
  }
  Exit(state, reason, policy, now);
  return true;
}

namespace {

using events::v1::NurtureEnrollmentChanged;

void AddChange(std::vector<NurtureEnrollmentChanged>& out, const std::string& lead_id,
               const NurtureEnrollment& e, NurtureEnrollmentChanged::Kind kind,
               absl::string_view reason, absl::string_view id_suffix, const std::string& cause_id,
               absl::Time now) {
  NurtureEnrollmentChanged& change = out.emplace_back();
  const std::string kind_name = rules::EnumValueName(kind);
  *change.mutable_envelope() = events::MakeEnvelope({
      .event_id =
          absl::StrCat(EnrollmentId(lead_id, e.track_id(), e.attempt()), ":", kind_name, id_suffix),
      .lead_id = lead_id,
      .occurred_at = now,
      .produced_at = now,
      .causation_id = cause_id,
      .trace_id = e.trace_id(),
      .producer = kService,
  });
  change.set_kind(kind);
  change.set_track_id(e.track_id());
  change.set_tracks_version(e.track_version());
  change.set_step(e.next_step());
  change.set_attempt(e.attempt());
  change.set_reason(std::string(reason));
}

// The events of one enrolment going from `before` (null: it did not exist) to `after`.
void EnrollmentTransition(std::vector<NurtureEnrollmentChanged>& out, const std::string& lead_id,
                          const NurtureEnrollment* before, const NurtureEnrollment& after,
                          const std::string& cause_id, absl::Time now) {
  using internal::v1::NURTURE_ENROLLMENT_ACTIVE;
  using internal::v1::NURTURE_ENROLLMENT_COMPLETED;
  using internal::v1::NURTURE_ENROLLMENT_EXITED;
  using internal::v1::NURTURE_ENROLLMENT_PAUSED;
  const auto was =
      before != nullptr ? before->state() : internal::v1::NURTURE_ENROLLMENT_STATE_UNSPECIFIED;
  if (before == nullptr) {
    AddChange(out, lead_id, after, NurtureEnrollmentChanged::KIND_ENROLLED, after.recycle_reason(),
              "", cause_id, now);
  }
  if (was == after.state()) return;
  switch (after.state()) {
    case NURTURE_ENROLLMENT_PAUSED:
      AddChange(out, lead_id, after, NurtureEnrollmentChanged::KIND_PAUSED, "",
                absl::StrCat(":", absl::ToUnixMillis(TimeOf(after.paused_at()))), cause_id, now);
      break;
    case NURTURE_ENROLLMENT_ACTIVE:
      if (was == NURTURE_ENROLLMENT_PAUSED) {
        AddChange(out, lead_id, after, NurtureEnrollmentChanged::KIND_RESUMED, "",
                  absl::StrCat(":", absl::ToUnixMillis(TimeOf(before->paused_at()))), cause_id,
                  now);
      }
      break;
    case NURTURE_ENROLLMENT_EXITED:
      AddChange(out, lead_id, after, NurtureEnrollmentChanged::KIND_EXITED, after.exit_reason(), "",
                cause_id, now);
      break;
    case NURTURE_ENROLLMENT_COMPLETED:
      AddChange(out, lead_id, after, NurtureEnrollmentChanged::KIND_EXHAUSTED, "", "", cause_id,
                now);
      break;
    default:
      break;
  }
}

bool SameEnrollment(const NurtureEnrollment& a, const NurtureEnrollment& b) {
  return a.track_id() == b.track_id() && a.attempt() == b.attempt();
}

}  // namespace

std::vector<events::v1::NurtureEnrollmentChanged> EnrollmentChanges(const NurtureLeadState& before,
                                                                    const NurtureLeadState& after,
                                                                    const std::string& cause_id,
                                                                    absl::Time now) {
  return EnrollmentChanges(before.has_current() ? &before.current() : nullptr, after, cause_id,
                           now);
}

std::vector<events::v1::NurtureEnrollmentChanged> EnrollmentChanges(
    const NurtureEnrollment* before_current, const NurtureLeadState& after,
    const std::string& cause_id, absl::Time now) {
  std::vector<NurtureEnrollmentChanged> out;
  if (!after.has_current()) return out;
  const std::string& lead_id = after.lead_id();
  const NurtureEnrollment* old = before_current;
  if (old != nullptr && !SameEnrollment(*old, after.current())) {
    // A new enrolment replaced the old one, which is now the newest past one.
    if (!after.past().empty() && SameEnrollment(after.past(0), *old)) {
      EnrollmentTransition(out, lead_id, old, after.past(0), cause_id, now);
    }
    old = nullptr;
  }
  EnrollmentTransition(out, lead_id, old, after.current(), cause_id, now);
  return out;
}

DueDecision DecideDue(NurtureLeadState state, const CompiledNurtureTracks& tracks,
                      const NurturingPolicy& policy, absl::Time now) {
  DueDecision decision;
  decision.state = std::move(state);
  NurtureLeadState& next = decision.state;
  if (!next.in_flight_touch_id().empty()) {
    decision.kind = DueDecision::Kind::kResend;
    decision.touch_id = next.in_flight_touch_id();
    return decision;
  }
  if (!IsOpen(next) && next.has_reconsider_at() && now >= TimeOf(next.reconsider_at())) {
    // A scored event arrived during the cooldown: judge the lead on its latest snapshots.
    const std::string cause = absl::StrCat("reconsider:", absl::ToUnixMillis(now));
    MaybeEnroll(next, tracks, policy, now, cause, next.current().trace_id());
  }
  if (!next.has_current() || next.current().state() != internal::v1::NURTURE_ENROLLMENT_ACTIVE) {
    return decision;
  }
  NurtureEnrollment& current = *next.mutable_current();
  const config::v1::Track* track = tracks.FindTrack(current.track_id());
  if (track == nullptr) {
    End(next, internal::v1::NURTURE_ENROLLMENT_EXITED, kTrackRemoved, policy, now);
    current.set_last_decision(absl::StrCat("track '", current.track_id(), "' no longer exists"));
    return decision;
  }
  const events::v1::LeadProfile profile = EffectiveProfile(next);
  const TouchHistory history = HistoryOf(next);
  // Each pass either returns or skips one step, so steps_size() + 1 passes always finish.
  for (int pass = 0; pass <= track->steps_size(); ++pass) {
    const StepPlan plan = PlanStep(*track, current.next_step(), TimeOf(current.step_base_at()),
                                   profile, policy.delivery, history, now,
                                   PreviousTouchFor(current, *track, current.next_step()));
    current.set_last_decision(plan.reason);
    switch (plan.action) {
      case StepPlan::Action::kSendNow: {
        events::v1::NurtureTouch touch = BuildTouch(
            profile, next.score(), *track, current.next_step(), current.attempt(), plan.due_at,
            tracks.ContentFor(track->id(), current.next_step(), profile, next.score()));
        if (!current.recycle_reason().empty()) {
          (*touch.mutable_personalisation())["lost_reason"] = current.recycle_reason();
        }
        *touch.mutable_envelope() = events::MakeEnvelope({
            .event_id = touch.touch_id(),
            .lead_id = next.lead_id(),
            .occurred_at = plan.due_at,
            .produced_at = now,
            .causation_id = current.cause_event_id(),
            .trace_id = current.trace_id(),
            .producer = kService,
        });
        Advance(current, *track, plan.due_at);
        current.set_touches_sent(current.touches_sent() + 1);
        // Later steps' branch conditions read the reaction to this touch.
        internal::v1::NurtureSentTouch& sent = *current.add_sent_touches();
        sent.set_touch_id(touch.touch_id());
        sent.set_step(touch.step());
        *sent.mutable_sent_at() = Stamp(now);
        RecordTouch(next, policy, now);
        next.set_in_flight_touch_id(touch.touch_id());
        decision.kind = DueDecision::Kind::kSend;
        decision.touch_id = touch.touch_id();
        decision.touch = std::move(touch);
        return decision;
      }
      case StepPlan::Action::kDefer:
        *current.mutable_next_due_at() = Stamp(plan.send_at);
        return decision;
      case StepPlan::Action::kSkip:
        if (plan.due_at > now) {
          // Not due yet: judge consent when it is, so an opt-in given meanwhile counts.
          *current.mutable_next_due_at() = Stamp(plan.due_at);
          return decision;
        }
        Advance(current, *track, plan.due_at);
        current.set_steps_skipped(current.steps_skipped() + 1);
        continue;
      case StepPlan::Action::kCompleted:
        End(next, internal::v1::NURTURE_ENROLLMENT_COMPLETED, "", policy, now);
        return decision;
    }
  }
  return decision;
}

bool ApplyDelivered(NurtureLeadState& state, absl::string_view touch_id) {
  if (state.in_flight_touch_id().empty() || state.in_flight_touch_id() != touch_id) return false;
  state.clear_in_flight_touch_id();
  return true;
}

absl::Status ApplyPause(NurtureLeadState& state, absl::Time now) {
  if (!IsOpen(state)) {
    return absl::FailedPreconditionError(
        absl::StrCat("lead ", state.lead_id(), " has no active enrolment to pause"));
  }
  NurtureEnrollment& current = *state.mutable_current();
  if (current.state() == internal::v1::NURTURE_ENROLLMENT_PAUSED) return absl::OkStatus();
  current.set_state(internal::v1::NURTURE_ENROLLMENT_PAUSED);
  *current.mutable_paused_at() = Stamp(now);
  *state.mutable_updated_at() = Stamp(now);
  return absl::OkStatus();
}

absl::Status ApplyResume(NurtureLeadState& state, absl::Time now) {
  if (!IsOpen(state)) {
    return absl::FailedPreconditionError(
        absl::StrCat("lead ", state.lead_id(), " has no paused enrolment to resume"));
  }
  NurtureEnrollment& current = *state.mutable_current();
  if (current.state() == internal::v1::NURTURE_ENROLLMENT_ACTIVE) return absl::OkStatus();
  // Carry on where the lead left off: the remaining delays count as if the pause never was.
  const absl::Duration paused_for =
      std::max(absl::ZeroDuration(), now - TimeOf(current.paused_at()));
  *current.mutable_step_base_at() = Stamp(TimeOf(current.step_base_at()) + paused_for);
  *current.mutable_next_due_at() = Stamp(TimeOf(current.next_due_at()) + paused_for);
  current.set_state(internal::v1::NURTURE_ENROLLMENT_ACTIVE);
  current.clear_paused_at();
  *state.mutable_updated_at() = Stamp(now);
  return absl::OkStatus();
}

absl::Status ApplyUnsubscribe(NurtureLeadState& state, events::v1::Channel channel,
                              absl::Time now) {
  if (channel == events::v1::CHANNEL_UNSPECIFIED || !events::v1::Channel_IsValid(channel)) {
    return absl::InvalidArgumentError("channel is required");
  }
  Withdraw(state, channel, kUnsubscribeSource, now);
  *state.mutable_updated_at() = Stamp(now);
  return absl::OkStatus();
}

events::v1::LeadProfile EffectiveProfile(const NurtureLeadState& state) {
  events::v1::LeadProfile profile = state.profile();
  if (profile.lead_id().empty()) profile.set_lead_id(state.lead_id());
  // LatestConsent picks the newest record per channel, so appending is enough: a withdrawal
  // beats older opt-ins, and a newer opt-in in the profile beats the withdrawal.
  for (const events::v1::Consent& c : state.consent_overrides()) *profile.add_consents() = c;
  return profile;
}

v1::Enrollment ToApiEnrollment(const std::string& lead_id, const NurtureEnrollment& e) {
  v1::Enrollment out;
  out.set_lead_id(lead_id);
  out.set_track_id(e.track_id());
  out.set_state(std::string(EnrollmentStateName(e.state())));
  out.set_next_step(e.next_step());
  if (e.state() == internal::v1::NURTURE_ENROLLMENT_ACTIVE ||
      e.state() == internal::v1::NURTURE_ENROLLMENT_PAUSED) {
    *out.mutable_next_due_at() = e.next_due_at();
  }
  *out.mutable_enrolled_at() = e.enrolled_at();
  out.set_exit_reason(e.exit_reason());
  return out;
}

std::vector<v1::Enrollment> ApiEnrollments(const NurtureLeadState& state) {
  std::vector<v1::Enrollment> out;
  if (state.has_current()) out.push_back(ToApiEnrollment(state.lead_id(), state.current()));
  for (const NurtureEnrollment& e : state.past()) {
    out.push_back(ToApiEnrollment(state.lead_id(), e));
  }
  return out;
}

}  // namespace leadflow::nurturing
