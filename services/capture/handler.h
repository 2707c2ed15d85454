#pragma once

// CaptureHandler: a submission → normalised, matched, merged lead → `leads.captured`.
//
// The one path every intake takes (gRPC SubmitLead/SubmitLeads, `leads.inbound`, leadctl import),
// so the same data gives the same result whichever way it came:
//   Normalize (engine) → candidate look-up (store) → Match (engine) → Merge or NewLead (engine)
//   → apply-once on the request id (store) → LeadCaptured event.
// A resubmission with the same request id returns the original response and the original event
// (same event id) and changes nothing.
//
// Merging leads: when the submission matches the chosen lead by one exact key and other leads
// by others (MatchDecision::also_matched_lead_ids; converted leads excluded), they are one
// person. In the same atomic apply the chosen lead absorbs them (MergeLeads, then the
// submission), their exact-key index records move to it, they leave the fuzzy blocking sets,
// their registries join its registry (erasing the survivor erases them), and each absorbed
// profile is replaced by a redirect naming the survivor (CaptureStore::LoadCurrent follows it; a
// won outcome for an absorbed id marks the survivor). The LeadCaptured event (CHANGE_UPDATED)
// carries merged_lead_ids. The absorbed profiles and index records are version-checked state of
// the apply, so a concurrent change to any of them re-plans or matches again.
//
// Metrics (docs/OPERATIONS.md, Capture): submissions by outcome, matches by key, leads merged
// into others, and the candidate leads compared per submission.
//
// Thread safety: Submit() may be called concurrently (gRPC threads and the consumer loop);
// races on one person resolve through the store's versioned index records.

#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "common/kafka/handler.h"
#include "common/kafka/topics.h"
#include "common/runtime/clock.h"
#include "leadflow/capture/v1/capture.pb.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "services/capture/engine.h"
#include "services/capture/store.h"

namespace leadflow::capture {

struct SubmitOutcome {
  capture::v1::SubmitLeadResponse response;
  // Events to publish (empty when nothing changed). On a duplicate request: the original
  // events again (same ids) while their delivery is unconfirmed, none once the gRPC API
  // recorded them acknowledged (CaptureStore::MarkSent).
  std::vector<kafka::OutboundMessage> outputs;
};

struct CaptureOptions {
  double fuzzy_threshold = kDefaultFuzzyThreshold;
  absl::Duration request_retention = absl::Hours(24 * 7);
  absl::Duration tombstone_ttl = absl::Hours(24 * 30);
};

class CaptureHandler {
 public:
  CaptureHandler(const Normalizer& normalizer, CaptureStore& store, const kafka::Topics& topics,
                 const runtime::Clock& clock, prometheus::Registry& registry,
                 CaptureOptions options = {});

  // Captures one submission. `request_id` is the idempotency key (the submission's own, or one
  // derived from where it came from). INVALID_ARGUMENT with field violations for bad input;
  // UNAVAILABLE / ABORTED for store trouble (retry).
  absl::StatusOr<SubmitOutcome> Submit(const events::v1::LeadSubmission& submission,
                                       const std::string& request_id);

  // Submit() for many submissions at once (a poll's leads.inbound messages, a SubmitLeads
  // stream's items): the first matching round of all of them shares its round trips — one
  // candidate look-up, one profile read, one apply-once transaction
  // (ApplyOnce::RunBatch). A submission whose look-up went stale meanwhile (another one of the
  // batch claimed its key: the same person twice) matches again alone. Result i is what
  // Submit(*submissions[i], request_ids[i]) gives.
  std::vector<absl::StatusOr<SubmitOutcome>> SubmitBatch(
      const std::vector<const events::v1::LeadSubmission*>& submissions,
      const std::vector<std::string>& request_ids);

  // How long request ids are remembered.
  absl::Duration request_retention() const { return options_.request_retention; }
  const runtime::Clock& clock() const { return clock_; }

  // What a submission with `request_id` was answered, from its apply-once record, with its
  // events unless they are recorded acknowledged (CaptureStore::MarkSent): what a duplicate
  // request gets, without a submission. NOT_FOUND when no submission was recorded under that id
  // (none got that far, the record expired, or the lead was erased).
  absl::StatusOr<SubmitOutcome> Replay(const std::string& request_id);

  // Consumer-loop routes.
  absl::StatusOr<std::vector<kafka::OutboundMessage>> HandleInbound(
      const kafka::ConsumedMessage& message);
  // HandleInbound() for a wave of messages (kafka::HandleInKeyWaves), through SubmitBatch().
  std::vector<kafka::HandleResult> HandleInboundBatch(
      const std::vector<const kafka::ConsumedMessage*>& messages);
  // `leads.outcomes`: a won outcome marks the lead converted (converted_at, contact_id), so the
  // person's next submission opens a new lead episode; for a lead merged away, the lead it was
  // merged into. Other outcomes change nothing here.
  absl::StatusOr<std::vector<kafka::OutboundMessage>> HandleOutcome(
      const kafka::ConsumedMessage& message);
  absl::StatusOr<std::vector<kafka::OutboundMessage>> HandleErasure(
      const kafka::ConsumedMessage& message);

 private:
  // One matching round of a submission: what the look-up found, the decision, and the apply-once
  // request whose records the plan re-checks.
  struct MatchAttempt {
    const NormalizedSubmission* norm = nullptr;
    std::string request_id;
    absl::Time now;
    std::vector<std::string> candidate_ids;  // as looked up (a key claimed by another: stale)
    MatchDecision decision;
    std::optional<events::v1::LeadProfile> converted;  // the matched lead, when converted
    std::string target;                                // the lead the submission goes to
    std::vector<std::string> absorbed;                 // leads merged into target
    absl::flat_hash_set<std::string> absorbed_set;
    // state_keys: [0] target's profile, [1, absorbed_at) the submission's index records,
    // [absorbed_at, absorbed_index_at) the absorbed profiles, then their own index records.
    redis::ApplyOnceRequest request;
    size_t absorbed_at = 0;
    size_t absorbed_index_at = 0;
    // Set by PlanAttempt when the look-up went stale: look up and match again.
    bool retry_match = false;
  };
  MatchAttempt PrepareAttempt(const NormalizedSubmission& norm, const std::string& request_id,
                              absl::Time now, std::vector<std::string> candidate_ids,
                              std::vector<events::v1::LeadProfile> candidates) const;
  // The plan of an attempt over its records as read now (may run more than once).
  absl::StatusOr<redis::Plan> PlanAttempt(MatchAttempt& attempt,
                                          const std::vector<redis::Versioned>& state) const;
  // Submit()'s answer for an apply's result (a duplicate request: the original one).
  absl::StatusOr<SubmitOutcome> OutcomeOf(const absl::StatusOr<redis::ApplyResult>& applied,
                                          const std::string& request_id);
  // Counts a finished submission in the metrics (transient failures are not finished).
  void Count(const absl::StatusOr<SubmitOutcome>& outcome);
  // Submit() after normalisation: matching rounds until one applies.
  absl::StatusOr<SubmitOutcome> SubmitNormalized(const NormalizedSubmission& norm,
                                                 const std::string& request_id, absl::Time now);

  const Normalizer& normalizer_;
  CaptureStore& store_;
  const kafka::Topics& topics_;
  const runtime::Clock& clock_;
  const CaptureOptions options_;

  prometheus::Family<prometheus::Counter>& submissions_;
  prometheus::Family<prometheus::Counter>& matches_;
  prometheus::Counter& created_;
  prometheus::Counter& merged_;
  prometheus::Counter& duplicates_;
  prometheus::Counter& rejected_;
  prometheus::Counter& leads_absorbed_;
  prometheus::Histogram& candidates_;
};

}  // namespace leadflow::capture
