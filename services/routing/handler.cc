#include "services/routing/handler.h"

#include <algorithm>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "common/events/envelope.h"
#include "common/kafka/memo.h"
#include "common/redis/keys.h"
#include "common/rules/time_util.h"
#include "common/runtime/side_by_side.h"
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
  // The escalation team's record (Apply with escalation_team), id in `other_team_id`.
  RoutingTeamState other_team;
  std::string other_team_id;
  // Presence of the reps of both teams, by rep id (reps never set are absent: available).
  absl::flat_hash_map<std::string, internal::v1::RepPresence> presence;
  bool write_assignment = false;
  bool delete_assignment = false;
  bool write_team = false;
  bool write_other_team = false;
  // Latencies to observe once the change is applied (not on a duplicate): seconds since the
  // assignment, by team.
  std::optional<double> accept_seconds;
  std::optional<double> contact_seconds;
  // Index updates (rep open sets, team queues), applied atomically with the records.
  std::vector<redis::Args> commands;
  std::vector<kafka::OutboundMessage> outputs;
};

struct RoutingHandler::ApplyKeys {
  // The team whose record is records[1], and the other team's (records[2] when not empty).
  std::string team;
  std::string other_team;
  // Whose presence records come from presence_at on, in order.
  std::vector<std::string> rep_ids;
  size_t presence_at = 0;
  redis::ApplyOnceRequest request;
};

struct RoutingHandler::ParsedTeam {
  // Which version of the record `team` is; nothing held when `held` is false.
  int64_t version = 0;
  std::string incarnation;
  RoutingTeamState team;
  bool held = false;
};

namespace {

// Re-reads when a lead's assignment moved to another team between reading it and applying.
constexpr int kMaxTeamLookups = 8;

// Chains HandleScoredBatch plans a wave in at most: another writer breaking the first re-plans
// the leads left as a new chain, and so on; the last round's conflicts are finished one by one.
constexpr int kChainRounds = 4;

// A wave is split over lanes only where each would get this many leads: a lane's thread
// hand-over costs more than the overlap gains on fewer (waves of 16 over two lanes took the
// process 72-80 us per decision against 41-45 us in one, and gave fewer decisions per second;
// docs/BENCHMARKS.md). kafka::InLanes's bound too.
constexpr size_t kMinLeadsPerLane = 16;

// Splits the leads [0, keys.size()) into at most `lanes` lists that share no record: leads
// linked through a record they both need (a team's record, a rep's presence) stay in one list,
// in input order. Groups go to the lane with the fewest leads so far, largest group first.
std::vector<std::vector<size_t>> IndependentLanes(
    const std::vector<const std::vector<std::string>*>& keys, int lanes) {
  const size_t n = keys.size();
  std::vector<size_t> parent(n);
  std::iota(parent.begin(), parent.end(), 0);
  auto root = [&](size_t k) {
    while (parent[k] != k) k = parent[k] = parent[parent[k]];
    return k;
  };
  absl::flat_hash_map<absl::string_view, size_t> first_with;
  for (size_t k = 0; k < n; ++k) {
    for (const std::string& key : *keys[k]) {
      auto [it, inserted] = first_with.try_emplace(key, k);
      if (!inserted) parent[root(k)] = root(it->second);
    }
  }
  absl::flat_hash_map<size_t, std::vector<size_t>> groups;
  for (size_t k = 0; k < n; ++k) groups[root(k)].push_back(k);
  std::vector<std::vector<size_t>> by_size;
  by_size.reserve(groups.size());
  for (auto& [unused, members] : groups) by_size.push_back(std::move(members));
  std::sort(by_size.begin(), by_size.end(), [](const auto& a, const auto& b) {
    return a.size() != b.size() ? a.size() > b.size() : a.front() < b.front();
  });
  std::vector<std::vector<size_t>> out(std::clamp<size_t>(by_size.size(), 1, std::max(1, lanes)));
  for (std::vector<size_t>& group : by_size) {
    auto lightest = std::min_element(
        out.begin(), out.end(), [](const auto& a, const auto& b) { return a.size() < b.size(); });
    lightest->insert(lightest->end(), group.begin(), group.end());
  }
  for (std::vector<size_t>& lane : out) std::sort(lane.begin(), lane.end());
  return out;
}

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
// "YYYY-MM-DD", what FormatTime's "%Y-%m-%d" writes (for years 1000-9999), built from the civil
// day: FormatTime's general formatter, twice per rep, was 8 % of a decision's instructions.
std::string RepDay(const Rep& rep, absl::Time now) {
  const absl::CivilDay day =
      absl::ToCivilDay(now, rules::TimeZoneOr(rep.time_zone(), absl::UTCTimeZone()));
  return absl::StrCat(absl::Dec(day.year(), absl::kZeroPad4), "-",
                      absl::Dec(day.month(), absl::kZeroPad2), "-",
                      absl::Dec(day.day(), absl::kZeroPad2));
}

// The rep's calendar month at `now`, which "assigned this month" counts.
// "YYYY-MM", as "%Y-%m".
std::string RepMonth(const Rep& rep, absl::Time now) {
  const absl::CivilMonth month =
      absl::ToCivilMonth(now, rules::TimeZoneOr(rep.time_zone(), absl::UTCTimeZone()));
  return absl::StrCat(absl::Dec(month.year(), absl::kZeroPad4), "-",
                      absl::Dec(month.month(), absl::kZeroPad2));
}

// Why a pass step stopped without applying (set together with a Cancelled planner status).
absl::Status NothingToDo() { return absl::CancelledError("nothing to do"); }

int64_t Millis(const google::protobuf::Timestamp& ts) {
  return absl::ToUnixMillis(events::FromProto(ts));
}

// What a pass decision acts on: one assignment instance. Two passes computing the same id act on
// the same instance, so the id is the decision's apply-once key and the seed of its event ids.
std::string InstanceId(absl::string_view what, const RoutingAssignment& a) {
  return absl::StrCat(what, ":", a.lead_id(), ":", a.episode(), ":", a.attempt(), ":",
                      Millis(a.assigned_at()));
}

bool SameInstance(const RoutingAssignment& a, const RoutingAssignment& b) {
  return a.episode() == b.episode() && a.attempt() == b.attempt() && a.state() == b.state() &&
         a.team_id() == b.team_id() && Millis(a.assigned_at()) == Millis(b.assigned_at());
}

// The team's reps as PickRep sees them: configuration, the stored counters and presence.
std::vector<RepState> RepStatesOf(
    const Team& team, const RoutingTeamState& stored,
    const absl::flat_hash_map<std::string, internal::v1::RepPresence>& presence, absl::Time now) {
  std::vector<RepState> states = RepStatesFor(team);
  // A team's reps mostly share a time zone: the day and month are worked out once per zone run.
  std::optional<std::string> dates_zone;
  std::string today;
  std::string month;
  for (RepState& state : states) {
    if (auto p = presence.find(state.rep.id()); p != presence.end()) {
      switch (p->second.state()) {
        case internal::v1::REP_PRESENCE_STATE_AWAY:
          state.presence = Presence::kAway;
          break;
        case internal::v1::REP_PRESENCE_STATE_OUT_OF_OFFICE:
          state.presence = Presence::kOutOfOffice;
          break;
        default:
          state.presence = Presence::kAvailable;
          break;
      }
      if (p->second.has_until()) state.presence_until = events::FromProto(p->second.until());
    }
    auto it = stored.reps().find(state.rep.id());
    if (it == stored.reps().end()) continue;
    state.open_leads = it->second.open_leads();
    if (dates_zone != state.rep.time_zone()) {
      dates_zone = state.rep.time_zone();
      today = RepDay(state.rep, now);
      month = RepMonth(state.rep, now);
    }
    state.assigned_today = it->second.day() == today ? it->second.assigned_today() : 0;
    state.assigned_this_month = it->second.month() == month ? it->second.assigned_this_month() : 0;
  }
  return states;
}

// Releases `rep_id`'s hold on the lead in `team_state`.
void Release(const std::string& lead_id, const std::string& rep_id, RoutingTeamState& team_state,
             std::vector<redis::Args>& commands) {
  auto it = team_state.mutable_reps()->find(rep_id);
  if (it != team_state.mutable_reps()->end() && it->second.open_leads() > 0) {
    it->second.set_open_leads(it->second.open_leads() - 1);
  }
  commands.push_back({"ZREM", RoutingStore::RepOpenKey(rep_id), lead_id});
}

std::vector<std::string> RepIds(const Team* team) {
  std::vector<std::string> ids;
  if (team == nullptr) return ids;
  for (const Rep& rep : team->reps()) ids.push_back(rep.id());
  return ids;
}

// Latency buckets for a human's reaction, in seconds: 5 s .. 1 day.
prometheus::Histogram::BucketBoundaries ReactionBuckets() {
  return {5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400};
}

}  // namespace

absl::StatusOr<std::shared_ptr<const CompiledRoutingRules>> LoadRoutingRules(
    const std::string& path) {
  return config::LoadRules<config::v1::RoutingRules, CompiledRoutingRules>(
      path, [](const config::v1::RoutingRules& rules) { return CompileRoutingRules(rules); });
}

RoutingHandler::RoutingHandler(EffectiveRules& rules, RoutingStore& store,
                               const kafka::Topics& topics, const runtime::Clock& clock,
                               prometheus::Registry& registry, RoutingOptions options)
    : rules_(rules),
      store_(store),
      topics_(topics),
      clock_(clock),
      options_(options),
      time_to_accept_(prometheus::BuildHistogram()
                          .Name("leadflow_routing_time_to_accept_seconds")
                          .Help("From assignment to the rep accepting the lead, by team.")
                          .Register(registry)),
      time_to_first_contact_(
          prometheus::BuildHistogram()
              .Name("leadflow_routing_time_to_first_contact_seconds")
              .Help("From assignment to the rep's first contact with the lead, by team.")
              .Register(registry)) {}

prometheus::Histogram& RoutingHandler::Latency(prometheus::Family<prometheus::Histogram>& family,
                                               const std::string& team_id) {
  return family.Add({{"team", team_id}}, ReactionBuckets());
}

struct RoutingHandler::ScoredLead {
  Input input;
  events::v1::LeadScored scored;
  RouteDecision decision;
  const Team* team = nullptr;  // the decision's team, in the rules `decision` was made on
};

absl::StatusOr<std::optional<RoutingHandler::ScoredLead>> RoutingHandler::PrepareScored(
    const kafka::ConsumedMessage& message,
    const absl::StatusOr<std::shared_ptr<const CompiledRoutingRules>>& rules) const {
  ScoredLead lead;
  if (absl::Status s = events::Decode(message, &lead.scored); !s.ok()) return s;
  absl::StatusOr<Input> input =
      InputOf(message, lead.scored.envelope(), lead.scored.lead().lead_id());
  if (!input.ok()) return input.status();
  lead.input = *std::move(input);
  if (!rules.ok()) return rules.status();
  // Most scores are below every threshold and can never route: no state to read or write.
  if (lead.scored.score().category() < (*rules)->min_route_at()) return std::nullopt;
  lead.decision = MatchTeam(**rules, lead.scored.lead(), lead.scored.score());
  lead.team = (*rules)->FindTeam(lead.decision.team_id);
  if (lead.team == nullptr) {
    return absl::InternalError(absl::StrCat("rules route to unknown team ", lead.decision.team_id));
  }
  return lead;
}

absl::Status RoutingHandler::ChangeScored(const ScoredLead& lead, absl::Time now,
                                          LeadChange& c) const {
  const events::v1::LeadScored& scored = lead.scored;
  RoutingAssignment& a = c.assignment;
  // A lost lead's closed assignment waits for the lead to qualify again; any other stored
  // assignment means the lead was routed in this episode already.
  const bool reopen =
      c.assignment_exists && a.state() == internal::v1::ASSIGNMENT_STATE_CLOSED && a.requalify();
  if (c.assignment_exists && !reopen) return absl::OkStatus();
  // Scoring keeps a lost lead at STAGE_LOST until activity after the loss recycles it.
  const bool new_episode = reopen && scored.score().stage() != events::v1::STAGE_LOST;
  // The threshold of the rule the lead matched (or the file's).
  if (!ShouldRoute(lead.decision, scored.previous(), scored.score(), new_episode)) {
    return absl::OkStatus();
  }
  const int32_t episode = c.assignment_exists ? a.episode() + 1 : 1;
  a.Clear();
  a.set_lead_id(lead.input.lead_id);
  a.set_rule_id(lead.decision.rule_id);
  a.set_episode(episode);
  a.set_attempt(1);
  *a.mutable_lead() = scored.lead();
  a.mutable_lead()->set_lead_id(lead.input.lead_id);
  *a.mutable_score() = scored.score();
  AssignOrQueue(lead.input, *lead.team, c.team, {}, now, lead.decision.reason,
                LeadRouted::KIND_ASSIGNED, "", c);
  c.write_team = true;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<kafka::OutboundMessage>> RoutingHandler::HandleScored(
    const kafka::ConsumedMessage& message) {
  // Held while the decision's team (a pointer into the rules) is in use.
  const absl::StatusOr<std::shared_ptr<const CompiledRoutingRules>> rules = rules_.Current();
  absl::StatusOr<std::optional<ScoredLead>> lead = PrepareScored(message, rules);
  if (!lead.ok()) return lead.status();
  if (!lead->has_value()) return std::vector<kafka::OutboundMessage>{};
  const absl::Time now = clock_.Now();
  const ScoredLead& l = **lead;
  return Apply(l.input, l.decision.team_id, [&](LeadChange& c) { return ChangeScored(l, now, c); });
}

namespace {

// True when two record sets are the same state (what a planner sees).
bool SameRecords(const std::vector<redis::Versioned>& a, const std::vector<redis::Versioned>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].key != b[i].key || a[i].version != b[i].version ||
        a[i].incarnation != b[i].incarnation || a[i].data != b[i].data) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::vector<kafka::HandleResult> RoutingHandler::HandleScoredBatch(
    const std::vector<const kafka::ConsumedMessage*>& messages) {
  const absl::StatusOr<std::shared_ptr<const CompiledRoutingRules>> rules = rules_.Current();
  kafka::BatchSubset<kafka::HandleResult> subset(messages.size());
  std::vector<ScoredLead> leads;
  leads.reserve(messages.size());
  for (size_t i = 0; i < messages.size(); ++i) {
    absl::StatusOr<std::optional<ScoredLead>> lead = PrepareScored(*messages[i], rules);
    if (!lead.ok()) {
      subset.Settle(i, lead.status());
    } else if (!lead->has_value()) {
      subset.Settle(i, std::vector<kafka::OutboundMessage>{});
    } else {
      leads.push_back(**std::move(lead));
      subset.Keep(i);
    }
  }
  const size_t n = leads.size();
  if (n == 0) return std::move(subset).Merge(std::vector<kafka::HandleResult>{});
  const absl::Time now = clock_.Now();

  std::vector<ApplyKeys> keys;
  keys.reserve(n);
  for (size_t k = 0; k < n; ++k) {
    keys.push_back(KeysOf(leads[k].input, leads[k].decision.team_id, /*escalation_team=*/false,
                          /*other_team_id=*/"", **rules));
  }
  auto plan = [&](size_t k, const std::vector<redis::Versioned>& records, ParsedTeam* parsed) {
    bool team_moved = false;
    return PlanOn(
        leads[k].input, keys[k], records, /*team_given=*/true,
        [&](LeadChange& c) { return ChangeScored(leads[k], now, c); }, &team_moved, parsed);
  };

  // A chain broken by another writer (another replica on the same team) is planned again as a
  // new chain of the leads it left, up to kChainRounds times; the last round lets ApplyOnce
  // finish each conflicting lead alone (Run()), so every lead is decided.
  std::vector<kafka::HandleResult> results(n, absl::UnknownError("not run"));
  auto decide = [&](std::vector<size_t> pending) {
    for (int round = 1; round <= kChainRounds && !pending.empty(); ++round) {
      const bool last = round == kChainRounds;
      const size_t m = pending.size();
      // 1. One read of every record the chain's decisions need, each record once (most leads of
      // a wave share their team's record and its reps' presence).
      std::vector<redis::ApplyOnceRequest> requests;
      requests.reserve(m);
      absl::flat_hash_map<std::string, size_t> slot_of;
      std::vector<std::string> unique_keys;
      std::vector<std::vector<size_t>> slots(m);
      for (size_t j = 0; j < m; ++j) {
        requests.push_back(keys[pending[j]].request);
        for (const std::string& key : requests.back().state_keys) {
          auto [it, inserted] = slot_of.try_emplace(key, unique_keys.size());
          if (inserted) unique_keys.push_back(key);
          slots[j].push_back(it->second);
        }
      }
      absl::StatusOr<std::vector<redis::Versioned>> read = store_.apply().Read(unique_keys);
      if (!read.ok()) {
        for (size_t k : pending) results[k] = read.status();
        break;
      }

      // 2. Plan the leads in input order, each on the records as the leads before it leave them
      // (`view`), so the k-th lead of a team sees the cursor and counters of the k-1 before it.
      // Every record a plan writes gets a fresh incarnation, known here: the next request's
      // version check on it then passes only if this plan is applied (a conflicting writer that
      // moved the version by one keeps the old incarnation and fails it). A deleted record's view
      // is "absent", which the check compares exactly. So a request that conflicts (or finds its
      // input applied or erased meanwhile) makes every later request that planned on its writes
      // conflict too.
      // The team records as the last plan on each left them, kept parsed (by view slot): the
      // next lead of the team takes its record from here instead of parsing it.
      std::vector<redis::Versioned>& view = *read;
      absl::flat_hash_map<size_t, ParsedTeam> parsed_teams;
      std::vector<std::vector<redis::Versioned>> planned_on(m);
      std::vector<absl::StatusOr<redis::Plan>> plans;
      plans.reserve(m);
      for (size_t j = 0; j < m; ++j) {
        for (size_t slot : slots[j]) planned_on[j].push_back(view[slot]);
        const size_t team_slot = slots[j][1];
        ParsedTeam& parsed = parsed_teams[team_slot];
        absl::StatusOr<redis::Plan> p = plan(pending[j], planned_on[j], &parsed);
        // A plan that routes the lead writes its assignment, which erasure deletes: its watch
        // can stand in for the dedup key's and the tombstone's (ApplyOnceRequest::anchor_key).
        // A plan that leaves the assignment alone has no effect to guard (the lead was routed).
        if (p.ok() && std::any_of(p->writes.begin(), p->writes.end(), [&](const redis::Write& w) {
              return w.key == requests[j].state_keys[0];
            })) {
          requests[j].anchor_key = requests[j].state_keys[0];
        }
        if (p.ok()) {
          for (const redis::Write& w : p->writes) {
            auto it = slot_of.find(w.key);
            if (it == slot_of.end()) continue;  // not a record of the request: the apply rejects it
            redis::Versioned& v = view[it->second];
            if (w.data.has_value()) {
              p->incarnations.emplace_back(w.key, redis::NewIncarnation());
              v = {w.key, v.version + 1, w.data, p->incarnations.back().second};
            } else {
              v = {w.key, 0, std::nullopt, ""};
            }
            if (it->second == team_slot) {
              parsed.version = v.version;
              parsed.incarnation = v.incarnation;
            }
          }
        }
        plans.push_back(std::move(p));
      }

      // 3. Apply: one transaction, each request checked against the view it was planned on. The
      // planner stays a function of the records it is given: on the view it gives the plan made
      // above (with its incarnations); on anything else (the fresh read of a request whose check
      // failed) a new plan in the last round, before it a "re-chain" refusal that sends the lead to
      // the next round.
      std::vector<bool> rechain(m, false);
      std::vector<absl::StatusOr<redis::ApplyResult>> applied = store_.apply().RunBatchOnRead(
          requests, planned_on,
          [&](size_t j,
              const std::vector<redis::Versioned>& records) -> absl::StatusOr<redis::Plan> {
            rechain[j] = false;
            if (SameRecords(records, planned_on[j])) return plans[j];
            if (!last) {
              rechain[j] = true;
              return absl::AbortedError("the chain's records moved: plan it again");
            }
            return plan(pending[j], records, /*parsed=*/nullptr);
          });
      std::vector<size_t> next;
      for (size_t j = 0; j < m; ++j) {
        absl::StatusOr<redis::ApplyResult>& r = applied[j];
        if (!r.ok() && rechain[j]) {
          next.push_back(pending[j]);
          continue;
        }
        results[pending[j]] = r.ok() ? OutputsOf(*r) : kafka::HandleResult(r.status());
      }
      pending = std::move(next);
    }
  };

  // Leads that share no record are independent: their chains run side by side, so one wave
  // keeps Redis and the planning busy at once (each lane is one connection's round trips).
  std::vector<const std::vector<std::string>*> lead_keys(n);
  for (size_t k = 0; k < n; ++k) lead_keys[k] = &keys[k].request.state_keys;
  const int lane_count = static_cast<int>(std::min<size_t>(
      std::max(1, options_.wave_lanes), std::max<size_t>(1, n / kMinLeadsPerLane)));
  std::vector<std::vector<size_t>> lanes = IndependentLanes(lead_keys, lane_count);
  runtime::RunSideBySide(lanes.size(), [&](size_t l) { decide(std::move(lanes[l])); });
  return std::move(subset).Merge(std::move(results));
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
  absl::StatusOr<std::shared_ptr<const CompiledRoutingRules>> rules = rules_.Current();
  if (!rules.ok()) return rules.status();
  const absl::Time now = clock_.Now();
  const redis::Args stop_sla = {"ZREM", RoutingStore::SlaIndexKey(), input->lead_id};

  auto release = [&](const std::string& rep_id, LeadChange& c) {
    Release(input->lead_id, rep_id, c.team, c.commands);
    c.write_team = true;
  };
  auto since_assignment = [&](const RoutingAssignment& a) {
    return absl::ToDoubleSeconds(now - events::FromProtoOr(a.assigned_at(), now));
  };

  std::optional<double> accept_seconds;
  std::optional<double> contact_seconds;
  std::string team_id;
  redis::ApplyOutcome applied = redis::ApplyOutcome::kDuplicate;
  absl::StatusOr<std::vector<kafka::OutboundMessage>> out = Apply(
      *input, std::nullopt,
      [&](LeadChange& c) -> absl::Status {
        RoutingAssignment& a = c.assignment;
        team_id = a.team_id();
        // Accept / contact / reject come from the rep holding the lead; a report naming another
        // rep is stale (the lead moved on) and changes nothing.
        const bool from_holder = outcome.rep_id().empty() || outcome.rep_id() == a.rep_id();
        switch (outcome.kind()) {
          case LeadOutcome::KIND_ACCEPTED:
            if (a.state() == internal::v1::ASSIGNMENT_STATE_ASSIGNED && from_holder) {
              a.set_state(internal::v1::ASSIGNMENT_STATE_ACCEPTED);
              *a.mutable_accepted_at() = events::ToProto(now);
              c.accept_seconds = since_assignment(a);
              c.write_assignment = true;
              c.commands.push_back(stop_sla);
            }
            break;
          // An opened opportunity implies the rep reached the lead: it counts as first contact.
          case LeadOutcome::KIND_CONTACTED:
          case LeadOutcome::KIND_QUALIFIED:
          case LeadOutcome::KIND_OPPORTUNITY:
            if ((a.state() == internal::v1::ASSIGNMENT_STATE_ASSIGNED ||
                 a.state() == internal::v1::ASSIGNMENT_STATE_ACCEPTED) &&
                from_holder) {
              a.set_state(internal::v1::ASSIGNMENT_STATE_CONTACTED);
              *a.mutable_contacted_at() = events::ToProto(now);
              c.contact_seconds = since_assignment(a);
              c.write_assignment = true;
              c.commands.push_back(stop_sla);
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
            c.commands.push_back(stop_sla);
            const std::vector<std::string> tried(a.reps_tried().begin(), a.reps_tried().end());
            // A team dropped from the rules has no reps left to offer the lead: it stays queued.
            Team dropped;
            dropped.set_id(a.team_id());
            const Team* team = (*rules)->FindTeam(a.team_id());
            AssignOrQueue(
                *input, team != nullptr ? *team : dropped, c.team, tried, now,
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
              c.commands.push_back(
                  {"ZREM", RoutingStore::TeamQueueKey(a.team_id()), input->lead_id});
            } else if (!IsOpen(a.state()) &&
                       a.state() != internal::v1::ASSIGNMENT_STATE_ESCALATED) {
              break;  // closed already
            }
            c.commands.push_back(stop_sla);
            const std::string holder = a.rep_id();
            a.set_state(internal::v1::ASSIGNMENT_STATE_CLOSED);
            a.set_closed_reason(
                lost ? absl::StrCat("lost", outcome.reason().empty() ? "" : ": ", outcome.reason())
                     : "won");
            a.set_reason(lost ? absl::StrCat(a.closed_reason(),
                                             "; recycled to nurturing until it qualifies again")
                              : "won: converted");
            a.set_requalify(lost);
            c.write_assignment = true;
            // The conversion / recycle event: dashboards see the assignment end; scoring turns
            // the same outcome into the lead's customer / lost stage for nurturing.
            Emit(*input, lost ? LeadRouted::KIND_RECYCLED : LeadRouted::KIND_CONVERTED, holder, "",
                 now, c);
            break;
          }
          default:
            break;
        }
        accept_seconds = c.accept_seconds;
        contact_seconds = c.contact_seconds;
        return absl::OkStatus();
      },
      /*escalation_team=*/false, &applied);
  if (out.ok() && applied == redis::ApplyOutcome::kApplied) {
    if (accept_seconds.has_value()) Latency(time_to_accept_, team_id).Observe(*accept_seconds);
    if (contact_seconds.has_value()) {
      Latency(time_to_first_contact_, team_id).Observe(*contact_seconds);
    }
  }
  return out;
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
          c.commands.push_back({"ZREM", RoutingStore::SlaIndexKey(), input->lead_id});
        }
        c.delete_assignment = true;
        return absl::OkStatus();
      });
  if (!released.ok()) return released.status();

  // Every team and rep the rules know: an assignment racing with the erasure may have put the
  // lead in any of their sets.
  absl::StatusOr<std::shared_ptr<const CompiledRoutingRules>> rules = rules_.Current();
  if (!rules.ok()) return rules.status();
  std::vector<std::string> team_ids;
  std::vector<std::string> rep_ids;
  for (const Team& team : (*rules)->teams()) {
    team_ids.push_back(team.id());
    for (const Rep& rep : team.reps()) rep_ids.push_back(rep.id());
  }
  if (absl::Status s = store_.Erase(lead_id, team_ids, rep_ids, options_.tombstone_ttl); !s.ok()) {
    return s;
  }
  spdlog::info("erased lead {} ({})", lead_id, erasure.reason());
  return std::vector<kafka::OutboundMessage>{};
}

absl::StatusOr<PassStep> RoutingHandler::HandleSlaDue(const std::string& lead_id) {
  const absl::Time now = clock_.Now();
  absl::StatusOr<std::optional<RoutingAssignment>> current = store_.LoadAssignment(lead_id);
  if (!current.ok()) return current.status();
  const redis::Args drop = {"ZREM", RoutingStore::SlaIndexKey(), lead_id};
  if (!current->has_value()) {
    if (absl::Status s = store_.Command(drop); !s.ok()) return s;
    return PassStep{};
  }
  const RoutingAssignment seen = **current;
  // Two clocks run in the index: an assigned rep's SLA, and a queued lead's wait.
  const bool assigned = seen.state() == internal::v1::ASSIGNMENT_STATE_ASSIGNED &&
                        seen.has_sla_deadline() && !seen.rep_id().empty();
  const bool waiting =
      seen.state() == internal::v1::ASSIGNMENT_STATE_QUEUED && seen.has_sla_deadline();
  if ((assigned || waiting) && events::FromProto(seen.sla_deadline()) > now) {
    // Indexed too early (a stale entry): put it back at its real deadline.
    if (absl::Status s = store_.Command({"ZADD", RoutingStore::SlaIndexKey(),
                                         absl::StrCat(Millis(seen.sla_deadline())), lead_id});
        !s.ok()) {
      return s;
    }
    return PassStep{};
  }
  absl::StatusOr<std::shared_ptr<const CompiledRoutingRules>> rules = rules_.Current();
  if (!rules.ok()) return rules.status();

  Input input;
  input.lead_id = lead_id;
  bool nothing = false;
  if (!assigned && !waiting) {
    // Accepted, contacted, closed or moved on: drop the entry, but only if the assignment is
    // still the one read (a concurrent re-assignment indexes its own deadline).
    input.event_id = InstanceId("sla-drop", seen);
    input.trace_id = input.event_id;
    return ApplyPass(
        input,
        [&](LeadChange& c) -> absl::Status {
          if (!SameInstance(c.assignment, seen)) return NothingToDo();
          c.commands.push_back(drop);
          return absl::OkStatus();
        },
        false, &nothing);
  }

  input.event_id = InstanceId(assigned ? "sla" : "queue-timeout", seen);
  input.trace_id = input.event_id;
  return ApplyPass(
      input,
      [&](LeadChange& c) -> absl::Status {
        RoutingAssignment& a = c.assignment;
        if (!SameInstance(a, seen)) return NothingToDo();
        const Team* team = (*rules)->FindTeam(a.team_id());
        Team dropped;
        dropped.set_id(a.team_id());
        if (team == nullptr) team = &dropped;
        c.commands.push_back(drop);
        const std::string holder = a.rep_id();

        // Hands the lead to `target` (a team id or "manager").
        auto escalate = [&](const std::string& target, const std::string& why) {
          const Team* to = target == kEscalateToManager ? nullptr : (*rules)->FindTeam(target);
          a.set_attempt(a.attempt() + 1);
          if (to != nullptr && c.other_team_id == to->id()) {
            // Moves to the other team: a fresh start there, any of its reps may take it.
            c.write_other_team = true;
            AssignOrQueue(input, *to, c.other_team, {}, now, why, LeadRouted::KIND_ESCALATED,
                          holder, c);
            return;
          }
          // To the team's manager: no rep holds it and no SLA runs any more.
          a.clear_rep_id();
          a.clear_sla_deadline();
          a.set_state(internal::v1::ASSIGNMENT_STATE_ESCALATED);
          *a.mutable_assigned_at() = events::ToProto(now);
          a.set_reason(why);
          c.write_assignment = true;
          Emit(input, LeadRouted::KIND_ESCALATED, holder, std::string(kEscalateToManager), now, c);
        };

        if (waiting) {
          // Nobody could take it within the team's queue timeout.
          c.commands.push_back({"ZREM", RoutingStore::TeamQueueKey(team->id()), lead_id});
          const absl::Duration waited = now - events::FromProtoOr(a.assigned_at(), now);
          escalate(team->escalate_to(),
                   absl::StrCat(
                       "waited ", absl::FormatDuration(absl::Trunc(waited, absl::Minutes(1))),
                       " in the ", team->id(), " queue (timeout ", team->queue_timeout_minutes(),
                       " min); escalated to ", team->escalate_to()));
          return absl::OkStatus();
        }

        const std::vector<RepState> states = RepStatesOf(*team, c.team, c.presence, now);
        const std::vector<std::string> tried(a.reps_tried().begin(), a.reps_tried().end());
        const SlaBreachDecision decision =
            NextAfterSlaBreach(*team, states, tried, holder, c.team.cursor(), now);
        Release(lead_id, holder, c.team, c.commands);
        c.write_team = true;
        std::vector<std::string> excluded = tried;
        excluded.push_back(holder);
        switch (decision.action) {
          case SlaBreachDecision::Action::kReassign:
          case SlaBreachDecision::Action::kQueue:
            AssignOrQueue(input, *team, c.team, excluded, now, decision.reason,
                          LeadRouted::KIND_REASSIGNED, holder, c);
            break;
          case SlaBreachDecision::Action::kEscalate:
            escalate(decision.escalate_to, decision.reason);
            break;
        }
        return absl::OkStatus();
      },
      /*escalation_team=*/true, &nothing);
}

absl::StatusOr<PassStep> RoutingHandler::DrainQueued(const std::string& lead_id,
                                                     const std::string& team_id, bool* nobody) {
  *nobody = false;
  const absl::Time now = clock_.Now();
  absl::StatusOr<std::optional<RoutingAssignment>> current = store_.LoadAssignment(lead_id);
  if (!current.ok()) return current.status();
  const redis::Args drop = {"ZREM", RoutingStore::TeamQueueKey(team_id), lead_id};
  if (!current->has_value()) {
    if (absl::Status s = store_.Command(drop); !s.ok()) return s;
    return PassStep{};
  }
  const RoutingAssignment seen = **current;
  absl::StatusOr<std::shared_ptr<const CompiledRoutingRules>> rules = rules_.Current();
  if (!rules.ok()) return rules.status();
  Input input;
  input.lead_id = lead_id;
  bool nothing = false;
  if (seen.state() != internal::v1::ASSIGNMENT_STATE_QUEUED || seen.team_id() != team_id) {
    // A stale queue entry (the lead moved on): drop it unless the assignment changed again.
    input.event_id = absl::StrCat(InstanceId("drain-drop", seen), ":", team_id);
    input.trace_id = input.event_id;
    return ApplyPass(
        input,
        [&](LeadChange& c) -> absl::Status {
          if (!SameInstance(c.assignment, seen)) return NothingToDo();
          c.commands.push_back(drop);
          return absl::OkStatus();
        },
        false, &nothing);
  }
  const Team* team = (*rules)->FindTeam(team_id);
  if (team == nullptr) {
    *nobody = true;  // a team dropped from the rules: its leads wait for it to come back
    return PassStep{};
  }
  input.event_id = InstanceId("drain", seen);
  input.trace_id = input.event_id;
  absl::StatusOr<PassStep> step = ApplyPass(
      input,
      [&](LeadChange& c) -> absl::Status {
        *nobody = false;
        RoutingAssignment& a = c.assignment;
        if (!SameInstance(a, seen)) return NothingToDo();
        const std::vector<RepState> states = RepStatesOf(*team, c.team, c.presence, now);
        // Reps who had the lead this episode (rejected it, let the SLA pass) are never offered
        // it again: a lead every rep has had stays queued for the manager (ListQueue), or
        // escalates when the team has a queue timeout.
        const std::vector<std::string> excluded(a.reps_tried().begin(), a.reps_tried().end());
        if (!PickRepExcluding(*team, states, c.team.cursor(), now, excluded).has_value()) {
          // Only when no rep at all can take a lead now is the rest of the queue stuck too.
          *nobody = !PickRep(*team, states, c.team.cursor(), now).has_value();
          return NothingToDo();
        }
        c.commands.push_back(drop);
        const absl::Duration waited = now - events::FromProtoOr(a.assigned_at(), now);
        const std::string previous =
            a.reps_tried().empty() ? "" : a.reps_tried(a.reps_tried_size() - 1);
        AssignOrQueue(
            input, *team, c.team, excluded, now,
            absl::StrCat("drained from the ", team->id(), " queue after ",
                         absl::FormatDuration(absl::Trunc(waited, absl::Seconds(1)))),
            a.reps_tried().empty() ? LeadRouted::KIND_ASSIGNED : LeadRouted::KIND_REASSIGNED,
            previous, c);
        c.write_team = true;
        return absl::OkStatus();
      },
      false, &nothing);
  return step;
}

absl::StatusOr<PassStep> RoutingHandler::Reroute(const std::string& lead_id,
                                                 const std::string& reason,
                                                 const std::string& request_id) {
  absl::StatusOr<std::shared_ptr<const CompiledRoutingRules>> rules = rules_.Current();
  if (!rules.ok()) return rules.status();
  const absl::Time now = clock_.Now();
  Input input;
  input.lead_id = lead_id;
  input.event_id = events::DeriveEventId("reroute", request_id);
  input.trace_id = request_id;
  for (int lookup = 0; lookup < kMaxTeamLookups; ++lookup) {
    absl::StatusOr<std::optional<RoutingAssignment>> current = store_.LoadAssignment(lead_id);
    if (!current.ok()) return current.status();
    if (!current->has_value()) {
      // A retry of a re-route of a lead erased since: nothing to re-send.
      return absl::NotFoundError(absl::StrCat("lead ", lead_id, " was never routed"));
    }
    // Where the rules in force send the lead now (the team record to load besides its own).
    const std::string target = MatchTeam(**rules, (*current)->lead(), (*current)->score()).team_id;
    bool retarget = false;
    bool nothing = false;
    absl::StatusOr<PassStep> step = ApplyPass(
        input,
        [&](LeadChange& c) -> absl::Status {
          RoutingAssignment& a = c.assignment;
          const RouteDecision decision = MatchTeam(**rules, a.lead(), a.score());
          if (decision.team_id != target) {
            retarget = true;  // the snapshot changed meanwhile: load the right team
            return absl::AbortedError("the lead's team changed meanwhile");
          }
          const Team* to = (*rules)->FindTeam(target);
          if (to == nullptr) {
            return absl::InternalError(absl::StrCat("rules route to unknown team ", target));
          }
          const bool same_team = target == a.team_id();
          RoutingTeamState& to_state = same_team ? c.team : c.other_team;
          const std::string holder = IsOpen(a.state()) ? a.rep_id() : "";
          c.commands.push_back({"ZREM", RoutingStore::SlaIndexKey(), lead_id});
          std::vector<std::string> excluded;
          LeadRouted::Kind kind = LeadRouted::KIND_REASSIGNED;
          if (!holder.empty()) {
            // Same episode: the holder lets go; reps who had the lead are not offered it again.
            Release(lead_id, holder, c.team, c.commands);
            c.write_team = true;
            excluded.assign(a.reps_tried().begin(), a.reps_tried().end());
            excluded.push_back(holder);
          } else {
            // Held by nobody: a new qualification episode, any rep may take it.
            if (a.state() == internal::v1::ASSIGNMENT_STATE_QUEUED) {
              c.commands.push_back({"ZREM", RoutingStore::TeamQueueKey(a.team_id()), lead_id});
            }
            kind = LeadRouted::KIND_ASSIGNED;
            a.set_episode(a.episode() + 1);
            a.set_attempt(1);
            a.clear_reps_tried();
            a.clear_requalify();
            a.clear_closed_reason();
          }
          a.set_rule_id(decision.rule_id);
          AssignOrQueue(
              input, *to, to_state, excluded, now,
              absl::StrCat("re-routed", holder.empty() ? "" : " from " + holder,
                           reason.empty() ? "" : " (" + reason + ")", "; ", decision.reason),
              kind, holder, c);
          if (same_team) {
            c.write_team = true;
          } else {
            c.write_other_team = true;
          }
          return absl::OkStatus();
        },
        /*escalation_team=*/false, &nothing, target);
    if (!step.ok() && retarget) continue;
    return step;
  }
  return absl::AbortedError(absl::StrCat("lead ", lead_id, " kept changing; retry"));
}

absl::StatusOr<std::vector<kafka::OutboundMessage>> RoutingHandler::Replay(
    const std::string& lead_id, const std::string& event_id) {
  Input input;
  input.lead_id = lead_id;
  input.event_id = event_id;
  input.trace_id = event_id;
  bool gone = false;
  absl::StatusOr<std::vector<kafka::OutboundMessage>> out =
      Apply(input, std::nullopt, [&](LeadChange&) -> absl::Status {
        // The decision's record expired: its events can no longer be rebuilt as they were.
        gone = true;
        return NothingToDo();
      });
  if (!out.ok() && gone) return std::vector<kafka::OutboundMessage>{};
  return out;
}

absl::StatusOr<PassStep> RoutingHandler::ApplyPass(const Input& input, const ChangeFn& change,
                                                   bool escalation_team, bool* nothing_to_do,
                                                   const std::string& other_team_id) {
  *nothing_to_do = false;
  PassStep step;
  step.event_id = input.event_id;
  redis::ApplyOutcome outcome = redis::ApplyOutcome::kDuplicate;
  absl::StatusOr<std::vector<kafka::OutboundMessage>> out = Apply(
      input, std::nullopt,
      [&](LeadChange& c) -> absl::Status {
        *nothing_to_do = false;
        if (absl::Status s = change(c); !s.ok()) {
          if (absl::IsCancelled(s)) *nothing_to_do = true;
          return s;
        }
        if (!c.outputs.empty()) {
          // In the outbox until the broker acknowledged the events (scheduler.h).
          c.commands.push_back({"ZADD", RoutingStore::OutboxKey(),
                                absl::StrCat(absl::ToUnixMillis(clock_.Now())),
                                RoutingStore::OutboxMember(input.event_id, input.lead_id)});
        }
        return absl::OkStatus();
      },
      escalation_team, &outcome, other_team_id);
  if (!out.ok()) {
    if (*nothing_to_do) return step;
    return out.status();
  }
  step.outputs = *std::move(out);
  step.applied_now = outcome == redis::ApplyOutcome::kApplied;
  return step;
}

void RoutingHandler::AssignOrQueue(const Input& input, const Team& team,
                                   RoutingTeamState& team_state,
                                   const std::vector<std::string>& excluded, absl::Time now,
                                   const std::string& why, LeadRouted::Kind kind,
                                   const std::string& previous_rep_id, LeadChange& c) const {
  RoutingAssignment& a = c.assignment;
  const std::vector<RepState> states = RepStatesOf(team, team_state, c.presence, now);
  const std::optional<RepChoice> choice =
      PickRepExcluding(team, states, team_state.cursor(), now, excluded);
  a.set_team_id(team.id());
  *a.mutable_assigned_at() = events::ToProto(now);
  a.clear_sla_deadline();
  a.clear_accepted_at();
  a.clear_contacted_at();
  if (choice.has_value()) {
    const Rep& rep = states[choice->index].rep;
    a.set_rep_id(rep.id());
    a.set_state(internal::v1::ASSIGNMENT_STATE_ASSIGNED);
    if (kind == LeadRouted::KIND_REASSIGNED) a.set_attempt(a.attempt() + 1);
    const absl::Time deadline = SlaDeadline(team, now);
    if (deadline != absl::InfiniteFuture()) {
      *a.mutable_sla_deadline() = events::ToProto(deadline);
      c.commands.push_back({"ZADD", RoutingStore::SlaIndexKey(),
                            absl::StrCat(absl::ToUnixMillis(deadline)), input.lead_id});
    } else {
      c.commands.push_back({"ZREM", RoutingStore::SlaIndexKey(), input.lead_id});
    }
    a.add_reps_tried(rep.id());
    a.set_reason(absl::StrCat(why, "; ", choice->reason));

    team_state.set_cursor(choice->next_cursor);
    internal::v1::RepCounters& counters = (*team_state.mutable_reps())[rep.id()];
    const std::string today = RepDay(rep, now);
    if (counters.day() != today) {
      counters.set_day(today);
      counters.set_assigned_today(0);
    }
    const std::string month = RepMonth(rep, now);
    if (counters.month() != month) {
      counters.set_month(month);
      counters.set_assigned_this_month(0);
    }
    counters.set_open_leads(counters.open_leads() + 1);
    counters.set_assigned_today(counters.assigned_today() + 1);
    counters.set_assigned_this_month(counters.assigned_this_month() + 1);
    c.commands.push_back({"ZADD", RoutingStore::RepOpenKey(rep.id()),
                          absl::StrCat(absl::ToUnixMillis(now)), input.lead_id});
  } else {
    a.clear_rep_id();
    a.set_state(internal::v1::ASSIGNMENT_STATE_QUEUED);
    a.set_reason(absl::StrCat(why, "; no rep can take it now, queued in ", team.id()));
    if (kind != LeadRouted::KIND_ESCALATED) kind = LeadRouted::KIND_QUEUED;
    c.commands.push_back({"ZADD", RoutingStore::TeamQueueKey(team.id()),
                          absl::StrCat(absl::ToUnixMillis(now)), input.lead_id});
    // The wait is bounded when the team says so: the SLA index carries its deadline too.
    const absl::Time deadline = QueueDeadline(team, now);
    if (deadline != absl::InfiniteFuture()) {
      *a.mutable_sla_deadline() = events::ToProto(deadline);
      c.commands.push_back({"ZADD", RoutingStore::SlaIndexKey(),
                            absl::StrCat(absl::ToUnixMillis(deadline)), input.lead_id});
    } else {
      c.commands.push_back({"ZREM", RoutingStore::SlaIndexKey(), input.lead_id});
    }
  }
  c.write_assignment = true;
  Emit(input, kind, previous_rep_id, kind == LeadRouted::KIND_ESCALATED ? team.id() : std::string(),
       now, c);
}

void RoutingHandler::Emit(const Input& input, LeadRouted::Kind kind,
                          const std::string& previous_rep_id, const std::string& escalated_to,
                          absl::Time now, LeadChange& c) const {
  const RoutingAssignment& a = c.assignment;
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
  // The lead snapshot and score are lent to the event for its encoding, not copied (the lead is
  // the larger part of both records), and given back below. An absent one is set empty, as a
  // copy would have set it.
  const bool lend_lead = c.assignment.has_lead();
  const bool lend_score = c.assignment.has_score();
  if (lend_lead) {
    event.set_allocated_lead(c.assignment.release_lead());
  } else {
    event.mutable_lead();
  }
  if (lend_score) {
    event.set_allocated_score(c.assignment.release_score());
  } else {
    event.mutable_score();
  }
  event.set_team_id(a.team_id());
  event.set_rep_id(a.rep_id());
  event.set_rule_id(a.rule_id());
  event.set_reason(a.reason());
  if (a.has_sla_deadline()) *event.mutable_sla_deadline() = a.sla_deadline();
  event.set_attempt(a.attempt());
  event.set_previous_rep_id(previous_rep_id);
  event.set_episode(a.episode());
  event.set_escalated_to(escalated_to);
  // leads.routed is keyed by team (ARCHITECTURE.md §3).
  c.outputs.push_back(events::Encode(topics_.Name(kafka::kLeadsRouted), a.team_id(), event,
                                     options_.routed_encoding));
  if (lend_lead) c.assignment.set_allocated_lead(event.release_lead());
  if (lend_score) c.assignment.set_allocated_score(event.release_score());
}

RoutingHandler::ApplyKeys RoutingHandler::KeysOf(const Input& input, const std::string& team,
                                                 bool escalation_team,
                                                 const std::string& other_team_id,
                                                 const CompiledRoutingRules& rules) const {
  ApplyKeys keys;
  keys.team = team;
  const Team* team_config = rules.FindTeam(team);
  if (escalation_team && team_config != nullptr && !team_config->escalate_to().empty() &&
      team_config->escalate_to() != kEscalateToManager) {
    keys.other_team = team_config->escalate_to();
  }
  if (!other_team_id.empty() && other_team_id != team) keys.other_team = other_team_id;
  keys.rep_ids = RepIds(team_config);
  if (!keys.other_team.empty()) {
    for (std::string& id : RepIds(rules.FindTeam(keys.other_team))) keys.rep_ids.push_back(id);
  }
  redis::ApplyOnceRequest& request = keys.request;
  request.dedup_key = redis::AppliedKey(kService, input.lead_id, input.event_id);
  request.dedup_ttl = options_.dedup_ttl;
  // Records 0 and 1: the assignment and the team; then the other team; then presence.
  request.state_keys = {RoutingStore::AssignmentKey(input.lead_id),
                        RoutingStore::TeamStateKey(team)};
  if (!keys.other_team.empty()) {
    request.state_keys.push_back(RoutingStore::TeamStateKey(keys.other_team));
  }
  keys.presence_at = request.state_keys.size();
  for (const std::string& rep : keys.rep_ids) {
    request.state_keys.push_back(RoutingStore::RepPresenceKey(rep));
    request.guarded_keys.push_back(request.state_keys.back());
  }
  // Every decision of a team reads its reps' presence, and presence rarely changes: the apply
  // watches the counter every presence write moves instead of each record (store.h).
  if (!request.guarded_keys.empty()) request.guard_key = RoutingStore::PresenceChangesKey();
  // The registry lists the lead's apply-once records (under `:expiring`, pruned as they
  // expire). No record joins it: the team records and presence are every lead's of the team
  // (erasing this one must leave them, see store.h), and erasure deletes the assignment by name.
  request.registry_key = redis::RegistryKey(kService, input.lead_id);
  request.register_records = false;
  request.tombstone_key = redis::TombstoneKey(kService, input.lead_id);
  return keys;
}

absl::StatusOr<redis::Plan> RoutingHandler::PlanOn(const Input& input, const ApplyKeys& keys,
                                                   const std::vector<redis::Versioned>& records,
                                                   bool team_given, const ChangeFn& change,
                                                   bool* team_moved, ParsedTeam* parsed) const {
  *team_moved = false;
  const std::vector<std::string>& state_keys = keys.request.state_keys;
  LeadChange c;
  if (records[0].data.has_value()) {
    if (!c.assignment.ParseFromString(*records[0].data)) {
      return absl::DataLossError("corrupt assignment " + state_keys[0]);
    }
    c.assignment_exists = true;
  }
  // A chain's plans share the team record: the one the plan before wrote is still parsed.
  const redis::Versioned& team_record = records[1];
  if (parsed != nullptr && parsed->held && team_record.data.has_value() &&
      team_record.version == parsed->version && team_record.incarnation == parsed->incarnation) {
    c.team = std::move(parsed->team);
  } else if (team_record.data.has_value() && !c.team.ParseFromString(*team_record.data)) {
    return absl::DataLossError("corrupt team state " + state_keys[1]);
  }
  if (parsed != nullptr) parsed->held = false;
  if (!keys.other_team.empty()) {
    c.other_team_id = keys.other_team;
    if (records[2].data.has_value() && !c.other_team.ParseFromString(*records[2].data)) {
      return absl::DataLossError("corrupt team state " + state_keys[2]);
    }
  }
  for (size_t i = keys.presence_at; i < records.size(); ++i) {
    if (!records[i].data.has_value()) continue;
    internal::v1::RepPresence presence;
    if (!presence.ParseFromString(*records[i].data)) {
      return absl::DataLossError("corrupt presence " + records[i].key);
    }
    c.presence[keys.rep_ids[i - keys.presence_at]] = std::move(presence);
  }
  if (!team_given && (!c.assignment_exists || c.assignment.team_id() != keys.team)) {
    *team_moved = true;
    return absl::AbortedError("the assignment moved meanwhile");
  }
  if (absl::Status s = change(c); !s.ok()) return s;

  redis::Plan plan;
  if (c.delete_assignment) {
    plan.writes.push_back({state_keys[0], std::nullopt});
  } else if (c.write_assignment) {
    plan.writes.push_back({state_keys[0], c.assignment.SerializeAsString()});
  }
  if (c.write_team) {
    c.team.set_team_id(keys.team);
    plan.writes.push_back({state_keys[1], c.team.SerializeAsString()});
    if (parsed != nullptr) {
      parsed->team = std::move(c.team);
      parsed->held = true;
    }
  }
  if (c.write_other_team && !keys.other_team.empty()) {
    c.other_team.set_team_id(keys.other_team);
    plan.writes.push_back({state_keys[2], c.other_team.SerializeAsString()});
  }
  for (redis::Args& command : c.commands) plan.extra_commands.push_back(std::move(command));
  plan.memo = kafka::EncodeMemo(c.outputs);
  return plan;
}

absl::StatusOr<std::vector<kafka::OutboundMessage>> RoutingHandler::OutputsOf(
    const redis::ApplyResult& applied) {
  std::vector<kafka::OutboundMessage> outputs;
  if (applied.outcome == redis::ApplyOutcome::kErased) return outputs;  // erased: ignore
  if (absl::Status s = kafka::DecodeMemo(applied.memo, &outputs); !s.ok()) return s;
  return outputs;
}

absl::StatusOr<std::vector<kafka::OutboundMessage>> RoutingHandler::Apply(
    const Input& input, const std::optional<std::string>& team_id, const ChangeFn& change,
    bool escalation_team, redis::ApplyOutcome* outcome, const std::string& other_team_id) {
  absl::StatusOr<std::shared_ptr<const CompiledRoutingRules>> rules = rules_.Current();
  if (!rules.ok()) return rules.status();
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
    const ApplyKeys keys = KeysOf(input, team, escalation_team, other_team_id, **rules);
    bool team_moved = false;
    absl::StatusOr<redis::ApplyResult> applied =
        store_.apply().Run(keys.request, [&](const std::vector<redis::Versioned>& records) {
          return PlanOn(input, keys, records, team_id.has_value(), change, &team_moved);
        });
    if (!applied.ok()) {
      if (team_moved) continue;
      return applied.status();
    }
    if (outcome != nullptr) *outcome = applied->outcome;
    return OutputsOf(*applied);
  }
  return absl::AbortedError(
      absl::StrCat("assignment of ", input.lead_id, " kept moving between teams; retry"));
}

}  // namespace leadflow::routing
