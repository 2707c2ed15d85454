// The routing engine: which qualified leads to route, to which team, to which rep, by when the
// rep must act (speed-to-lead SLA), and what happens when they do not.
//
// Contract:
// - Pure: values in, decisions out. No I/O, no clock (`now` is passed in), no randomness. Rep
//   rotation state is a plain cursor the caller stores and passes back, so the same inputs
//   always give the same decision and a replayed event reproduces it.
// - CompileRoutingRules validates a rule file once, at start-up and reload; the result is
//   immutable and may be shared by any number of threads.
// - Rep time zones are read from the system tzdata once per zone and cached by absl (see
//   common/rules/time_util.h); an unloadable zone in unvalidated input counts as "not working".
//
// Flow: ShouldRoute (did the lead just become routable?) -> MatchTeam (first matching rule, else
// the default team) -> PickRep with the team's strategy (nullopt: queue in the team) ->
// SlaDeadline. On an SLA breach, NextAfterSlaBreach picks another rep or escalates.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/rules/condition.h"
#include "leadflow/config/v1/routing_rules.pb.h"
#include "leadflow/events/v1/lead.pb.h"
#include "leadflow/events/v1/scoring.pb.h"

namespace leadflow::routing {

// The rule id reported when no rule matched and the lead went to the default team.
inline constexpr absl::string_view kDefaultRuleId = "default";
// The escalation target that means "the team's manager" rather than another team.
inline constexpr absl::string_view kEscalateToManager = "manager";

struct RouteDecision;

// A validated, immutable routing rule set. Build with CompileRoutingRules.
class CompiledRoutingRules {
 public:
  const std::string& version() const { return version_; }
  // The category from which leads are routed (sales_ready unless the file says qualified);
  // a rule may set its own (RouteDecision::route_at).
  events::v1::Category route_at() const { return route_at_; }
  // The lowest threshold of the file and its rules: a score below it can never route.
  events::v1::Category min_route_at() const { return min_route_at_; }
  const std::string& default_team() const { return default_team_; }
  // The team with `id`, or null.
  const config::v1::Team* FindTeam(absl::string_view id) const;
  const std::vector<config::v1::Team>& teams() const { return teams_; }
  // The rule file this was compiled from (to lay team overrides over it, see WithTeams).
  const config::v1::RoutingRules& source() const { return source_; }

 private:
  struct Rule {
    std::string id;
    std::string team;
    rules::CompiledConditions when;
    events::v1::Category route_at;
  };

  CompiledRoutingRules() = default;

  friend absl::StatusOr<std::shared_ptr<const CompiledRoutingRules>> CompileRoutingRules(
      const config::v1::RoutingRules& rules);
  friend RouteDecision MatchTeam(const CompiledRoutingRules& rules,
                                 const events::v1::LeadProfile& profile,
                                 const events::v1::ScoreSnapshot& score);

  config::v1::RoutingRules source_;
  std::string version_;
  events::v1::Category route_at_ = events::v1::CATEGORY_SALES_READY;
  events::v1::Category min_route_at_ = events::v1::CATEGORY_SALES_READY;
  std::vector<Rule> rules_;
  std::string default_team_;
  std::vector<config::v1::Team> teams_;
};

// Validates `rules`. InvalidArgument, naming the path, when: route_at (of the file or of a rule)
// is not "", "qualified" or "sales_ready"; a team id is empty or repeated; a team has no reps;
// sla_minutes < 0; escalate_to is not "", "manager" or another team's id; queue_timeout_minutes <
// 0, or > 0 without escalate_to; a rep id is empty or repeated (across all teams: a rep's load and
// presence are per rep); weight is not in 0..1000 (0 means the default, 1); max_open_leads,
// daily_quota or monthly_quota < 0; a rep with working hours has no time zone, or a time zone is
// not a loadable IANA name; working hours are not "HH:MM" (end may be "24:00"), start equals end,
// or a day is outside 1..7; a rule id is empty or repeated, names no existing team, or has an
// invalid condition (profile and score fields); default_team is empty or unknown.
absl::StatusOr<std::shared_ptr<const CompiledRoutingRules>> CompileRoutingRules(
    const config::v1::RoutingRules& rules);

// `base` with `teams` laid over it: a team replaces the base team of the same id (in place, so
// the file order of teams is kept); teams the base does not have are appended in the order
// given. Rules and the default team are the base's. Compile the result to validate it.
config::v1::RoutingRules WithTeams(const config::v1::RoutingRules& base,
                                   const std::vector<config::v1::Team>& teams);

// True when the lead should be routed now: `current` reaches route_at and `previous` did not
// (a fresh crossing, so a lead hovering at the threshold is routed once), or the caller starts a
// new qualification episode (after a recycle or an explicit re-route) and `current` reaches it.
bool ShouldRoute(const CompiledRoutingRules& rules, const events::v1::ScoreSnapshot& previous,
                 const events::v1::ScoreSnapshot& current, bool new_episode = false);

// Where a lead goes.
struct RouteDecision {
  std::string team_id;
  // The matching rule's id, or kDefaultRuleId.
  std::string rule_id;
  // e.g. "country in [GB, UK] and interests contains shoes → uk-fashion (rule uk-shoes)".
  std::string reason;
  // The threshold for this lead: the matching rule's route_at, else the file's.
  events::v1::Category route_at = events::v1::CATEGORY_SALES_READY;
};

// ShouldRoute with the threshold of the rule the lead matched (decision.route_at) instead of
// the file's.
bool ShouldRoute(const RouteDecision& decision, const events::v1::ScoreSnapshot& previous,
                 const events::v1::ScoreSnapshot& current, bool new_episode = false);

// The first rule (in file order) whose conditions hold for the lead and its score, else the
// default team.
RouteDecision MatchTeam(const CompiledRoutingRules& rules, const events::v1::LeadProfile& profile,
                        const events::v1::ScoreSnapshot& score);

// A rep's presence as the routing service last heard it.
enum class Presence { kAvailable, kAway, kOutOfOffice };

// One rep as PickRep sees it: configuration plus live state. The order of a team's RepStates is
// the rotation order; keep it stable (e.g. the order of team.reps).
struct RepState {
  config::v1::Rep rep;
  Presence presence = Presence::kAvailable;
  // When an away / out-of-office period ends; unset = until the rep says otherwise.
  std::optional<absl::Time> presence_until;
  // Leads assigned to the rep and not yet closed.
  int64_t open_leads = 0;
  // Leads assigned to the rep today (the caller decides whose "today").
  int64_t assigned_today = 0;
  // Leads assigned to the rep this calendar month (the caller decides whose month).
  int64_t assigned_this_month = 0;
};

// RepStates for every rep of `team`, in team order, all available with no load. A starting point
// for callers that then overlay what the store knows.
std::vector<RepState> RepStatesFor(const config::v1::Team& team);

// True when `rep` works at `now`: no working hours configured, or `now` in its time zone falls in
// one of its windows. A window with start > end runs overnight (22:00-06:00 on Monday covers
// Monday 22:00 to Tuesday 06:00); `days` name the day the window starts.
bool WithinWorkingHours(const config::v1::Rep& rep, absl::Time now);

// Why `state` cannot take a lead at `now` ("away", "outside working hours", "at max open leads
// (20)", "daily quota reached (10)", "monthly quota reached (200)"), or the empty string when it
// can.
std::string IneligibleReason(const RepState& state, absl::Time now);

// A chosen rep.
struct RepChoice {
  std::string rep_id;
  // Position of the rep in the states passed in.
  size_t index = 0;
  // Cursor to store and pass to the next PickRep for this team.
  uint64_t next_cursor = 0;
  // e.g. "round-robin" or "least loaded (3 open)".
  std::string reason;
};

// Chooses a rep of `team` among `states` (eligible: available, or the away period ended; within
// working hours; under max_open_leads, daily_quota and monthly_quota, 0 = no cap), by
// team.strategy:
//   ROUND_ROBIN (and UNSPECIFIED)  the first eligible rep at or after cursor mod n.
//   WEIGHTED_ROUND_ROBIN           the first eligible rep at or after cursor mod W in a fixed,
//                                  smoothly interleaved sequence where each rep appears `weight`
//                                  times (W = sum of weights): a,a,b,a,c,a,a for 5:1:1.
//   LEAST_LOADED                   the eligible rep with the fewest open leads; ties go to the
//                                  first in cursor order, so equal reps still take turns.
// next_cursor is one past the position used, so consecutive calls rotate. Returns nullopt when
// nobody is eligible: the lead waits in the team queue.
std::optional<RepChoice> PickRep(const config::v1::Team& team, const std::vector<RepState>& states,
                                 uint64_t cursor, absl::Time now);

// PickRep with the reps in `excluded` ruled out ("already had the lead"), e.g. when a rep
// rejected the lead: it goes to a rep who has not had it in this episode, or nobody.
std::optional<RepChoice> PickRepExcluding(const config::v1::Team& team,
                                          const std::vector<RepState>& states, uint64_t cursor,
                                          absl::Time now, const std::vector<std::string>& excluded);

// When the assigned rep must have acted: assigned_at + sla_minutes, or InfiniteFuture when the
// team has no SLA.
absl::Time SlaDeadline(const config::v1::Team& team, absl::Time assigned_at);

// When a lead queued in `team` at `queued_at` escalates to team.escalate_to because nobody
// could take it: queued_at + queue_timeout_minutes, or InfiniteFuture when the team sets no
// timeout (the lead waits until a rep can take it).
absl::Time QueueDeadline(const config::v1::Team& team, absl::Time queued_at);

// What to do when a rep let the SLA pass.
struct SlaBreachDecision {
  enum class Action {
    // Give the lead to `rep_id`.
    kReassign,
    // Hand the lead to `escalate_to` (a team id, or "manager").
    kEscalate,
    // The team has nowhere to escalate to: the lead waits in the team queue.
    kQueue,
  };
  Action action = Action::kQueue;
  std::string rep_id;
  uint64_t next_cursor = 0;
  std::string escalate_to;
  std::string reason;
};

// After `breaching_rep_id` let the SLA pass: picks (with the team's strategy) a rep that has not
// had the lead this episode — never the breaching rep nor any in `reps_tried` — or, when no such
// rep can take it now (every rep has had it, or the rest are unavailable), escalates to
// team.escalate_to. Waiting for an unavailable rep would defeat the SLA, hence escalation in
// both cases.
SlaBreachDecision NextAfterSlaBreach(const config::v1::Team& team,
                                     const std::vector<RepState>& states,
                                     const std::vector<std::string>& reps_tried,
                                     absl::string_view breaching_rep_id, uint64_t cursor,
                                     absl::Time now);

}  // namespace leadflow::routing
