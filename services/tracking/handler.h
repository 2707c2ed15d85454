#pragma once

// TrackingHandler: activities in, identities stitched, per-lead behaviour out.
//
//   activities.inbound / Tracking.Track ─► Normalize (engine) ─► resolve identity (store)
//        ├─ known lead: apply to its history (engine), timeline ─► leads.activity
//        └─ unknown: park under the anonymous / user identity (bounded, 30-day TTL)
//   leads.captured ─► link the lead's identities (lead id, external ids, e-mail, anonymous ids)
//        and attribute every parked activity of those identities to the lead, oldest first,
//        each as a leads.activity event marked `backfilled`; with merged_lead_ids, fold each
//        absorbed lead's history and timeline into the lead's, redirect its id to the lead, and
//        emit one leads.activity of type kLeadMergedActivity carrying the merged aggregates and
//        merged_lead_ids (the activity counts in no aggregate)
//
// Exactly one effect per messageId inside the de-duplication window: the message id is the
// apply-once key, whether the activity was attributed at once or parked.
//
// Thread safety: Track() and the routes may run concurrently (gRPC threads, consumer loop).

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/kafka/handler.h"
#include "common/kafka/message.h"
#include "common/kafka/topics.h"
#include "common/runtime/clock.h"
#include "leadflow/events/v1/activity.pb.h"
#include "leadflow/tracking/v1/tracking.pb.h"
#include "services/tracking/engine.h"
#include "services/tracking/store.h"

namespace leadflow::tracking {

// The type of the synthetic activity of the leads.activity event a merge emits.
inline constexpr char kLeadMergedActivity[] = "lead_merged";

struct TrackingOptions {
  absl::Duration dedup_window = absl::Hours(24);
  int anonymous_cap = 100;
  absl::Duration anonymous_ttl = absl::Hours(24 * 30);
  absl::Duration tombstone_ttl = absl::Hours(24 * 30);
};

struct TrackOutcome {
  tracking::v1::TrackResult result;
  std::vector<kafka::OutboundMessage> outputs;
};

class TrackingHandler {
 public:
  TrackingHandler(const ActivityNormalizer& normalizer, TrackingStore& store,
                  const kafka::Topics& topics, const runtime::Clock& clock,
                  TrackingOptions options = {});

  // Records one activity received at `received_at`. INVALID_ARGUMENT for bad input.
  absl::StatusOr<TrackOutcome> Track(const events::v1::InboundActivity& inbound,
                                     absl::Time received_at);

  // What the activity with `message_id` gave, from its apply-once record (what a duplicate
  // gets), without the activity. NOT_FOUND when none was recorded under that id (none got that
  // far, or the record expired or was erased).
  absl::StatusOr<TrackOutcome> Replay(const std::string& message_id);

  // Track() for many activities at once, sharing round trips: one pipelined identity look-up
  // for all of them, then ApplyOnce::RunBatch. Result i is what Track(*inbound[i],
  // received_at[i]) gives. Activities of one lead should be in different calls (in order):
  // within a call, the later one is re-planned alone after the earlier one applied.
  std::vector<absl::StatusOr<TrackOutcome>> TrackBatch(
      const std::vector<const events::v1::InboundActivity*>& inbound,
      const std::vector<absl::Time>& received_at);

  absl::StatusOr<std::vector<kafka::OutboundMessage>> HandleInbound(
      const kafka::ConsumedMessage& message);
  // HandleInbound() for the inputs of one wave (kafka::HandleInKeyWaves), through TrackBatch().
  std::vector<kafka::HandleResult> HandleInboundBatch(
      const std::vector<const kafka::ConsumedMessage*>& messages);
  absl::StatusOr<std::vector<kafka::OutboundMessage>> HandleCaptured(
      const kafka::ConsumedMessage& message);
  absl::StatusOr<std::vector<kafka::OutboundMessage>> HandleErasure(
      const kafka::ConsumedMessage& message);

  const TrackingOptions& options() const { return options_; }

 private:
  // The apply-once request of an activity of `lead_id`, or, with no lead, of parking it under
  // its most specific identity (returned in `*parked_under`).
  redis::ApplyOnceRequest RequestFor(const std::optional<std::string>& lead_id,
                                     const events::v1::Activity& activity,
                                     const events::v1::InboundActivity& inbound,
                                     const std::vector<std::string>& identities,
                                     std::string* parked_under) const;
  // The plan recording `activity` for `lead_id` over the request's records `state` (history,
  // then the pending records of `identities`). ABORTED with `*merged_into` set when the lead's
  // history is a merge redirect.
  absl::StatusOr<redis::Plan> PlanKnown(const std::string& lead_id,
                                        const events::v1::Activity& activity,
                                        const std::vector<std::string>& identities,
                                        const std::string& message_id, absl::Time now,
                                        const std::vector<redis::Versioned>& state,
                                        std::optional<std::string>* merged_into) const;
  // The plan parking `activity` in the pending record `state[0]` (bounded by anonymous_cap).
  absl::StatusOr<redis::Plan> PlanParked(const events::v1::Activity& activity,
                                         const std::vector<redis::Versioned>& state) const;
  // Track()'s result for an apply's outcome.
  absl::StatusOr<TrackOutcome> OutcomeOf(const absl::StatusOr<redis::ApplyResult>& applied,
                                         const std::string& message_id,
                                         const std::optional<std::string>& lead_id) const;
  // Attributes the activities parked in the pending records `pending` to `lead_id`, oldest
  // first: applies them to `history`, deletes the records and adds them to the timeline through
  // `plan`, and returns their (backfilled) leads.activity events.
  absl::StatusOr<std::vector<kafka::OutboundMessage>> Backfill(
      const std::string& lead_id, const std::vector<redis::Versioned>& pending,
      const std::string& trace_id, absl::Time now, ActivityHistory* history,
      redis::Plan* plan) const;
  // Folds the histories `records` of the leads `absorbed` (capture merged them into `lead_id`)
  // into `history` and their timelines into the lead's, through `plan`: each absorbed history
  // becomes a redirect, its user identity and registry move to the lead. Appends the ids merged
  // now to `merged` (one already redirecting was merged by an earlier delivery). Returns whether
  // the lead's timeline was rewritten. Reads the timelines (see the comment inside).
  absl::StatusOr<bool> MergeAbsorbed(const std::string& lead_id,
                                     const std::vector<std::string>& absorbed,
                                     const std::vector<redis::Versioned>& records, absl::Time now,
                                     ActivityHistory* history, std::vector<std::string>* merged,
                                     redis::Plan* plan);
  kafka::OutboundMessage ActivityEvent(const std::string& lead_id,
                                       const events::v1::Activity& activity,
                                       const events::v1::LeadAggregates& aggregates,
                                       bool backfilled, const std::string& trace_id, absl::Time now,
                                       const std::vector<std::string>& merged = {}) const;

  const ActivityNormalizer& normalizer_;
  TrackingStore& store_;
  const kafka::Topics& topics_;
  const runtime::Clock& clock_;
  const TrackingOptions options_;
};

}  // namespace leadflow::tracking
