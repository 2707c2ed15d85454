#include "services/routing/handler.h"

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/events/envelope.h"
#include "common/kafka/memo.h"
#include "common/redis/keys.h"
#include "common/rules/time_util.h"
#include "leadflow/events/v1/routing.pb.h"
#include "leadflow/events/v1/scoring.pb.h"
#include "spdlog/spdlog.h"

namespace leadflow::routing {

using config::v1::Rep;
using config::v1::Team;
using events::v1::LeadOutcome;
using events::v1::LeadRouted;
using internal::v1::AssignmentState;
using internal::v1::RoutingAssignment;
using internal::v1::RoutingTeamState;

// What every input contributes besides its payload.
struct RoutingHandler::Input : events::InputIdentity {};

struct RoutingHandler::LeadChange {
  // In: the stored assignment (empty when none). Out: the one to store.
  RoutingAssignment assignment;
  bool assignment_exists = false;
  // In: the team's stored record. Out: the one to store.
  RoutingTeamState team;
  bool write_assignment = false;
  bool delete_assignment = false;
  bool write_team = false;
  // Index updates (rep open sets, team queues), applied atomically with the records.
  std::vector<redis::Args> commands;
  std::vector<kafka::OutboundMessage> outputs;
};

namespace {

// Re-reads when a lead's assignment moved to another team between reading it and applying.
constexpr int kMaxTeamLookups = 8;

absl::StatusOr<RoutingHandler::Input> InputOf(const kafka::ConsumedMessage& message,
                                              const events::v1::Envelope& envelope,
                                              const std::string& payload_lead_id) {
  absl::StatusOr<events::InputIdentity> identity =
      events::IdentifyInput(message, envelope, payload_lead_id, absl::InfinitePast());
  if (!identity.ok()) return identity.status();
  return RoutingHandler::Input{*std::move(identity)};
}

bool IsOpen(AssignmentState state) {
  return state == internal::v1::ASSIGNMENT_STATE_ASSIGNED ||
         state == internal::v1::ASSIGNMENT_STATE_ACCEPTED ||
         state == internal::v1::ASSIGNMENT_STATE_CONTACTED;
}

// The rep's calendar day at `now`, which "assigned today" counts.
std::string RepDay(const Rep& rep, absl::Time now) {
  return absl::FormatTime("%Y-%m-%d", now, rules::TimeZoneOr(rep.time_zone(), absl::UTCTimeZone()));
}

// The team's reps as PickRep sees them: configuration plus the stored counters. Presence is
// the default (available) until availability is stored (a later issue).
std::vector<RepState> RepStatesOf(const Team& team, const RoutingTeamState& stored,
                                  absl::Time now) {
  std::vector<RepState> states = RepStatesFor(team);
  for (RepState& state : states) {
    auto it = stored.reps().find(state.rep.id());
    if (it == stored.reps().end()) continue;
    state.open_leads = it->second.open_leads();
    state.assigned_today =
        it->second.day() == RepDay(state.rep, now) ? it->second.assigned_today() : 0;
  }
  return states;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const CompiledRoutingRules>> LoadRoutingRules(
    const std::string& path) {
  return config::LoadRules<config::v1::RoutingRules, CompiledRoutingRules>(
      path, [](const config::v1::RoutingRules& rules) { return CompileRoutingRules(rules); });
}

RoutingHandler::RoutingHandler(const RoutingRulesSource& rules, RoutingStore& store,
                               const kafka::Topics& topics, const runtime::Clock& clock,
                               RoutingOptions options)
    : rules_(rules), store_(store), topics_(topics), clock_(clock), options_(options) {}

absl::StatusOr<std::vector<kafka::OutboundMessage>> RoutingHandler::HandleScored(
    const kafka::ConsumedMessage& message) {
  events::v1::LeadScored scored;
  if (absl::Status s = events::Decode(message, &scored); !s.ok()) return s;
  absl::StatusOr<Input> input = InputOf(message, scored.envelope(), scored.lead().lead_id());
  if (!input.ok()) return input.status();
  const std::shared_ptr<const CompiledRoutingRules> rules = rules_.Current();
  // Most scores are below the threshold and can never route: no state to read or write.
  if (scored.score().category() < rules->route_at()) return std::vector<kafka::OutboundMessage>{};

  const absl::Time now = clock_.Now();
  const RouteDecision decision = MatchTeam(*rules, scored.lead(), scored.score());
  const Team* team = rules->FindTeam(decision.team_id);
  if (team == nullptr) {
    return absl::InternalError(absl::StrCat("rules route to unknown team ", decision.team_id));
  }
  return Apply(*input, decision.team_id, [&](LeadChange& c) -> absl::Status {
    RoutingAssignment& a = c.assignment;
    // A lost lead's closed assignment waits for the lead to qualify again; any other stored
    // assignment means the lead was routed in this episode already.
    const bool reopen =
        c.assignment_exists && a.state() == internal::v1::ASSIGNMENT_STATE_CLOSED && a.requalify();
    if (c.assignment_exists && !reopen) return absl::OkStatus();
    // Scoring keeps a lost lead at STAGE_LOST until activity after the loss recycles it.
    const bool new_episode = reopen && scored.score().stage() != events::v1::STAGE_LOST;
    if (!ShouldRoute(*rules, scored.previous(), scored.score(), new_episode)) {
      return absl::OkStatus();
    }
    const int32_t episode = c.assignment_exists ? a.episode() + 1 : 1;
    a.Clear();
    a.set_lead_id(input->lead_id);
    a.set_rule_id(decision.rule_id);
    a.set_episode(episode);
    a.set_attempt(1);
    *a.mutable_lead() = scored.lead();
    a.mutable_lead()->set_lead_id(input->lead_id);
    *a.mutable_score() = scored.score();
    AssignOrQueue(*input, *team, {}, now, decision.reason, LeadRouted::KIND_ASSIGNED, "", c);
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<kafka::OutboundMessage>> RoutingHandler::HandleOutcome(
    const kafka::ConsumedMessage& message) {
  LeadOutcome outcome;
  if (absl::Status s = events::Decode(message, &outcome); !s.ok()) return s;
  absl::StatusOr<Input> input = InputOf(message, outcome.envelope(), "");
  if (!input.ok()) return input.status();
  if (outcome.kind() == LeadOutcome::KIND_UNSPECIFIED) {
    return absl::InvalidArgumentError("outcome without kind");
  }
  const std::shared_ptr<const CompiledRoutingRules> rules = rules_.Current();
  const absl::Time now = clock_.Now();

  auto release = [&](const std::string& rep_id, LeadChange& c) {
    auto it = c.team.mutable_reps()->find(rep_id);
    if (it != c.team.mutable_reps()->end() && it->second.open_leads() > 0) {
      it->second.set_open_leads(it->second.open_leads() - 1);
    }
    c.write_team = true;
    c.commands.push_back({"ZREM", RoutingStore::RepOpenKey(rep_id), input->lead_id});
  };

  return Apply(*input, std::nullopt, [&](LeadChange& c) -> absl::Status {
    RoutingAssignment& a = c.assignment;
    // Accept / contact / reject come from the rep holding the lead; a report naming another rep
    // is stale (the lead moved on) and changes nothing.
    const bool from_holder = outcome.rep_id().empty() || outcome.rep_id() == a.rep_id();
    switch (outcome.kind()) {
      case LeadOutcome::KIND_ACCEPTED:
        if (a.state() == internal::v1::ASSIGNMENT_STATE_ASSIGNED && from_holder) {
          a.set_state(internal::v1::ASSIGNMENT_STATE_ACCEPTED);
          c.write_assignment = true;
        }
        break;
      case LeadOutcome::KIND_CONTACTED:
      case LeadOutcome::KIND_QUALIFIED:
        if ((a.state() == internal::v1::ASSIGNMENT_STATE_ASSIGNED ||
             a.state() == internal::v1::ASSIGNMENT_STATE_ACCEPTED) &&
            from_holder) {
          a.set_state(internal::v1::ASSIGNMENT_STATE_CONTACTED);
          c.write_assignment = true;
        }
        break;
      case LeadOutcome::KIND_REJECTED: {
        if (!(a.state() == internal::v1::ASSIGNMENT_STATE_ASSIGNED ||
              a.state() == internal::v1::ASSIGNMENT_STATE_ACCEPTED) ||
            !from_holder) {
          break;
        }
        const std::string rejected_by = a.rep_id();
        release(rejected_by, c);
        const std::vector<std::string> tried(a.reps_tried().begin(), a.reps_tried().end());
        // A team dropped from the rules has no reps left to offer the lead: it stays queued.
        Team dropped;
        dropped.set_id(a.team_id());
        const Team* team = rules->FindTeam(a.team_id());
        AssignOrQueue(*input, team != nullptr ? *team : dropped, tried, now,
                      absl::StrCat("rejected by ", rejected_by,
                                   outcome.reason().empty() ? "" : " (" + outcome.reason() + ")"),
                      LeadRouted::KIND_REASSIGNED, rejected_by, c);
        break;
      }
      case LeadOutcome::KIND_WON:
      case LeadOutcome::KIND_LOST: {
        const bool lost = outcome.kind() == LeadOutcome::KIND_LOST;
        if (IsOpen(a.state())) release(a.rep_id(), c);
        if (a.state() == internal::v1::ASSIGNMENT_STATE_QUEUED) {
          c.commands.push_back({"ZREM", RoutingStore::TeamQueueKey(a.team_id()), input->lead_id});
        } else if (!IsOpen(a.state())) {
          break;  // closed already
        }
        a.set_state(internal::v1::ASSIGNMENT_STATE_CLOSED);
        a.set_closed_reason(
            lost ? absl::StrCat("lost", outcome.reason().empty() ? "" : ": ", outcome.reason())
                 : "won");
        a.set_requalify(lost);
        c.write_assignment = true;
        break;
      }
      default:
        break;
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<kafka::OutboundMessage>> RoutingHandler::HandleErasure(
    const kafka::ConsumedMessage& message) {
  events::v1::LeadErasure erasure;
  if (absl::Status s = events::Decode(message, &erasure); !s.ok()) return s;
  const std::string& lead_id = erasure.envelope().lead_id();
  if (lead_id.empty()) return absl::InvalidArgumentError("erasure without envelope.lead_id");
  absl::StatusOr<Input> input = InputOf(message, erasure.envelope(), "");
  if (!input.ok()) return input.status();

  // First release the lead's hold on its rep, atomically with deleting its assignment, so the
  // team's counters stay right; then delete every key of the lead.
  absl::StatusOr<std::vector<kafka::OutboundMessage>> released =
      Apply(*input, std::nullopt, [&](LeadChange& c) -> absl::Status {
        const RoutingAssignment& a = c.assignment;
        if (IsOpen(a.state())) {
          auto it = c.team.mutable_reps()->find(a.rep_id());
          if (it != c.team.mutable_reps()->end() && it->second.open_leads() > 0) {
            it->second.set_open_leads(it->second.open_leads() - 1);
          }
          c.write_team = true;
        }
        if (c.assignment_exists) {
          if (!a.rep_id().empty()) {
            c.commands.push_back({"ZREM", RoutingStore::RepOpenKey(a.rep_id()), input->lead_id});
          }
          c.commands.push_back({"ZREM", RoutingStore::TeamQueueKey(a.team_id()), input->lead_id});
        }
        c.delete_assignment = true;
        return absl::OkStatus();
      });
  if (!released.ok()) return released.status();

  // Every team and rep the rules know: an assignment racing with the erasure may have put the
  // lead in any of their sets.
  const std::shared_ptr<const CompiledRoutingRules> rules = rules_.Current();
  std::vector<std::string> team_ids;
  std::vector<std::string> rep_ids;
  for (const Team& team : rules->teams()) {
    team_ids.push_back(team.id());
    for (const Rep& rep : team.reps()) rep_ids.push_back(rep.id());
  }
  if (absl::Status s = store_.Erase(lead_id, team_ids, rep_ids, options_.tombstone_ttl); !s.ok()) {
    return s;
  }
  spdlog::info("erased lead {} ({})", lead_id, erasure.reason());
  return std::vector<kafka::OutboundMessage>{};
}

void RoutingHandler::AssignOrQueue(const Input& input, const Team& team,
                                   const std::vector<std::string>& excluded, absl::Time now,
                                   const std::string& why, LeadRouted::Kind kind,
                                   const std::string& previous_rep_id, LeadChange& c) const {
  RoutingAssignment& a = c.assignment;
  const std::vector<RepState> states = RepStatesOf(team, c.team, now);
  const std::optional<RepChoice> choice =
      PickRepExcluding(team, states, c.team.cursor(), now, excluded);
  a.set_team_id(team.id());
  *a.mutable_assigned_at() = events::ToProto(now);
  a.clear_sla_deadline();
  if (choice.has_value()) {
    const Rep& rep = states[choice->index].rep;
    a.set_rep_id(rep.id());
    a.set_state(internal::v1::ASSIGNMENT_STATE_ASSIGNED);
    if (kind == LeadRouted::KIND_REASSIGNED) a.set_attempt(a.attempt() + 1);
    const absl::Time deadline = SlaDeadline(team, now);
    if (deadline != absl::InfiniteFuture()) *a.mutable_sla_deadline() = events::ToProto(deadline);
    a.add_reps_tried(rep.id());
    a.set_reason(absl::StrCat(why, "; ", choice->reason));

    c.team.set_cursor(choice->next_cursor);
    internal::v1::RepCounters& counters = (*c.team.mutable_reps())[rep.id()];
    const std::string today = RepDay(rep, now);
    if (counters.day() != today) {
      counters.set_day(today);
      counters.set_assigned_today(0);
    }
    counters.set_open_leads(counters.open_leads() + 1);
    counters.set_assigned_today(counters.assigned_today() + 1);
    c.write_team = true;
    c.commands.push_back({"ZADD", RoutingStore::RepOpenKey(rep.id()),
                          absl::StrCat(absl::ToUnixMillis(now)), input.lead_id});
  } else {
    a.clear_rep_id();
    a.set_state(internal::v1::ASSIGNMENT_STATE_QUEUED);
    a.set_reason(absl::StrCat(why, "; no rep can take it now, queued in ", team.id()));
    kind = LeadRouted::KIND_QUEUED;
    c.commands.push_back({"ZADD", RoutingStore::TeamQueueKey(team.id()),
                          absl::StrCat(absl::ToUnixMillis(now)), input.lead_id});
  }
  c.write_assignment = true;

  LeadRouted event;
  *event.mutable_envelope() = events::MakeEnvelope({
      .event_id = events::DeriveEventId("routed", input.event_id),
      .lead_id = input.lead_id,
      .occurred_at = now,
      .produced_at = now,
      .causation_id = input.event_id,
      .trace_id = input.trace_id,
      .producer = kService,
  });
  event.set_kind(kind);
  *event.mutable_lead() = a.lead();
  *event.mutable_score() = a.score();
  event.set_team_id(a.team_id());
  event.set_rep_id(a.rep_id());
  event.set_rule_id(a.rule_id());
  event.set_reason(a.reason());
  if (a.has_sla_deadline()) *event.mutable_sla_deadline() = a.sla_deadline();
  event.set_attempt(a.attempt());
  event.set_previous_rep_id(previous_rep_id);
  event.set_episode(a.episode());
  // leads.routed is keyed by team (ARCHITECTURE.md §3).
  c.outputs.push_back(events::Encode(topics_.Name(kafka::kLeadsRouted), a.team_id(), event,
                                     options_.routed_encoding));
}

absl::StatusOr<std::vector<kafka::OutboundMessage>> RoutingHandler::Apply(
    const Input& input, const std::optional<std::string>& team_id, const ChangeFn& change) {
  const std::string assignment_key = RoutingStore::AssignmentKey(input.lead_id);
  for (int lookup = 0; lookup < kMaxTeamLookups; ++lookup) {
    std::string team = team_id.value_or("");
    if (!team_id.has_value()) {
      absl::StatusOr<std::optional<RoutingAssignment>> current =
          store_.LoadAssignment(input.lead_id);
      if (!current.ok()) return current.status();
      // Never routed (or erased): routing holds nothing of the lead to change.
      if (!current->has_value()) return std::vector<kafka::OutboundMessage>{};
      team = (*current)->team_id();
    }
    const std::string team_key = RoutingStore::TeamStateKey(team);

    redis::ApplyOnceRequest request;
    request.dedup_key = redis::AppliedKey(kService, input.lead_id, input.event_id);
    request.dedup_ttl = options_.dedup_ttl;
    request.state_keys = {assignment_key, team_key};
    // No registry key: the team record must not be registered as the lead's (see store.h);
    // the lead's own keys are registered by an extra command instead.
    request.tombstone_key = redis::TombstoneKey(kService, input.lead_id);

    bool team_moved = false;
    auto planner =
        [&](const std::vector<redis::Versioned>& records) -> absl::StatusOr<redis::Plan> {
      team_moved = false;
      LeadChange c;
      if (records[0].data.has_value()) {
        if (!c.assignment.ParseFromString(*records[0].data)) {
          return absl::DataLossError("corrupt assignment " + assignment_key);
        }
        c.assignment_exists = true;
      }
      if (records[1].data.has_value() && !c.team.ParseFromString(*records[1].data)) {
        return absl::DataLossError("corrupt team state " + team_key);
      }
      if (!team_id.has_value() && (!c.assignment_exists || c.assignment.team_id() != team)) {
        team_moved = true;
        return absl::AbortedError("the assignment moved meanwhile");
      }
      if (absl::Status s = change(c); !s.ok()) return s;

      redis::Plan plan;
      if (c.delete_assignment) {
        plan.writes.push_back({assignment_key, std::nullopt});
      } else if (c.write_assignment) {
        plan.writes.push_back({assignment_key, c.assignment.SerializeAsString()});
      }
      if (c.write_team) {
        c.team.set_team_id(team);
        plan.writes.push_back({team_key, c.team.SerializeAsString()});
      }
      plan.extra_commands.push_back(
          RoutingStore::LeadKeysToRegister(input.lead_id, request.dedup_key));
      for (redis::Args& command : c.commands) plan.extra_commands.push_back(std::move(command));
      plan.memo = kafka::EncodeMemo(c.outputs);
      return plan;
    };
    absl::StatusOr<redis::ApplyResult> applied = store_.apply().Run(request, planner);
    if (!applied.ok()) {
      if (team_moved) continue;
      return applied.status();
    }
    std::vector<kafka::OutboundMessage> outputs;
    if (applied->outcome == redis::ApplyOutcome::kErased) return outputs;  // erased: ignore
    if (absl::Status s = kafka::DecodeMemo(applied->memo, &outputs); !s.ok()) return s;
    return outputs;
  }
  return absl::AbortedError(
      absl::StrCat("assignment of ", input.lead_id, " kept moving between teams; retry"));
}

}  // namespace leadflow::routing
