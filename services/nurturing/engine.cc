#include "services/nurturing/engine.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/civil_time.h"
#include "common/rules/field_source.h"
#include "common/rules/time_util.h"

namespace leadflow::nurturing {
namespace {

using config::v1::Track;
using events::v1::Channel;
using events::v1::LeadProfile;

// Ten years: longer delays are typos, and absurd ones would overflow time arithmetic.
constexpr double kMaxDelayHours = 10 * 365 * 24;

absl::Status Invalid(absl::string_view path, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", message));
}

bool IsIdChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
}

std::string FormatUtc(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", time, absl::UTCTimeZone());
}

std::string ClockText(int minute_of_day) {
  return absl::StrFormat("%02d:%02d", minute_of_day / 60, minute_of_day % 60);
}

// "7 days" for whole days, else absl's form ("36h").
std::string DurationText(absl::Duration duration) {
  absl::Duration remainder;
  const int64_t days = absl::IDivDuration(duration, absl::Hours(24), &remainder);
  if (remainder == absl::ZeroDuration() && days > 0) {
    return absl::StrCat(days, days == 1 ? " day" : " days");
  }
  return absl::FormatDuration(duration);
}

// The address a channel delivers to. Ad audiences are matched on (hashed) e-mail.
const std::string& AddressFor(const LeadProfile& profile, Channel channel) {
  switch (channel) {
    case events::v1::CHANNEL_SMS:
    case events::v1::CHANNEL_PHONE:
      return profile.phone();
    default:
      return profile.email();
  }
}

absl::string_view AddressName(Channel channel) {
  return channel == events::v1::CHANNEL_SMS || channel == events::v1::CHANNEL_PHONE
             ? "phone number"
             : "e-mail address";
}

// The first time >= `t` outside quiet hours in `zone`.
absl::Time AfterQuietHours(absl::Time t, const DeliveryPolicy& policy, absl::TimeZone zone) {
  const int start = policy.quiet_start_minute;
  const int end = policy.quiet_end_minute;
  if (start == end) return t;
  const absl::CivilSecond local = absl::ToCivilSecond(t, zone);
  const int minute = rules::MinuteOfDay(local);
  const bool overnight = start > end;
  const bool quiet =
      overnight ? (minute >= start || minute < end) : (minute >= start && minute < end);
  if (!quiet) return t;
  absl::CivilDay day(local);
  if (overnight && minute >= start) day += 1;  // evening: quiet until tomorrow morning
  const absl::CivilMinute resume(day.year(), day.month(), day.day(), end / 60, end % 60);
  const absl::Time resume_at = absl::FromCivil(resume, zone);
  // A DST jump can map the resume time to or before `t`; never move backwards.
  return resume_at > t ? resume_at : t;
}

// The first time >= `t` at which fewer than max_touches touches lie in the window before it.
// Touches stamped after `t` (a sender's clock ahead of ours) count as inside the window.
absl::Time AfterFrequencyCap(absl::Time t, const DeliveryPolicy& policy,
                             const TouchHistory& history) {
  if (policy.max_touches <= 0) return t;
  std::vector<absl::Time> in_window;
  for (absl::Time sent : history.sent_at) {
    if (sent > t - policy.cap_window) in_window.push_back(sent);
  }
  if (static_cast<int>(in_window.size()) < policy.max_touches) return t;
  std::sort(in_window.begin(), in_window.end());
  // Wait until enough of the oldest have left the window to make room for one more.
  const size_t must_expire = in_window.size() - policy.max_touches + 1;
  return in_window[must_expire - 1] + policy.cap_window;
}

std::string EscapeIdPart(absl::string_view part) {
  return absl::StrReplaceAll(part, {{"%", "%25"}, {":", "%3A"}});
}

}  // namespace

int JudgedStep(const config::v1::Step& step, int step_index) {
  return step.if_previous().has_step() ? step.if_previous().step() : step_index - 1;
}

const CompiledNurtureTracks::Entry* CompiledNurtureTracks::FindEntry(absl::string_view id) const {
  for (const Entry& entry : entries_) {
    if (entry.track.id() == id) return &entry;
  }
  return nullptr;
}

const Track* CompiledNurtureTracks::FindTrack(absl::string_view id) const {
  const Entry* entry = FindEntry(id);
  return entry != nullptr ? &entry->track : nullptr;
}

bool CompiledNurtureTracks::GoalReached(absl::string_view track_id, const LeadProfile& profile,
                                        const events::v1::ScoreSnapshot& score) const {
  const Entry* entry = FindEntry(track_id);
  if (entry == nullptr || entry->track.goal().empty()) return false;
  return entry->goal.Evaluate(rules::LeadFields(profile, &score));
}

std::string CompiledNurtureTracks::ContentFor(absl::string_view track_id, int step_index,
                                              const LeadProfile& profile,
                                              const events::v1::ScoreSnapshot& score) const {
  const Entry* entry = FindEntry(track_id);
  if (entry == nullptr || step_index < 0 || step_index >= entry->track.steps_size()) return "";
  const std::vector<Variant>& variants = entry->variants[step_index];
  if (!variants.empty()) {
    const rules::LeadFields fields(profile, &score);
    for (const Variant& v : variants) {
      if (v.when.Evaluate(fields)) return v.content_id;
    }
  }
  return entry->track.steps(step_index).content_id();
}

std::vector<const Track*> CompiledNurtureTracks::Tracks() const {
  std::vector<const Track*> out;
  out.reserve(entries_.size());
  for (const Entry& entry : entries_) out.push_back(&entry.track);
  return out;
}

absl::StatusOr<std::shared_ptr<const CompiledNurtureTracks>> CompileNurtureTracks(
    const config::v1::NurtureTracks& tracks) {
  std::shared_ptr<CompiledNurtureTracks> out(new CompiledNurtureTracks());
  out->version_ = tracks.version();
  absl::flat_hash_set<std::string> ids;
  for (int i = 0; i < tracks.tracks_size(); ++i) {
    const Track& track = tracks.tracks(i);
    const std::string path = absl::StrCat("nurture.tracks[", i, "]");
    if (track.id().empty()) return Invalid(absl::StrCat(path, ".id"), "empty track id");
    if (!std::all_of(track.id().begin(), track.id().end(), IsIdChar)) {
      return Invalid(
          absl::StrCat(path, ".id"),
          absl::StrCat("'", track.id(), "' may only use letters, digits, '-', '_', '.'"));
    }
    if (!ids.insert(track.id()).second) {
      return Invalid(absl::StrCat(path, ".id"),
                     absl::StrCat("duplicate track id '", track.id(), "'"));
    }
    if (track.reenroll_after_days() < 0 || track.reenroll_after_days() > kMaxDelayHours / 24) {
      return Invalid(absl::StrCat(path, ".reenroll_after_days"),
                     absl::StrCat("must be a number of days in 0..", kMaxDelayHours / 24));
    }
    if (track.steps().empty()) {
      return Invalid(absl::StrCat(path, ".steps"),
                     absl::StrCat("track '", track.id(), "' has no steps"));
    }
    for (int j = 0; j < track.steps_size(); ++j) {
      const config::v1::Step& step = track.steps(j);
      const std::string step_path = absl::StrCat(path, ".steps[", j, "]");
      if (step.channel() == events::v1::CHANNEL_UNSPECIFIED) {
        return Invalid(absl::StrCat(step_path, ".channel"), "required");
      }
      if (step.content_id().empty()) {
        return Invalid(absl::StrCat(step_path, ".content_id"), "required");
      }
      if (!std::isfinite(step.delay_hours()) || step.delay_hours() < 0 ||
          step.delay_hours() > kMaxDelayHours) {
        return Invalid(absl::StrCat(step_path, ".delay_hours"),
                       absl::StrCat("must be a number of hours in 0..", kMaxDelayHours));
      }
      if (step.has_if_previous() &&
          step.if_previous().kind() != config::v1::Engagement::KIND_UNSPECIFIED) {
        const double within = step.if_previous().within_days();
        const int judged = JudgedStep(step, j);
        if (judged < 0 || judged >= j) {
          return Invalid(absl::StrCat(step_path, ".if_previous"),
                         "must name an earlier step (the first step has none to branch on)");
        }
        if (!std::isfinite(within) || within < 0) {
          return Invalid(absl::StrCat(step_path, ".if_previous.within_days"),
                         "must be a non-negative number of days");
        }
      }
    }
    CompiledNurtureTracks::Entry entry{track, {}, {}, {}};
    absl::StatusOr<rules::CompiledConditions> when =
        rules::CompileLeadConditions(track.enroll_when(), absl::StrCat(path, ".enroll_when"),
                                     rules::kProfileFields | rules::kScoreFields, track.id());
    if (!when.ok()) return when.status();
    entry.enroll_when = *std::move(when);
    absl::StatusOr<rules::CompiledConditions> goal =
        rules::CompileLeadConditions(track.goal(), absl::StrCat(path, ".goal"),
                                     rules::kProfileFields | rules::kScoreFields, track.id());
    if (!goal.ok()) return goal.status();
    entry.goal = *std::move(goal);
    for (int j = 0; j < track.steps_size(); ++j) {
      std::vector<CompiledNurtureTracks::Variant>& variants = entry.variants.emplace_back();
      for (int k = 0; k < track.steps(j).variants_size(); ++k) {
        const config::v1::ContentVariant& variant = track.steps(j).variants(k);
        const std::string variant_path = absl::StrCat(path, ".steps[", j, "].variants[", k, "]");
        if (variant.content_id().empty()) {
          return Invalid(absl::StrCat(variant_path, ".content_id"), "required");
        }
        absl::StatusOr<rules::CompiledConditions> variant_when =
            rules::CompileLeadConditions(variant.when(), absl::StrCat(variant_path, ".when"),
                                         rules::kProfileFields | rules::kScoreFields, track.id());
        if (!variant_when.ok()) return variant_when.status();
        variants.push_back({*std::move(variant_when), variant.content_id()});
      }
    }
    out->entries_.push_back(std::move(entry));
  }
  // Highest priority first; stable so equal priorities keep the order of the file.
  std::stable_sort(
      out->entries_.begin(), out->entries_.end(),
      [](const CompiledNurtureTracks::Entry& a, const CompiledNurtureTracks::Entry& b) {
        return a.track.priority() > b.track.priority();
      });
  return std::shared_ptr<const CompiledNurtureTracks>(std::move(out));
}

std::optional<std::string> ChooseTrack(const CompiledNurtureTracks& tracks,
                                       const LeadProfile& profile,
                                       const events::v1::ScoreSnapshot& score) {
  const rules::LeadFields fields(profile, &score);
  for (const CompiledNurtureTracks::Entry& entry : tracks.entries_) {
    if (entry.enroll_when.Evaluate(fields)) return entry.track.id();
  }
  return std::nullopt;
}

absl::string_view ExitReasonName(ExitReason reason) {
  switch (reason) {
    case ExitReason::kNone:
      return "none";
    case ExitReason::kDoNotContact:
      return "do_not_contact";
    case ExitReason::kConverted:
      return "converted";
    case ExitReason::kWithSales:
      return "with_sales";
    case ExitReason::kSalesReady:
      return "sales_ready";
  }
  return "none";
}

ExitReason ShouldExit(const events::v1::ScoreSnapshot& current, const LeadProfile& profile) {
  if (profile.do_not_contact()) return ExitReason::kDoNotContact;
  if (current.stage() == events::v1::STAGE_CUSTOMER) return ExitReason::kConverted;
  if (current.stage() == events::v1::STAGE_CONTACTED ||
      current.stage() == events::v1::STAGE_OPPORTUNITY) {
    return ExitReason::kWithSales;
  }
  if (current.category() == events::v1::CATEGORY_SALES_READY &&
      current.stage() != events::v1::STAGE_LOST) {
    return ExitReason::kSalesReady;
  }
  return ExitReason::kNone;
}

bool EngagementHolds(const config::v1::Engagement& condition, const PreviousTouch& previous) {
  if (condition.kind() == config::v1::Engagement::KIND_UNSPECIFIED) return true;
  auto in_window = [&](const std::optional<absl::Time>& at) {
    if (!previous.sent || !at.has_value()) return false;
    return condition.within_days() <= 0 ||
           *at <= previous.sent_at + absl::Hours(24 * condition.within_days());
  };
  const bool clicked = in_window(previous.clicked_at);
  // A click implies the message was opened, even when the open pixel was blocked.
  const bool opened = clicked || in_window(previous.opened_at);
  switch (condition.kind()) {
    case config::v1::Engagement::KIND_OPENED:
      return opened;
    case config::v1::Engagement::KIND_CLICKED:
      return clicked;
    case config::v1::Engagement::KIND_NOT_ACTED:
      return !opened;
    default:
      return true;
  }
}

StepPlan PlanStep(const Track& track, int step_index, absl::Time previous_due_or_enrolled,
                  const LeadProfile& profile, const DeliveryPolicy& policy,
                  const TouchHistory& history, absl::Time now, const PreviousTouch& previous) {
  StepPlan plan;
  if (step_index < 0 || step_index >= track.steps_size()) {
    plan.action = StepPlan::Action::kCompleted;
    plan.due_at = previous_due_or_enrolled;
    plan.reason =
        absl::StrCat("track '", track.id(), "' finished after ", track.steps_size(), " steps");
    return plan;
  }
  const config::v1::Step& step = track.steps(step_index);
  plan.due_at = previous_due_or_enrolled + absl::Hours(step.delay_hours());
  const std::string channel = rules::EnumValueName(step.channel());

  // Who may be contacted comes before when: a step the lead cannot receive is skipped at once
  // rather than waiting for a slot it will never use.
  plan.action = StepPlan::Action::kSkip;
  if (!EngagementHolds(step.if_previous(), previous)) {
    const int judged = JudgedStep(step, step_index);
    plan.reason = step.if_previous().kind() == config::v1::Engagement::KIND_NOT_ACTED
                      ? absl::StrCat("branch not taken: the lead acted on step ", judged)
                      : absl::StrCat("branch not taken: step ", judged, " not ",
                                     rules::EnumValueName(step.if_previous().kind()));
    return plan;
  }
  if (profile.do_not_contact()) {
    plan.reason = "lead asked not to be contacted";
    return plan;
  }
  const events::v1::Consent* consent = rules::LatestConsent(profile, step.channel());
  if (consent == nullptr || !consent->granted()) {
    plan.reason =
        absl::StrCat("no ", channel, " consent", consent != nullptr ? " (withdrawn)" : "");
    return plan;
  }
  if (AddressFor(profile, step.channel()).empty()) {
    plan.reason = absl::StrCat("no ", AddressName(step.channel()), " for ", channel);
    return plan;
  }

  const absl::TimeZone fallback = rules::TimeZoneOr(policy.default_time_zone, absl::UTCTimeZone());
  const absl::TimeZone zone = rules::TimeZoneOr(profile.time_zone(), fallback);
  const bool quiet_hours_apply = step.channel() != events::v1::CHANNEL_RETARGETING;

  std::vector<std::string> reasons;
  absl::Time send_at = std::max(now, plan.due_at);
  if (plan.due_at > now) reasons.push_back(absl::StrCat("due at ", FormatUtc(plan.due_at)));
  bool capped = false;
  bool quiet = false;
  // The constraints interact (a cap expiry can land in quiet hours and vice versa), so apply
  // them until neither moves the time. Time only moves forward, each cap move lets at least
  // one recorded touch leave the window for good, and a quiet-hours move needs a cap move
  // before it can recur, so this ends within 2 * touches + 2 passes.
  const size_t max_passes = 2 * history.sent_at.size() + 4;
  for (size_t pass = 0; pass < max_passes; ++pass) {
    const absl::Time after_cap = AfterFrequencyCap(send_at, policy, history);
    capped = capped || after_cap != send_at;
    const absl::Time after_quiet =
        quiet_hours_apply ? AfterQuietHours(after_cap, policy, zone) : after_cap;
    quiet = quiet || after_quiet != after_cap;
    if (after_quiet == send_at) break;
    send_at = after_quiet;
  }
  if (capped) {
    reasons.push_back(absl::StrCat("frequency cap (", policy.max_touches, " touches in ",
                                   DurationText(policy.cap_window), ")"));
  }
  if (quiet) {
    reasons.push_back(absl::StrCat("quiet hours ", ClockText(policy.quiet_start_minute), "-",
                                   ClockText(policy.quiet_end_minute), " ", zone.name()));
  }

  plan.send_at = send_at;
  if (send_at == now) {
    plan.action = StepPlan::Action::kSendNow;
    plan.reason = absl::StrCat("step ", step_index, " (", channel, ") due");
  } else {
    plan.action = StepPlan::Action::kDefer;
    plan.reason =
        absl::StrCat("deferred to ", FormatUtc(send_at), ": ", absl::StrJoin(reasons, "; "));
  }
  return plan;
}

std::string TouchId(absl::string_view lead_id, absl::string_view track_id, int step, int attempt) {
  return absl::StrCat(EscapeIdPart(lead_id), ":", EscapeIdPart(track_id), ":", step, ":", attempt);
}

std::string EnrollmentId(absl::string_view lead_id, absl::string_view track_id, int attempt) {
  return absl::StrCat(EscapeIdPart(lead_id), ":", EscapeIdPart(track_id), ":", attempt);
}

events::v1::NurtureTouch BuildTouch(const LeadProfile& profile,
                                    const events::v1::ScoreSnapshot& score, const Track& track,
                                    int step_index, int attempt, absl::Time due_at,
                                    absl::string_view content_id) {
  const config::v1::Step& step = track.steps(step_index);
  events::v1::NurtureTouch touch;
  touch.set_touch_id(TouchId(profile.lead_id(), track.id(), step_index, attempt));
  touch.mutable_envelope()->set_event_id(touch.touch_id());
  touch.mutable_envelope()->set_lead_id(profile.lead_id());
  touch.set_channel(step.channel());
  touch.set_track_id(track.id());
  touch.set_step(step_index);
  touch.set_attempt(attempt);
  touch.set_content_id(content_id.empty() ? step.content_id() : std::string(content_id));
  *touch.mutable_due_at() = rules::ToTimestamp(due_at);
  touch.set_address(AddressFor(profile, step.channel()));

  auto& personalisation = *touch.mutable_personalisation();
  auto put = [&](const char* key, const std::string& value) {
    if (!value.empty()) personalisation[key] = value;
  };
  put("first_name", profile.first_name());
  put("last_name", profile.last_name());
  put("company", profile.company());
  if (!profile.interests().empty()) put("interest", profile.interests(0));
  if (!score.segments().empty()) put("segment", score.segments(0));
  return touch;
}

}  // namespace leadflow::nurturing
