#pragma once

// RoutingHandler: scored leads, sales outcomes and the scheduler's passes in → assignments →
// `leads.routed`.
//
// LeadScored: when the lead just reached the routing threshold (ShouldRoute) and holds no
// assignment in its current episode: MatchTeam → PickRep over the team's rep states (config
// plus the counters in the team record plus each rep's stored presence) → one atomic apply-once
// over the lead's assignment, the team record and the reps' presence records → LeadRouted
// (KIND_ASSIGNED, or KIND_QUEUED when no rep is eligible), keyed by team id. A lead routed in
// this episode is never routed again by a later score.
//
// LeadOutcome: accepted / contacted (qualified counts as contacted) move the assignment on,
// stop its SLA and observe time-to-accept / time-to-first-contact; rejected releases the rep
// and re-assigns to a rep who has not had the lead this episode (KIND_REASSIGNED, or
// KIND_QUEUED when none can take it); won / lost close the assignment, release the rep's open
// lead and emit KIND_CONVERTED / KIND_RECYCLED; lost also lets the next qualification open
// episode + 1 (once scoring no longer reports the lead as lost, i.e. it was recycled by new
// activity).
//
// Scheduler passes (scheduler.h): HandleSlaDue fires a due SLA (NextAfterSlaBreach →
// KIND_REASSIGNED, KIND_ESCALATED to another team or the manager, or KIND_QUEUED) or a queued
// lead's queue timeout (KIND_ESCALATED to the team's escalate_to), DrainQueued gives a queued
// lead to a rep who became eligible (never one who had it this episode). Their input ids are
// synthetic and derived from the assignment they act on ("sla:<lead>:<episode>:<attempt>:<assigned
// ms>"), so a retried pass, or two replicas passing at once, apply the decision once and publish
// the same event ids. Each records itself in the outbox (store.h) atomically with the decision; the
// scheduler removes it once the broker acknowledged the events (Replay re-reads the memo).
//
// Every effect is keyed by (lead, input event id): a re-delivered input changes nothing and
// returns the same events (same ids: DeriveEventId("routed", input id)). Inputs of an erased
// lead are ignored. Decisions use the injected clock (working hours, SLA, "today", "this
// month").
//
// Thread safety: all methods may be called concurrently, from any number of replicas; races on
// a lead, a team or a rep's presence resolve through the store's version checks.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config/yaml_proto.h"
#include "common/events/codec.h"
#include "common/kafka/handler.h"
#include "common/kafka/topics.h"
#include "common/redis/apply_once.h"
#include "common/runtime/clock.h"
#include "leadflow/events/v1/routing.pb.h"
#include "leadflow/internal/v1/routing_state.pb.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "services/routing/effective_rules.h"
#include "services/routing/engine.h"
#include "services/routing/store.h"

namespace leadflow::routing {

// Reads and compiles a routing rule file (the loader of RoutingRulesSource). INVALID_ARGUMENT,
// naming the file and the field, when it does not parse or validate; NOT_FOUND without it.
absl::StatusOr<std::shared_ptr<const CompiledRoutingRules>> LoadRoutingRules(
    const std::string& path);

struct RoutingOptions {
  // Encoding of the public `leads.routed` topic (JSON for dashboards that want it).
  events::Encoding routed_encoding = events::Encoding::kProtobuf;
  // How long an input's event id is remembered.
  absl::Duration dedup_ttl = absl::Hours(24 * 7);
  absl::Duration tombstone_ttl = absl::Hours(24 * 30);
  // Threads one wave of scored leads is decided on (HandleScoredBatch): leads that share no
  // record (other teams, no rep in common) are split over up to this many, each with its own
  // chains and round trips (LEADFLOW_WAVE_LANES), and at least 16 leads each (a smaller
  // wave takes fewer lanes). 1 decides a wave on the caller's thread alone.
  int wave_lanes = 2;
};

// What a scheduler pass did to one lead (HandleSlaDue, DrainQueued).
struct PassStep {
  // The events to publish; empty when there was nothing to do.
  std::vector<kafka::OutboundMessage> outputs;
  // The synthetic input id; with the lead id it names the outbox entry to remove once the
  // outputs are acknowledged (RoutingStore::OutboxMember).
  std::string event_id;
  // False when the decision had been applied before (a retried pass or another replica): the
  // outputs are the original ones.
  bool applied_now = false;
};

class RoutingHandler {
 public:
  // Borrows everything; all must outlive the handler. Histograms are registered in `registry`.
  RoutingHandler(EffectiveRules& rules, RoutingStore& store, const kafka::Topics& topics,
                 const runtime::Clock& clock, prometheus::Registry& registry,
                 RoutingOptions options = {});

  // Consumer-loop routes. INVALID_ARGUMENT (→ DLQ) for a payload that does not decode, names no
  // lead, or (outcomes) has no kind; UNAVAILABLE / ABORTED for store trouble (retried).
  absl::StatusOr<std::vector<kafka::OutboundMessage>> HandleScored(
      const kafka::ConsumedMessage& message);
  // The `leads.scored` wave route (TopicRouter, kafka::HandleInKeyWaves: distinct leads).
  // Result i is what HandleScored(*messages[i]) would return (same outputs, event ids and
  // errors), with the wave's decisions sharing round trips: one pipelined read of every record
  // they need (a team's record once), the leads planned in input order on chained records (lead
  // k+1 on the team record as lead k's plan leaves it), and one apply-once transaction
  // (ApplyOnce::RunBatchOnRead) that checks each lead's records as planned on. Every record a
  // plan writes gets a fresh incarnation (Plan::incarnations), so a later lead's check on it
  // passes only if that plan is applied. A lead whose records moved meanwhile (another
  // replica) fails its check, and so does every later one planned on its writes; those leads are
  // planned again as a new chain on fresh records (up to 4 chains), then one by one. Leads that
  // share no record are split over up to options.wave_lanes threads, 16 leads or more each
  // (their chains side by side); the results are the same.
  std::vector<kafka::HandleResult> HandleScoredBatch(
      const std::vector<const kafka::ConsumedMessage*>& messages);
  absl::StatusOr<std::vector<kafka::OutboundMessage>> HandleOutcome(
      const kafka::ConsumedMessage& message);
  absl::StatusOr<std::vector<kafka::OutboundMessage>> HandleErasure(
      const kafka::ConsumedMessage& message);

  // Fires the SLA of `lead_id` (a member of the SLA index) if its assigned rep has neither
  // accepted nor contacted it by the deadline, or escalates it if it is queued past its team's
  // queue timeout; otherwise corrects the index (drops a lead that moved on, re-scores one
  // whose deadline is later) and returns no outputs.
  absl::StatusOr<PassStep> HandleSlaDue(const std::string& lead_id);
  // Gives `lead_id`, queued in `team_id`, to a rep who can take it now (one who has not had it
  // this episode, unless every rep has). No outputs when nobody can (`*nobody` set) or the lead
  // is no longer queued there (its stale queue entry is dropped).
  absl::StatusOr<PassStep> DrainQueued(const std::string& lead_id, const std::string& team_id,
                                       bool* nobody);
  // Explicit re-route (gRPC Reroute; input id DeriveEventId("reroute", request_id)): the lead
  // goes, by the rules in force applied to its stored snapshot, to its matching team. A lead
  // held by a rep (assigned, accepted, contacted) is released from that rep and re-assigned in
  // the same episode to a rep who has not had it (KIND_REASSIGNED, or KIND_QUEUED when none can
  // take it). A lead held by nobody (queued, escalated to the manager, closed) starts episode + 1
  // (KIND_ASSIGNED, or KIND_QUEUED). Recorded in the outbox like a pass decision; publish with
  // RoutingScheduler. NOT_FOUND when the lead was never routed (or was erased).
  absl::StatusOr<PassStep> Reroute(const std::string& lead_id, const std::string& reason,
                                   const std::string& request_id);
  // The outputs a pass decision recorded (to re-send an unacknowledged outbox entry); empty
  // when the record is gone (expired, or the lead erased).
  absl::StatusOr<std::vector<kafka::OutboundMessage>> Replay(const std::string& lead_id,
                                                             const std::string& event_id);

  // The envelope facts of one input (defined in handler.cc).
  struct Input;
  // One apply's view of the lead's assignment and its team's record (defined in handler.cc).
  struct LeadChange;
  // A decoded, routable scored lead and its team decision (defined in handler.cc).
  struct ScoredLead;
  // The request of one apply and where its records are (defined in handler.cc).
  struct ApplyKeys;
  // A team record one plan of a chain wrote, kept parsed for the next (defined in handler.cc).
  struct ParsedTeam;

 private:
  using ChangeFn = std::function<absl::Status(LeadChange&)>;

  // Runs `change` in one apply-once over the lead's assignment, a team record (`team_id`'s,
  // or, when nullopt, the team of the lead's current assignment; nothing happens for a lead
  // without one), with `escalation_team` also that team's escalate_to team record (or, with
  // `other_team_id`, that team's record), and the presence records of those teams' reps. Returns
  // the outputs (memoised for re-deliveries); `outcome`, when given, says whether the change was
  // applied now.
  absl::StatusOr<std::vector<kafka::OutboundMessage>> Apply(
      const Input& input, const std::optional<std::string>& team_id, const ChangeFn& change,
      bool escalation_team = false, redis::ApplyOutcome* outcome = nullptr,
      const std::string& other_team_id = "");

  // The keys Apply reads for `input` over `team` (and its escalation or other team, as Apply).
  ApplyKeys KeysOf(const Input& input, const std::string& team, bool escalation_team,
                   const std::string& other_team_id, const CompiledRoutingRules& rules) const;
  // Runs `change` on `records` (those of keys.request.state_keys) and turns it into a plan.
  // Unless `team_given`, an assignment no longer in keys.team sets `*team_moved` (ABORTED).
  // With `parsed` (a chain's plans, HandleScoredBatch), a team record that is the one `parsed`
  // holds is taken from it instead of being parsed, and the team record the plan writes is left
  // in it (its version and incarnation are the caller's to set).
  absl::StatusOr<redis::Plan> PlanOn(const Input& input, const ApplyKeys& keys,
                                     const std::vector<redis::Versioned>& records, bool team_given,
                                     const ChangeFn& change, bool* team_moved,
                                     ParsedTeam* parsed = nullptr) const;
  // The outputs an apply memoised (none for an erased lead).
  static absl::StatusOr<std::vector<kafka::OutboundMessage>> OutputsOf(
      const redis::ApplyResult& applied);

  // HandleScored's decoding and team decision: nullopt when the score can never route.
  absl::StatusOr<std::optional<ScoredLead>> PrepareScored(
      const kafka::ConsumedMessage& message,
      const absl::StatusOr<std::shared_ptr<const CompiledRoutingRules>>& rules) const;
  // What a scored lead changes: routes it unless it was routed in this episode.
  absl::Status ChangeScored(const ScoredLead& lead, absl::Time now, LeadChange& c) const;

  // A pass step: Apply with the outbox entry added to the change's commands. `other_team_id`,
  // when not empty and not the lead's team, is loaded as the other team (as escalation_team
  // loads escalate_to).
  absl::StatusOr<PassStep> ApplyPass(const Input& input, const ChangeFn& change,
                                     bool escalation_team, bool* nothing_to_do,
                                     const std::string& other_team_id = "");

  // Gives the lead to a rep of `team` (whose record in `c` is `team_state`), excluding
  // `excluded`, or queues it there when none can take it; updates `c` and emits LeadRouted of
  // `kind` (KIND_QUEUED when queued, unless `kind` is KIND_ESCALATED).
  void AssignOrQueue(const Input& input, const config::v1::Team& team,
                     internal::v1::RoutingTeamState& team_state,
                     const std::vector<std::string>& excluded, absl::Time now,
                     const std::string& why, events::v1::LeadRouted::Kind kind,
                     const std::string& previous_rep_id, LeadChange& c) const;
  // Emits the LeadRouted of the assignment as `c` now holds it.
  void Emit(const Input& input, events::v1::LeadRouted::Kind kind,
            const std::string& previous_rep_id, const std::string& escalated_to, absl::Time now,
            LeadChange& c) const;

  prometheus::Histogram& Latency(prometheus::Family<prometheus::Histogram>& family,
                                 const std::string& team_id);

  EffectiveRules& rules_;
  RoutingStore& store_;
  const kafka::Topics& topics_;
  const runtime::Clock& clock_;
  const RoutingOptions options_;
  prometheus::Family<prometheus::Histogram>& time_to_accept_;
  prometheus::Family<prometheus::Histogram>& time_to_first_contact_;
};

}  // namespace leadflow::routing
