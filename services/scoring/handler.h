#pragma once

// ScoringHandler: lead events in → the lead's state updated, rescored → `leads.scored` on change.
//
// Every input takes one path (ARCHITECTURE.md §4):
//   decode → apply-once on (lead, input event id) over the lead's state record:
//     update the inputs of scoring (profile, aggregates, outcome, flags, explicit interest from
//     the rules' interest signals) → Score (engine)
//     → Diff against the previous snapshot (engine, score bucket 5)
//     → write the state, move the lead between segment sets, memoise the outputs
//   → LeadScored, only for the first score or when Diff is not empty.
// A re-delivered input changes nothing and returns the memoised event (same event id). Inputs
// of an erased lead are ignored. A lead is scored once its profile is known: activity that
// arrives before `leads.captured` is stored and counts when the profile comes.
//
// A `leads.captured` event with merged_lead_ids (capture merged those leads into this one)
// also deletes the absorbed leads' scoring state, as an erasure does: the person is scored as
// the survivor, whose aggregates tracking re-sends with the absorbed behaviour folded in.
//
// Batch path (HandleCapturedBatch / HandleActivityBatch, the consumer loop's batch routes of the
// two high-volume topics): the same Prepare / PlanFor / OutcomeOf pieces as the single path,
// over ApplyOnce::RunBatch, so a wave of N leads costs three pipelined round trips instead of 2N.
// Outcomes (which train the shared model) and erasures stay one by one.
//
// Scores are computed at the event time of the cause, never earlier than the lead's previous
// score: a late event must not move windows and decay back in time.
//
// Learned conversion probability: every score is served with the model's prediction (the prior
// until enough outcomes). A won or lost outcome also trains the model: the same apply-once reads
// and rewrites `scoring:model` with the lead's record, so the update is atomic with the
// outcome's dedup record and a replayed outcome never trains twice. The features are the lead's
// as they were when the outcome arrived (profile, aggregates, category before the outcome).
//
// Every apply also keeps the lead in the lead index and puts it in the decay schedule at
// NextChangeAt (engine), or out of it; Rescore is the path of the decay scheduler and the
// re-score after a rules change: the same apply with no new input, under a cause id of the
// caller's making, so a repeated call with the same cause returns the same event.
//
// Thread safety: the Handle* methods may be called concurrently (replicas and threads race
// through the store's version check).

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/config/yaml_proto.h"
#include "common/kafka/handler.h"
#include "common/kafka/topics.h"
#include "common/runtime/clock.h"
#include "leadflow/events/v1/activity.pb.h"
#include "leadflow/events/v1/lead.pb.h"
#include "services/scoring/engine.h"
#include "services/scoring/store.h"

namespace leadflow::scoring {

// The scoring rules in force, reloaded when config/scoring.yaml changes.
using ScoringRulesSource = config::Reloadable<CompiledScoringRules>;

// Reads and compiles a scoring rule file (the loader of ScoringRulesSource). INVALID_ARGUMENT,
// naming the file and the field, when it does not parse or validate; NOT_FOUND without it.
absl::StatusOr<std::shared_ptr<const CompiledScoringRules>> LoadScoringRules(
    const std::string& path);

// The learned model as last read from Redis, shared by the handler and the gRPC service. The
// stored record's version is checked at most every `refresh` (injected clock), so a model trained
// by another replica is picked up within that time without reading the weights per event.
class ModelCache {
 public:
  // Borrows both; they must outlive the cache.
  ModelCache(ScoringStore& store, const runtime::Clock& clock,
             absl::Duration refresh = absl::Seconds(5));

  // The current model; an untrained one of `hash_bits` when none is stored. UNAVAILABLE /
  // DATA_LOSS from the store (the caller retries).
  absl::StatusOr<std::shared_ptr<const ConversionModel>> Get(int hash_bits);
  // Installs a model this process just stored (the next Get re-checks the stored version).
  void Put(std::shared_ptr<const ConversionModel> model);

 private:
  ScoringStore& store_;
  const runtime::Clock& clock_;
  const absl::Duration refresh_;
  absl::Mutex mu_;
  std::shared_ptr<const ConversionModel> model_ ABSL_GUARDED_BY(mu_);
  int64_t version_ ABSL_GUARDED_BY(mu_) = -1;  // -1: unknown, re-read
  absl::Time checked_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

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
  ScoringHandler(const ScoringRulesSource& rules, ScoringStore& store, ModelCache& model,
                 const kafka::Topics& topics, const runtime::Clock& clock,
                 ScoringOptions options = {});

  // Consumer-loop routes. INVALID_ARGUMENT (→ DLQ) for a payload that does not decode or names
  // no lead; UNAVAILABLE / ABORTED for store trouble (retried).
  absl::StatusOr<std::vector<kafka::OutboundMessage>> HandleCaptured(
      const kafka::ConsumedMessage& message);
  absl::StatusOr<std::vector<kafka::OutboundMessage>> HandleActivity(
      const kafka::ConsumedMessage& message);
  // HandleCaptured() / HandleActivity() for the inputs of one wave (kafka::HandleInKeyWaves:
  // distinct leads), sharing round trips through ApplyOnce::RunBatch: one transaction that
  // watches and reads every dedup key, tombstone and state, then applies every plan. Result i
  // is what the single handler gives for messages[i] (same outputs, event ids and memo). Two
  // inputs of one lead in a call stay correct (the later is re-planned alone), but belong in
  // successive waves. A captured merge erases its absorbed leads after its own apply and before
  // any later input of the call is applied, as one-by-one handling would.
  std::vector<kafka::HandleResult> HandleCapturedBatch(
      const std::vector<const kafka::ConsumedMessage*>& messages);
  std::vector<kafka::HandleResult> HandleActivityBatch(
      const std::vector<const kafka::ConsumedMessage*>& messages);
  absl::StatusOr<std::vector<kafka::OutboundMessage>> HandleOutcome(
      const kafka::ConsumedMessage& message);
  absl::StatusOr<std::vector<kafka::OutboundMessage>> HandleErasure(
      const kafka::ConsumedMessage& message);

  // Re-scores a lead with no new input at `now` (never before its previous score), applied once
  // per `cause_id` (which must name the lead: it seeds the emitted event id). Returns
  // `leads.scored` when something changed; nothing for a lead scoring does not know or erased.
  absl::StatusOr<std::vector<kafka::OutboundMessage>> Rescore(const std::string& lead_id,
                                                              const std::string& cause_id,
                                                              absl::Time now);

  const ScoringOptions& options() const { return options_; }

  // The envelope facts of one input (defined in handler.cc).
  struct Input;

 private:
  // Changes the lead's state for one input, under the rule set the whole apply uses.
  using Update = std::function<void(const CompiledScoringRules&, internal::v1::ScoringLeadState&)>;

  // One input's apply as the single and batch paths share it (defined in handler.cc).
  struct Pending;

  // The shared path: apply `update` to the lead's state, rescore, emit on change. With a label
  // (won = true, lost = false) the model is trained on the lead first. `existing_only`: change
  // nothing for a lead without a record (re-scores). Prepare + ApplyOne.
  absl::StatusOr<std::vector<kafka::OutboundMessage>> Apply(
      const Input& input, Update update, std::optional<bool> label = std::nullopt,
      bool existing_only = false);

  // The pieces of Apply, shared with the batch path:
  //   Prepare: fixes the rule set, model and processing time of the input, and its apply-once
  //     request (the lead's state; the model too when training);
  //   PlanFor: the planner (pure in the records; may run more than once);
  //   OutcomeOf: the outputs of an apply result (the memo; none for an erased lead), installing
  //     the model the plan trained once it is applied.
  absl::StatusOr<Pending> Prepare(const Input& input, Update update,
                                  std::optional<bool> label = std::nullopt,
                                  bool existing_only = false);
  absl::StatusOr<redis::Plan> PlanFor(Pending& pending,
                                      const std::vector<redis::Versioned>& records);
  absl::StatusOr<std::vector<kafka::OutboundMessage>> OutcomeOf(
      Pending& pending, absl::StatusOr<redis::ApplyResult> applied);
  // ApplyOnce::Run / RunBatch over prepared inputs (result i for pending[i]).
  absl::StatusOr<std::vector<kafka::OutboundMessage>> ApplyOne(Pending& pending);
  std::vector<kafka::HandleResult> ApplyBatch(std::vector<Pending>& pending);

  // The prepared apply of a decoded input; the update borrows the event (it must outlive it).
  absl::StatusOr<Pending> CapturedPending(const kafka::ConsumedMessage& message,
                                          const events::v1::LeadCaptured& captured);
  absl::StatusOr<Pending> ActivityPending(const kafka::ConsumedMessage& message,
                                          const events::v1::LeadActivity& activity);
  // Deletes the scoring state of the leads a capture merged into `survivor`.
  absl::Status EraseAbsorbed(const events::v1::LeadCaptured& captured, const std::string& survivor);

  const ScoringRulesSource& rules_;
  ScoringStore& store_;
  ModelCache& model_;
  const kafka::Topics& topics_;
  const runtime::Clock& clock_;
  const ScoringOptions options_;
};

}  // namespace leadflow::scoring
