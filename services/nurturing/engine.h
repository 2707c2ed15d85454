// The nurturing engine: which track a lead belongs in, when it leaves, and what each step of a
// track does now — send, wait (quiet hours, frequency cap), skip (no consent) or finish.
//
// Contract:
// - Pure: values in, decisions out. No I/O, no clock (`now` is passed in): the same inputs give
//   the same plan and the same touch ids, so a replayed timer or event re-creates exactly the
//   touch it created before and senders can de-duplicate on touch_id.
// - CompileNurtureTracks validates a track file once; the result is immutable and may be shared
//   by any number of threads.
// - Nothing is ever dropped for timing: quiet hours and the frequency cap defer a step to the
//   next time it may go. Only missing consent or a missing address skips a step.
// - Lead time zones come from the system tzdata, loaded once per zone and cached by absl; an
//   unknown zone falls back to DeliveryPolicy::default_time_zone.
//
// The handler's loop: on every scored event, ShouldExit (leave the track?) then ChooseTrack
// (enrol or switch). For the current step, PlanStep: send -> BuildTouch, emit, plan the next
// step from this step's due time; defer -> set a timer; skip -> plan the next step from the
// skipped step's due time; completed -> the track is done.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/rules/condition.h"
#include "leadflow/config/v1/nurture_tracks.pb.h"
#include "leadflow/events/v1/lead.pb.h"
#include "leadflow/events/v1/nurture.pb.h"
#include "leadflow/events/v1/scoring.pb.h"

namespace leadflow::nurturing {

// A validated, immutable set of tracks. Build with CompileNurtureTracks.
class CompiledNurtureTracks {
 public:
  const std::string& version() const { return version_; }
  // The track with `id`, or null.
  const config::v1::Track* FindTrack(absl::string_view id) const;
  // Every track, highest priority first (equal priorities in file order). The pointers live as
  // long as this object.
  std::vector<const config::v1::Track*> Tracks() const;
  // Whether the goal of track `track_id` holds for the lead (false for a track without a goal
  // or an unknown track).
  bool GoalReached(absl::string_view track_id, const events::v1::LeadProfile& profile,
                   const events::v1::ScoreSnapshot& score) const;
  // The content id of step `step_index` of `track_id` for the lead: the first variant whose
  // conditions hold, else the step's content_id. Empty for an unknown track or step.
  std::string ContentFor(absl::string_view track_id, int step_index,
                         const events::v1::LeadProfile& profile,
                         const events::v1::ScoreSnapshot& score) const;

 private:
  struct Variant {
    rules::CompiledConditions when;
    std::string content_id;
  };
  struct Entry {
    config::v1::Track track;
    rules::CompiledConditions enroll_when;
    rules::CompiledConditions goal;
    // Per step, its variants in file order.
    std::vector<std::vector<Variant>> variants;
  };
  const Entry* FindEntry(absl::string_view id) const;

  CompiledNurtureTracks() = default;

  friend absl::StatusOr<std::shared_ptr<const CompiledNurtureTracks>> CompileNurtureTracks(
      const config::v1::NurtureTracks& tracks);
  friend std::optional<std::string> ChooseTrack(const CompiledNurtureTracks& tracks,
                                                const events::v1::LeadProfile& profile,
                                                const events::v1::ScoreSnapshot& score);

  std::string version_;
  // Highest priority first; equal priorities keep file order.
  std::vector<Entry> entries_;
};

// Validates `tracks`. InvalidArgument, naming the path, when: a track id is empty, repeated or
// not made of letters, digits, '-', '_' and '.' (ids appear in touch ids); a track has no steps;
// a step has no channel, no content_id, or a delay_hours outside 0..87600 (ten years); a step's
// if_previous has a negative or non-finite within_days, or is set on step 0 (no previous
// touch); a variant has no content_id; or an enroll_when, goal or variant condition is invalid
// (profile and score fields).
absl::StatusOr<std::shared_ptr<const CompiledNurtureTracks>> CompileNurtureTracks(
    const config::v1::NurtureTracks& tracks);

// The id of the highest-priority track whose enroll_when holds for the lead and its score (ties:
// file order), or nullopt when none does. A track with no conditions takes every lead.
std::optional<std::string> ChooseTrack(const CompiledNurtureTracks& tracks,
                                       const events::v1::LeadProfile& profile,
                                       const events::v1::ScoreSnapshot& score);

// Why a lead leaves nurturing.
enum class ExitReason {
  // Stay.
  kNone,
  // The lead asked never to be contacted.
  kDoNotContact,
  // Stage customer: the lead converted.
  kConverted,
  // Stage contacted or opportunity: sales has the lead.
  kWithSales,
  // Category sales_ready: routing hands the lead to sales now.
  kSalesReady,
};

// Exit reasons that come from other inputs than the score (outcomes, routing, activity, gRPC).
inline constexpr char kExitRouted[] = "routed";
inline constexpr char kExitLost[] = "lost";
inline constexpr char kExitUnsubscribed[] = "unsubscribed";
inline constexpr char kExitConsentWithdrawn[] = "consent_withdrawn";
inline constexpr char kExitHardBounce[] = "hard_bounce";
inline constexpr char kExitGoalReached[] = "goal_reached";
inline constexpr char kExitErased[] = "erased";
// Capture merged the lead into another one (LeadCaptured.merged_lead_ids): the person is
// nurtured as that lead.
inline constexpr char kExitMerged[] = "merged";
// A track of higher priority now matches the lead (it became warm in the cold track, or said
// "not now"): it leaves its track and enters that one at once.
inline constexpr char kExitSwitchedTrack[] = "switched_track";

// "none", "do_not_contact", "converted", "with_sales", "sales_ready".
absl::string_view ExitReasonName(ExitReason reason);

// Whether a lead must leave nurturing, checked in the order of the enum (privacy first). A lost
// lead is nurtured even when its score is still sales-ready: sales already had it, and routing
// only re-routes on a fresh crossing.
ExitReason ShouldExit(const events::v1::ScoreSnapshot& current,
                      const events::v1::LeadProfile& profile);

// When touches may go out. Quiet hours and the cap apply across all tracks.
struct DeliveryPolicy {
  // Quiet hours in the lead's local time, minutes after midnight; start > end wraps midnight.
  // start == end disables quiet hours. Retargeting (an ad audience, not a message) ignores them.
  int quiet_start_minute = 21 * 60;
  int quiet_end_minute = 8 * 60;
  // At most `max_touches` touches in any `cap_window`; 0 disables the cap.
  int max_touches = 3;
  absl::Duration cap_window = absl::Hours(7 * 24);
  // Zone for leads without a (valid) time_zone.
  std::string default_time_zone = "UTC";
};

// The lead's recent touches, across all tracks.
struct TouchHistory {
  // When each touch was sent; any order. Only those inside the cap window matter.
  std::vector<absl::Time> sent_at;
};

// The index of the step whose touch `step` (at `step_index`) branches on: if_previous.step, or
// the step just before.
int JudgedStep(const config::v1::Step& step, int step_index);

// The lead's reaction to the touch of the step a branch judges (JudgedStep).
struct PreviousTouch {
  // False when that step sent no touch (skipped): the lead then counts as not having acted.
  bool sent = false;
  absl::Time sent_at = absl::InfinitePast();
  std::optional<absl::Time> opened_at;
  std::optional<absl::Time> clicked_at;
};

// Whether `previous` satisfies `condition` at `now` (an unset condition always holds).
bool EngagementHolds(const config::v1::Engagement& condition, const PreviousTouch& previous);

// What to do with one step now.
struct StepPlan {
  enum class Action {
    // Build the touch and send it now.
    kSendNow,
    // Not yet: try again at `send_at` (step not due, quiet hours, frequency cap).
    kDefer,
    // The lead cannot receive this step (no consent, no address): go on to the next step.
    kSkip,
    // The track has no step with this index: the lead has finished it.
    kCompleted,
  };
  Action action = Action::kCompleted;
  // When the step was due: previous due (or enrolment) time + the step's delay. The next step's
  // delay counts from here, whether this step was sent, deferred or skipped, so deferrals do
  // not stretch the whole track.
  absl::Time due_at = absl::InfinitePast();
  // kSendNow: now. kDefer: the earliest time the step may go.
  absl::Time send_at = absl::InfinitePast();
  // Human-readable explanation ("quiet hours in America/New_York until 08:00", ...).
  std::string reason;
};

// Plans step `step_index` of `track` for the lead at `now`. `previous_due_or_enrolled` is the
// previous step's due_at, or the enrolment time for step 0. Consent: the lead must have a
// granted Consent for the step's channel (the latest record, see rules::LatestConsent) and
// do_not_contact must be false; e-mail and newsletter steps need an e-mail address, SMS and
// phone steps a phone number. A deferred plan's send_at is already outside quiet hours and under
// the cap, so the caller can set its timer to it directly. Branch: a step whose if_previous
// condition does not hold for `previous` (the touch of JudgedStep) is skipped; the caller judges
// it only once the step is due, so an open until then still counts.
StepPlan PlanStep(const config::v1::Track& track, int step_index,
                  absl::Time previous_due_or_enrolled, const events::v1::LeadProfile& profile,
                  const DeliveryPolicy& policy, const TouchHistory& history, absl::Time now,
                  const PreviousTouch& previous = {});

// The deterministic id of one delivery attempt: "<lead>:<track>:<step>:<attempt>", with '%' and
// ':' in the ids percent-encoded so that distinct inputs always give distinct ids.
std::string TouchId(absl::string_view lead_id, absl::string_view track_id, int step, int attempt);

// The id of one enrolment, "<lead>:<track>:<attempt>" (escaped like TouchId): the prefix of its
// `nurture.enrollments` event ids.
std::string EnrollmentId(absl::string_view lead_id, absl::string_view track_id, int attempt);

// The touch for step `step_index` of `track` (which must exist): touch_id (also the envelope's
// event_id), lead id, channel, track, step, attempt, content_id, due_at, the address for the
// channel (e-mail for e-mail, newsletter and retargeting; phone for SMS and phone), and
// personalisation: first_name, last_name, company, and — for content variants — "interest" (the
// lead's first interest) and "segment" (its first segment); empty values are left out. The
// caller fills the rest of the envelope. personalisation is a proto map, whose default wire
// order varies between instances: serialise with deterministic serialisation where bytes are
// compared or hashed (idempotency memos).
// `content_id` overrides the step's content_id when not empty (CompiledNurtureTracks::ContentFor
// picks the variant).
events::v1::NurtureTouch BuildTouch(const events::v1::LeadProfile& profile,
                                    const events::v1::ScoreSnapshot& score,
                                    const config::v1::Track& track, int step_index, int attempt,
                                    absl::Time due_at, absl::string_view content_id = {});

}  // namespace leadflow::nurturing
