#pragma once

// RoutingHandler: scored leads and sales outcomes in → assignments → `leads.routed`.
//
// LeadScored: when the lead just reached the routing threshold (ShouldRoute) and holds no
// assignment in its current episode: MatchTeam → PickRep over the team's rep states (config
// plus the counters in the team record) → one atomic apply-once over the lead's assignment AND
// the team record → LeadRouted (KIND_ASSIGNED, or KIND_QUEUED when no rep is eligible), keyed by
// team id. A lead routed in this episode is never routed again by a later score.
//
// LeadOutcome: accepted / contacted (qualified counts as contacted) move the assignment on;
// rejected releases the rep and re-assigns to a rep who has not had the lead this episode
// (KIND_REASSIGNED, or KIND_QUEUED when none can take it); won / lost close the assignment and
// release the rep's open lead; lost also lets the next qualification open episode + 1 (once
// scoring no longer reports the lead as lost, i.e. it was recycled by new activity).
//
// Every effect is keyed by (lead, input event id): a re-delivered input changes nothing and
// returns the same events (same ids: DeriveEventId("routed", input id)). Inputs of an erased
// lead are ignored. Decisions use the injected clock (working hours, SLA, "today").
//
// Rep presence: every rep counts as available (RepState's default) until availability arrives
// over gRPC (a later issue); PickRep already honours presence once RepStates carry it.
//
// Thread safety: the Handle* methods may be called concurrently, from any number of replicas;
// races on a lead or a team resolve through the store's version checks.

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
#include "common/runtime/clock.h"
#include "leadflow/events/v1/routing.pb.h"
#include "leadflow/internal/v1/routing_state.pb.h"
#include "services/routing/engine.h"
#include "services/routing/store.h"

namespace leadflow::routing {

// The routing rules in force, reloaded when config/routing.yaml changes.
using RoutingRulesSource = config::Reloadable<CompiledRoutingRules>;

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
};

class RoutingHandler {
 public:
  // Borrows everything; all must outlive the handler.
  RoutingHandler(const RoutingRulesSource& rules, RoutingStore& store, const kafka::Topics& topics,
                 const runtime::Clock& clock, RoutingOptions options = {});

  // Consumer-loop routes. INVALID_ARGUMENT (→ DLQ) for a payload that does not decode, names no
  // lead, or (outcomes) has no kind; UNAVAILABLE / ABORTED for store trouble (retried).
  absl::StatusOr<std::vector<kafka::OutboundMessage>> HandleScored(
      const kafka::ConsumedMessage& message);
  absl::StatusOr<std::vector<kafka::OutboundMessage>> HandleOutcome(
      const kafka::ConsumedMessage& message);
  absl::StatusOr<std::vector<kafka::OutboundMessage>> HandleErasure(
      const kafka::ConsumedMessage& message);

  // The envelope facts of one input (defined in handler.cc).
  struct Input;
  // One apply's view of the lead's assignment and its team's record (defined in handler.cc).
  struct LeadChange;

 private:
  using ChangeFn = std::function<absl::Status(LeadChange&)>;

  // Runs `change` in one apply-once over the lead's assignment and a team record: `team_id`'s,
  // or, when nullopt, the team of the lead's current assignment (nothing happens for a lead
  // without one). Returns the outputs (memoised for re-deliveries).
  absl::StatusOr<std::vector<kafka::OutboundMessage>> Apply(
      const Input& input, const std::optional<std::string>& team_id, const ChangeFn& change);

  // Gives the lead to a rep of `team`, excluding `excluded`, or queues it there when none can
  // take it; updates `c` and emits LeadRouted of `kind` (KIND_QUEUED when queued).
  void AssignOrQueue(const Input& input, const config::v1::Team& team,
                     const std::vector<std::string>& excluded, absl::Time now,
                     const std::string& why, events::v1::LeadRouted::Kind kind,
                     const std::string& previous_rep_id, LeadChange& c) const;

  const RoutingRulesSource& rules_;
  RoutingStore& store_;
  const kafka::Topics& topics_;
  const runtime::Clock& clock_;
  const RoutingOptions options_;
};

}  // namespace leadflow::routing
