#include "services/routing/engine.h"

#include <algorithm>
#include <numeric>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/civil_time.h"
#include "common/rules/field_source.h"
#include "common/rules/time_util.h"

namespace leadflow::routing {
namespace {

using config::v1::Rep;
using config::v1::RoutingRules;
using config::v1::Team;
using config::v1::WorkingHours;

constexpr int kMaxWeight = 1000;

absl::Status Invalid(absl::string_view path, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", message));
}

// proto3 cannot tell an unset weight from 0, and the schema says the default is 1.
int EffectiveWeight(const Rep& rep) { return rep.weight() > 0 ? rep.weight() : 1; }

absl::Status ValidateWorkingHours(const WorkingHours& hours, absl::string_view path) {
  const std::optional<int> start = rules::ParseClockMinutes(hours.start());
  if (!start.has_value()) {
    return Invalid(absl::StrCat(path, ".start"),
                   absl::StrCat("'", hours.start(), "' is not a time \"HH:MM\" (00:00-23:59)"));
  }
  const std::optional<int> end = rules::ParseClockMinutes(hours.end(), /*allow_end_of_day=*/true);
  if (!end.has_value()) {
    return Invalid(absl::StrCat(path, ".end"),
                   absl::StrCat("'", hours.end(), "' is not a time \"HH:MM\" (00:00-24:00)"));
  }
  if (*start == *end % (24 * 60)) {
    return Invalid(path, "start equals end: the window is empty (use 00:00-24:00 for all day)");
  }
  for (int i = 0; i < hours.days_size(); ++i) {
    if (hours.days(i) < 1 || hours.days(i) > 7) {
      return Invalid(absl::StrCat(path, ".days[", i, "]"),
                     absl::StrCat(hours.days(i), " is not a day 1 (Monday) .. 7 (Sunday)"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateRep(const Rep& rep, absl::string_view path,
                         absl::flat_hash_set<std::string>& rep_ids) {
  if (rep.id().empty()) return Invalid(absl::StrCat(path, ".id"), "empty rep id");
  if (!rep_ids.insert(rep.id()).second) {
    return Invalid(absl::StrCat(path, ".id"), absl::StrCat("duplicate rep id '", rep.id(),
                                                           "' (rep ids are unique across "
                                                           "teams)"));
  }
  if (rep.weight() < 0 || rep.weight() > kMaxWeight) {
    return Invalid(absl::StrCat(path, ".weight"),
                   absl::StrCat(rep.weight(), " is not in 0..", kMaxWeight, " (0 = default 1)"));
  }
  if (rep.max_open_leads() < 0) {
    return Invalid(absl::StrCat(path, ".max_open_leads"), "must be >= 0 (0 = no cap)");
  }
  if (rep.daily_quota() < 0) {
    return Invalid(absl::StrCat(path, ".daily_quota"), "must be >= 0 (0 = no cap)");
  }
  if (rep.monthly_quota() < 0) {
    return Invalid(absl::StrCat(path, ".monthly_quota"), "must be >= 0 (0 = no cap)");
  }
  if (rep.time_zone().empty()) {
    if (rep.working_hours_size() > 0) {
      return Invalid(absl::StrCat(path, ".time_zone"),
                     "required with working_hours (an IANA name, e.g. 'Europe/London')");
    }
  } else if (absl::StatusOr<absl::TimeZone> zone = rules::LoadIanaTimeZone(rep.time_zone());
             !zone.ok()) {
    return Invalid(absl::StrCat(path, ".time_zone"), zone.status().message());
  }
  for (int i = 0; i < rep.working_hours_size(); ++i) {
    if (absl::Status status = ValidateWorkingHours(rep.working_hours(i),
                                                   absl::StrCat(path, ".working_hours[", i, "]"));
        !status.ok()) {
      return status;
    }
  }
  return absl::OkStatus();
}

bool DayListed(const WorkingHours& hours, int iso_weekday) {
  if (hours.days().empty()) return true;
  for (int day : hours.days()) {
    if (day == iso_weekday) return true;
  }
  return false;
}

// The order in which weighted round-robin visits reps: `weight` slots per rep, interleaved by the
// smooth weighted round-robin rule (each step, every rep gains its weight and the richest rep
// is chosen and pays the total), so a heavy rep's turns are spread out rather than bunched.
// Weights are divided by their gcd first to keep the sequence short.
std::vector<size_t> WeightedSequence(const std::vector<RepState>& states) {
  std::vector<int> weights;
  weights.reserve(states.size());
  int divisor = 0;
  for (const RepState& state : states) {
    weights.push_back(EffectiveWeight(state.rep));
    divisor = std::gcd(divisor, weights.back());
  }
  int total = 0;
  for (int& weight : weights) {
    weight /= divisor;
    total += weight;
  }
  std::vector<size_t> sequence;
  sequence.reserve(total);
  std::vector<int64_t> current(weights.size(), 0);
  for (int step = 0; step < total; ++step) {
    size_t best = 0;
    for (size_t i = 0; i < weights.size(); ++i) {
      current[i] += weights[i];
      if (current[i] > current[best]) best = i;  // ties: the earlier rep
    }
    current[best] -= total;
    sequence.push_back(best);
  }
  return sequence;
}

// PickRep with some reps ruled out (those that already had the lead this episode).
std::optional<RepChoice> PickRepExcluding(const Team& team, const std::vector<RepState>& states,
                                          uint64_t cursor, absl::Time now,
                                          const absl::flat_hash_set<std::string>& excluded) {
  if (states.empty()) return std::nullopt;
  // Eligibility is computed at most once per rep: it may load a time zone.
  std::vector<std::optional<std::string>> why_not(states.size());
  auto eligible = [&](size_t index) {
    if (!why_not[index].has_value()) {
      why_not[index] = excluded.contains(states[index].rep.id())
                           ? std::string("already had the lead")
                           : IneligibleReason(states[index], now);
    }
    return why_not[index]->empty();
  };
  auto skipped_note = [&](const std::vector<size_t>& skipped) {
    std::vector<std::string> parts;
    for (size_t index : skipped) {
      parts.push_back(absl::StrCat(states[index].rep.id(), " (", *why_not[index], ")"));
    }
    return parts.empty() ? std::string() : absl::StrCat("; skipped ", absl::StrJoin(parts, ", "));
  };

  const size_t n = states.size();
  switch (team.strategy()) {
    case config::v1::STRATEGY_LEAST_LOADED: {
      std::optional<size_t> best;
      uint64_t best_offset = 0;
      for (uint64_t offset = 0; offset < n; ++offset) {
        const size_t index = (cursor + offset) % n;
        if (!eligible(index)) continue;
        // Strictly fewer: among equals the first in cursor order wins, so ties rotate.
        if (!best.has_value() || states[index].open_leads < states[*best].open_leads) {
          best = index;
          best_offset = offset;
        }
      }
      if (!best.has_value()) return std::nullopt;
      return RepChoice{states[*best].rep.id(), *best, cursor + best_offset + 1,
                       absl::StrCat("least loaded (", states[*best].open_leads, " open)")};
    }
    case config::v1::STRATEGY_WEIGHTED_ROUND_ROBIN: {
      const std::vector<size_t> sequence = WeightedSequence(states);
      std::vector<size_t> skipped;
      for (uint64_t offset = 0; offset < sequence.size(); ++offset) {
        const size_t index = sequence[(cursor + offset) % sequence.size()];
        if (!eligible(index)) {
          if (std::find(skipped.begin(), skipped.end(), index) == skipped.end()) {
            skipped.push_back(index);
          }
          continue;
        }
        return RepChoice{
            states[index].rep.id(), index, cursor + offset + 1,
            absl::StrCat("weighted round-robin (weight ", EffectiveWeight(states[index].rep), ")",
                         skipped_note(skipped))};
      }
      return std::nullopt;
    }
    default: {
      std::vector<size_t> skipped;
      for (uint64_t offset = 0; offset < n; ++offset) {
        const size_t index = (cursor + offset) % n;
        if (!eligible(index)) {
          skipped.push_back(index);
          continue;
        }
        return RepChoice{states[index].rep.id(), index, cursor + offset + 1,
                         absl::StrCat("round-robin", skipped_note(skipped))};
      }
      return std::nullopt;
    }
  }
}

}  // namespace

const Team* CompiledRoutingRules::FindTeam(absl::string_view id) const {
  for (const Team& team : teams_) {
    if (team.id() == id) return &team;
  }
  return nullptr;
}

namespace {

// A route_at value: "" is `unset`.
absl::StatusOr<events::v1::Category> ParseRouteAt(const std::string& value,
                                                  events::v1::Category unset,
                                                  const std::string& path) {
  if (value.empty()) return unset;
  if (value == "sales_ready") return events::v1::CATEGORY_SALES_READY;
  if (value == "qualified") return events::v1::CATEGORY_QUALIFIED;
  return Invalid(path, absl::StrCat("'", value, "' is not qualified or sales_ready"));
}

}  // namespace

absl::StatusOr<std::shared_ptr<const CompiledRoutingRules>> CompileRoutingRules(
    const RoutingRules& rules) {
  std::shared_ptr<CompiledRoutingRules> out(new CompiledRoutingRules());
  out->source_ = rules;
  out->version_ = rules.version();

  absl::StatusOr<events::v1::Category> route_at =
      ParseRouteAt(rules.route_at(), events::v1::CATEGORY_SALES_READY, "routing.route_at");
  if (!route_at.ok()) return route_at.status();
  out->route_at_ = *route_at;
  out->min_route_at_ = *route_at;

  absl::flat_hash_set<std::string> team_ids;
  for (int i = 0; i < rules.teams_size(); ++i) {
    const Team& team = rules.teams(i);
    const std::string path = absl::StrCat("routing.teams[", i, "]");
    if (team.id().empty()) return Invalid(absl::StrCat(path, ".id"), "empty team id");
    if (team.id() == kEscalateToManager) {
      return Invalid(absl::StrCat(path, ".id"), "'manager' is reserved for escalation");
    }
    if (!team_ids.insert(team.id()).second) {
      return Invalid(absl::StrCat(path, ".id"),
                     absl::StrCat("duplicate team id '", team.id(), "'"));
    }
  }
  absl::flat_hash_set<std::string> rep_ids;
  for (int i = 0; i < rules.teams_size(); ++i) {
    const Team& team = rules.teams(i);
    const std::string path = absl::StrCat("routing.teams[", i, "]");
    if (team.reps().empty()) {
      return Invalid(absl::StrCat(path, ".reps"),
                     absl::StrCat("team '", team.id(),
                                  "' has no reps; its leads would never be "
                                  "assigned"));
    }
    if (team.sla_minutes() < 0) {
      return Invalid(absl::StrCat(path, ".sla_minutes"), "must be >= 0 (0 = no SLA)");
    }
    if (team.queue_timeout_minutes() < 0) {
      return Invalid(absl::StrCat(path, ".queue_timeout_minutes"),
                     "must be >= 0 (0 = wait until a rep can take the lead)");
    }
    if (team.queue_timeout_minutes() > 0 && team.escalate_to().empty()) {
      return Invalid(absl::StrCat(path, ".queue_timeout_minutes"),
                     "needs escalate_to: where the lead goes when the wait times out");
    }
    if (!team.escalate_to().empty() && team.escalate_to() != kEscalateToManager) {
      if (!team_ids.contains(team.escalate_to())) {
        return Invalid(absl::StrCat(path, ".escalate_to"),
                       absl::StrCat("unknown team '", team.escalate_to(), "'"));
      }
      if (team.escalate_to() == team.id()) {
        return Invalid(absl::StrCat(path, ".escalate_to"), "a team cannot escalate to itself");
      }
    }
    for (int j = 0; j < team.reps_size(); ++j) {
      if (absl::Status status =
              ValidateRep(team.reps(j), absl::StrCat(path, ".reps[", j, "]"), rep_ids);
          !status.ok()) {
        return status;
      }
    }
    out->teams_.push_back(team);
  }

  absl::flat_hash_set<std::string> rule_ids;
  for (int i = 0; i < rules.rules_size(); ++i) {
    const config::v1::RoutingRule& rule = rules.rules(i);
    const std::string path = absl::StrCat("routing.rules[", i, "]");
    if (rule.id().empty()) return Invalid(absl::StrCat(path, ".id"), "empty rule id");
    if (rule.id() == kDefaultRuleId) {
      return Invalid(absl::StrCat(path, ".id"), "'default' is reserved for the default team");
    }
    if (!rule_ids.insert(rule.id()).second) {
      return Invalid(absl::StrCat(path, ".id"),
                     absl::StrCat("duplicate rule id '", rule.id(), "'"));
    }
    if (!team_ids.contains(rule.team())) {
      return Invalid(absl::StrCat(path, ".team"),
                     absl::StrCat("unknown team '", rule.team(), "' (rule '", rule.id(), "')"));
    }
    absl::StatusOr<rules::CompiledConditions> when =
        rules::CompileLeadConditions(rule.when(), absl::StrCat(path, ".when"),
                                     rules::kProfileFields | rules::kScoreFields, rule.id());
    if (!when.ok()) return when.status();
    absl::StatusOr<events::v1::Category> rule_route_at =
        ParseRouteAt(rule.route_at(), out->route_at_, absl::StrCat(path, ".route_at"));
    if (!rule_route_at.ok()) return rule_route_at.status();
    out->min_route_at_ = std::min(out->min_route_at_, *rule_route_at);
    out->rules_.push_back({rule.id(), rule.team(), *std::move(when), *rule_route_at});
  }

  if (rules.default_team().empty()) {
    return Invalid("routing.default_team", "required: where leads go when no rule matches");
  }
  if (!team_ids.contains(rules.default_team())) {
    return Invalid("routing.default_team",
                   absl::StrCat("unknown team '", rules.default_team(), "'"));
  }
  out->default_team_ = rules.default_team();
  return std::shared_ptr<const CompiledRoutingRules>(std::move(out));
}

RoutingRules WithTeams(const RoutingRules& base, const std::vector<Team>& teams) {
  RoutingRules out = base;
  for (const Team& team : teams) {
    auto same = std::find_if(out.mutable_teams()->begin(), out.mutable_teams()->end(),
                             [&](const Team& t) { return t.id() == team.id(); });
    if (same != out.mutable_teams()->end()) {
      *same = team;
    } else {
      *out.add_teams() = team;
    }
  }
  return out;
}

namespace {

bool Crosses(events::v1::Category route_at, const events::v1::ScoreSnapshot& previous,
             const events::v1::ScoreSnapshot& current, bool new_episode) {
  // Category numbers grow with temperature (cold < warm < qualified < sales_ready).
  const bool reaches = current.category() >= route_at;
  const bool reached_before = previous.category() >= route_at;
  return reaches && (new_episode || !reached_before);
}

}  // namespace

bool ShouldRoute(const CompiledRoutingRules& rules, const events::v1::ScoreSnapshot& previous,
                 const events::v1::ScoreSnapshot& current, bool new_episode) {
  return Crosses(rules.route_at(), previous, current, new_episode);
}

bool ShouldRoute(const RouteDecision& decision, const events::v1::ScoreSnapshot& previous,
                 const events::v1::ScoreSnapshot& current, bool new_episode) {
  return Crosses(decision.route_at, previous, current, new_episode);
}

RouteDecision MatchTeam(const CompiledRoutingRules& rules, const events::v1::LeadProfile& profile,
                        const events::v1::ScoreSnapshot& score) {
  const rules::LeadFields fields(profile, &score);
  for (const CompiledRoutingRules::Rule& rule : rules.rules_) {
    if (rule.when.Evaluate(fields)) {
      return RouteDecision{
          rule.team, rule.id,
          absl::StrCat(rule.when.Describe(), " → ", rule.team, " (rule ", rule.id, ")"),
          rule.route_at};
    }
  }
  return RouteDecision{rules.default_team_, std::string(kDefaultRuleId),
                       absl::StrCat("no rule matched → ", rules.default_team_, " (default)"),
                       rules.route_at_};
}

std::vector<RepState> RepStatesFor(const Team& team) {
  std::vector<RepState> states;
  states.reserve(team.reps_size());
  for (const Rep& rep : team.reps()) {
    RepState state;
    state.rep = rep;
    states.push_back(std::move(state));
  }
  return states;
}

bool WithinWorkingHours(const Rep& rep, absl::Time now) {
  if (rep.working_hours().empty()) return true;
  absl::StatusOr<absl::TimeZone> zone = rules::LoadIanaTimeZone(rep.time_zone());
  if (!zone.ok()) return false;  // fail closed: never assign on a guess
  const absl::CivilSecond local = absl::ToCivilSecond(now, *zone);
  const int minute = rules::MinuteOfDay(local);
  const absl::CivilDay today(local);
  const int weekday = rules::IsoWeekday(today);
  const int yesterday = rules::IsoWeekday(today - 1);
  for (const WorkingHours& hours : rep.working_hours()) {
    const std::optional<int> start = rules::ParseClockMinutes(hours.start());
    const std::optional<int> end = rules::ParseClockMinutes(hours.end(), true);
    if (!start.has_value() || !end.has_value()) continue;
    if (*start < *end) {
      if (DayListed(hours, weekday) && minute >= *start && minute < *end) return true;
    } else {
      // Overnight: the evening part belongs to today's window, the early-morning part to the
      // window that started yesterday.
      if (DayListed(hours, weekday) && minute >= *start) return true;
      if (DayListed(hours, yesterday) && minute < *end) return true;
    }
  }
  return false;
}

std::string IneligibleReason(const RepState& state, absl::Time now) {
  if (state.presence != Presence::kAvailable) {
    const bool back = state.presence_until.has_value() && *state.presence_until <= now;
    if (!back) return state.presence == Presence::kAway ? "away" : "out of office";
  }
  if (!WithinWorkingHours(state.rep, now)) return "outside working hours";
  if (state.rep.max_open_leads() > 0 && state.open_leads >= state.rep.max_open_leads()) {
    return absl::StrCat("at max open leads (", state.rep.max_open_leads(), ")");
  }
  if (state.rep.daily_quota() > 0 && state.assigned_today >= state.rep.daily_quota()) {
    return absl::StrCat("daily quota reached (", state.rep.daily_quota(), ")");
  }
  if (state.rep.monthly_quota() > 0 && state.assigned_this_month >= state.rep.monthly_quota()) {
    return absl::StrCat("monthly quota reached (", state.rep.monthly_quota(), ")");
  }
  return "";
}

std::optional<RepChoice> PickRep(const Team& team, const std::vector<RepState>& states,
                                 uint64_t cursor, absl::Time now) {
  return PickRepExcluding(team, states, cursor, now, absl::flat_hash_set<std::string>());
}

std::optional<RepChoice> PickRepExcluding(const Team& team, const std::vector<RepState>& states,
                                          uint64_t cursor, absl::Time now,
                                          const std::vector<std::string>& excluded) {
  return PickRepExcluding(team, states, cursor, now,
                          absl::flat_hash_set<std::string>(excluded.begin(), excluded.end()));
}

absl::Time SlaDeadline(const Team& team, absl::Time assigned_at) {
  if (team.sla_minutes() <= 0) return absl::InfiniteFuture();
  return assigned_at + absl::Minutes(team.sla_minutes());
}

absl::Time QueueDeadline(const Team& team, absl::Time queued_at) {
  if (team.queue_timeout_minutes() <= 0 || team.escalate_to().empty()) {
    return absl::InfiniteFuture();
  }
  return queued_at + absl::Minutes(team.queue_timeout_minutes());
}

SlaBreachDecision NextAfterSlaBreach(const Team& team, const std::vector<RepState>& states,
                                     const std::vector<std::string>& reps_tried,
                                     absl::string_view breaching_rep_id, uint64_t cursor,
                                     absl::Time now) {
  absl::flat_hash_set<std::string> excluded(reps_tried.begin(), reps_tried.end());
  excluded.insert(std::string(breaching_rep_id));

  SlaBreachDecision decision;
  const std::string breach =
      absl::StrCat("SLA of ", team.sla_minutes(), " min breached by ", breaching_rep_id);
  if (std::optional<RepChoice> choice = PickRepExcluding(team, states, cursor, now, excluded)) {
    decision.action = SlaBreachDecision::Action::kReassign;
    decision.rep_id = choice->rep_id;
    decision.next_cursor = choice->next_cursor;
    decision.reason =
        absl::StrCat(breach, "; reassigned to ", choice->rep_id, " (", choice->reason, ")");
    return decision;
  }
  bool everyone_tried = true;
  for (const RepState& state : states) {
    everyone_tried = everyone_tried && excluded.contains(state.rep.id());
  }
  const absl::string_view why =
      everyone_tried ? "every rep has had the lead" : "no other rep can take it now";
  decision.next_cursor = cursor;
  if (team.escalate_to().empty()) {
    decision.action = SlaBreachDecision::Action::kQueue;
    decision.reason = absl::StrCat(breach, "; ", why, "; no escalation set, queued in ", team.id());
    return decision;
  }
  decision.action = SlaBreachDecision::Action::kEscalate;
  decision.escalate_to = team.escalate_to();
  decision.reason = absl::StrCat(breach, "; ", why, "; escalated to ", team.escalate_to());
  return decision;
}

}  // namespace leadflow::routing
