#pragma once

// Scoring's gRPC API (proto/leadflow/scoring/v1/scoring.proto): a thin adapter over the store
// and the engine. Queries read the state the consumer wrote; SimulateScore stores nothing.

#include "common/runtime/clock.h"
#include "leadflow/scoring/v1/scoring.grpc.pb.h"
#include "services/scoring/handler.h"
#include "services/scoring/store.h"

namespace leadflow::scoring {

class ScoringGrpcService final : public scoring::v1::Scoring::Service {
 public:
  // Borrows everything; all must outlive the service.
  ScoringGrpcService(const ScoringRulesSource& rules, ScoringStore& store, ModelCache& model,
                     const runtime::Clock& clock)
      : rules_(rules), store_(store), model_(model), clock_(clock) {}

  // The lead's latest score. NOT_FOUND if the lead was never scored. The conversion probability
  // and its top factors are predicted afresh with the current model (ExplainScore too).
  grpc::Status GetScore(grpc::ServerContext* context, const scoring::v1::GetScoreRequest* request,
                        scoring::v1::GetScoreResponse* response) override;
  // The latest score with its contributions, and the emitted snapshots, newest first.
  grpc::Status ExplainScore(grpc::ServerContext* context,
                            const scoring::v1::GetScoreRequest* request,
                            scoring::v1::ExplainScoreResponse* response) override;
  // Scores the given profile and aggregates now, with the given rules (validated like a rule
  // file: INVALID_ARGUMENT naming the field) or the running ones.
  grpc::Status SimulateScore(grpc::ServerContext* context,
                             const scoring::v1::SimulateScoreRequest* request,
                             scoring::v1::GetScoreResponse* response) override;
  // A page of a segment's members (page_size 1..1000, default 100).
  grpc::Status ListSegmentMembers(grpc::ServerContext* context,
                                  const scoring::v1::ListSegmentMembersRequest* request,
                                  scoring::v1::ListSegmentMembersResponse* response) override;

 private:
  // The lead's state with a score, or the gRPC error to answer.
  grpc::Status LoadScored(const std::string& lead_id, internal::v1::ScoringLeadState* state);
  // Puts the current model's prediction for the stored lead into its score.
  grpc::Status Predict(internal::v1::ScoringLeadState& state);

  const ScoringRulesSource& rules_;
  ScoringStore& store_;
  ModelCache& model_;
  const runtime::Clock& clock_;
};

}  // namespace leadflow::scoring
