#pragma once

// ScoringHandler: lead events in → the lead's state updated, rescored → `leads.scored` on change.
//
// Every input takes one path (ARCHITECTURE.md §4):
//   decode → apply-once on (lead, input event id) over the lead's state record:
//     update the inputs of scoring (profile, aggregates, outcome, flags) → Score (engine)
//     → Diff against the previous snapshot (engine, score bucket 5)
//     → write the state, move the lead between segment sets, memoise the outputs
//   → LeadScored, only for the first score or when Diff is not empty.
// A re-delivered input changes nothing and returns the memoised event (same event id). Inputs
// of an erased lead are ignored. A lead is scored once its profile is known: activity that
// arrives before `leads.captured` is stored and counts when the profile comes.
//
// Scores are computed at the event time of the cause, never earlier than the lead's previous
// score: a late event must not move windows and decay back in time.
//
// Thread safety: the Handle* methods may be called concurrently (replicas and threads race
// through the store's version check).

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config/yaml_proto.h"
#include "common/kafka/handler.h"
#include "common/kafka/topics.h"
#include "common/runtime/clock.h"
#include "services/scoring/engine.h"
#include "services/scoring/store.h"

namespace leadflow::scoring {

// The scoring rules in force, reloaded when config/scoring.yaml changes.
using ScoringRulesSource = config::Reloadable<CompiledScoringRules>;

// Reads and compiles a scoring rule file (the loader of ScoringRulesSource). INVALID_ARGUMENT,
// naming the file and the field, when it does not parse or validate; NOT_FOUND without it.
absl::StatusOr<std::shared_ptr<const CompiledScoringRules>> LoadScoringRules(
    const std::string& path);

struct ScoringOptions {
  // LeadScored.changed reports "score" when floor(total / score_bucket) moves.
  double score_bucket = 5;
  // Emitted snapshots kept for ExplainScore.
  int history_size = 20;
  // How long an input's event id is remembered.
  absl::Duration dedup_ttl = absl::Hours(24 * 7);
  absl::Duration tombstone_ttl = absl::Hours(24 * 30);
};

class ScoringHandler {
 public:
  // Borrows everything; all must outlive the handler.
  ScoringHandler(const ScoringRulesSource& rules, ScoringStore& store, const kafka::Topics& topics,
                 const runtime::Clock& clock, ScoringOptions options = {});

  // Consumer-loop routes. INVALID_ARGUMENT (→ DLQ) for a payload that does not decode or names
  // no lead; UNAVAILABLE / ABORTED for store trouble (retried).
  absl::StatusOr<std::vector<kafka::OutboundMessage>> HandleCaptured(
      const kafka::ConsumedMessage& message);
  absl::StatusOr<std::vector<kafka::OutboundMessage>> HandleActivity(
      const kafka::ConsumedMessage& message);
  absl::StatusOr<std::vector<kafka::OutboundMessage>> HandleOutcome(
      const kafka::ConsumedMessage& message);
  absl::StatusOr<std::vector<kafka::OutboundMessage>> HandleErasure(
      const kafka::ConsumedMessage& message);

  // The envelope facts of one input (defined in handler.cc).
  struct Input;

 private:
  using Update = std::function<void(internal::v1::ScoringLeadState&)>;

  // The shared path: apply `update` to the lead's state, rescore, emit on change.
  absl::StatusOr<std::vector<kafka::OutboundMessage>> Apply(const Input& input,
                                                            const Update& update);

  const ScoringRulesSource& rules_;
  ScoringStore& store_;
  const kafka::Topics& topics_;
  const runtime::Clock& clock_;
  const ScoringOptions options_;
};

}  // namespace leadflow::scoring
