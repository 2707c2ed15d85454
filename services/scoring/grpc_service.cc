#include "services/scoring/grpc_service.h"

#include <algorithm>

#include "common/grpc/status.h"

namespace leadflow::scoring {
namespace {

constexpr int kDefaultPageSize = 100;
constexpr int kMaxPageSize = 1000;

}  // namespace

grpc::Status ScoringGrpcService::LoadScored(const std::string& lead_id,
                                            internal::v1::ScoringLeadState* state) {
  if (lead_id.empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "lead_id is required");
  }
  absl::StatusOr<std::optional<internal::v1::ScoringLeadState>> loaded = store_.LoadState(lead_id);
  if (!loaded.ok()) return grpc_util::ToGrpcStatus(loaded.status());
  if (!loaded->has_value() || !(*loaded)->has_score()) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "no score for lead " + lead_id);
  }
  *state = std::move(**loaded);
  return grpc::Status::OK;
}

grpc::Status ScoringGrpcService::Predict(internal::v1::ScoringLeadState& state) {
  const std::shared_ptr<const CompiledScoringRules> rules = rules_.Current();
  absl::StatusOr<std::shared_ptr<const ConversionModel>> model =
      model_.Get(rules->model_settings().hash_bits);
  if (!model.ok()) return grpc_util::ToGrpcStatus(model.status());
  Prediction prediction =
      (*model)->Predict(LeadFeatures(state.profile(), state.aggregates(), state.score().category()),
                        rules->model_settings());
  events::v1::ScoreSnapshot& score = *state.mutable_score();
  score.set_conversion_probability(prediction.probability);
  score.clear_top_factors();
  for (events::v1::Factor& factor : prediction.top_factors) {
    *score.add_top_factors() = std::move(factor);
  }
  return grpc::Status::OK;
}

grpc::Status ScoringGrpcService::GetScore(grpc::ServerContext*,
                                          const scoring::v1::GetScoreRequest* request,
                                          scoring::v1::GetScoreResponse* response) {
  internal::v1::ScoringLeadState state;
  if (grpc::Status s = LoadScored(request->lead_id(), &state); !s.ok()) return s;
  if (grpc::Status s = Predict(state); !s.ok()) return s;
  *response->mutable_score() = std::move(*state.mutable_score());
  return grpc::Status::OK;
}

grpc::Status ScoringGrpcService::ExplainScore(grpc::ServerContext*,
                                              const scoring::v1::GetScoreRequest* request,
                                              scoring::v1::ExplainScoreResponse* response) {
  internal::v1::ScoringLeadState state;
  if (grpc::Status s = LoadScored(request->lead_id(), &state); !s.ok()) return s;
  if (grpc::Status s = Predict(state); !s.ok()) return s;
  absl::StatusOr<std::vector<events::v1::ScoreSnapshot>> history =
      store_.LoadHistory(request->lead_id(), state);
  if (!history.ok()) return grpc_util::ToGrpcStatus(history.status());
  *response->mutable_score() = std::move(*state.mutable_score());
  for (events::v1::ScoreSnapshot& snapshot : *history) {
    *response->add_history() = std::move(snapshot);
  }
  return grpc::Status::OK;
}

grpc::Status ScoringGrpcService::SimulateScore(grpc::ServerContext*,
                                               const scoring::v1::SimulateScoreRequest* request,
                                               scoring::v1::GetScoreResponse* response) {
  std::shared_ptr<const CompiledScoringRules> rules = rules_.Current();
  if (request->has_rules()) {
    absl::StatusOr<std::shared_ptr<const CompiledScoringRules>> given =
        CompileScoringRules(request->rules());
    if (!given.ok()) return grpc_util::ToGrpcStatus(given.status());
    rules = *std::move(given);
  }
  absl::StatusOr<std::shared_ptr<const ConversionModel>> model =
      model_.Get(rules->model_settings().hash_bits);
  if (!model.ok()) return grpc_util::ToGrpcStatus(model.status());
  ScoreContext context;
  context.model = model->get();
  *response->mutable_score() =
      Score(*rules, request->lead(), request->aggregates(), context, clock_.Now());
  return grpc::Status::OK;
}

grpc::Status ScoringGrpcService::ListSegmentMembers(
    grpc::ServerContext*, const scoring::v1::ListSegmentMembersRequest* request,
    scoring::v1::ListSegmentMembersResponse* response) {
  if (request->segment_id().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "segment_id is required");
  }
  if (request->page_size() < 0) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "page_size must not be negative");
  }
  const int page_size =
      request->page_size() == 0 ? kDefaultPageSize : std::min(request->page_size(), kMaxPageSize);
  absl::StatusOr<ScoringStore::SegmentPage> page =
      store_.ListSegmentMembers(request->segment_id(), page_size, request->page_token());
  if (!page.ok()) return grpc_util::ToGrpcStatus(page.status());
  for (std::string& id : page->lead_ids) response->add_lead_ids(std::move(id));
  response->set_next_page_token(std::move(page->next_page_token));
  return grpc::Status::OK;
}

}  // namespace leadflow::scoring
