#include "services/tracking/grpc_service.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/grpc/status.h"
#include "leadflow/internal/v1/tracking_state.pb.h"

namespace leadflow::tracking {
namespace {

constexpr absl::Duration kAckTimeout = absl::Seconds(30);
constexpr int kMaxBatch = 1000;

}  // namespace

grpc::Status TrackingGrpcService::Track(grpc::ServerContext*,
                                        const tracking::v1::TrackRequest* request,
                                        tracking::v1::TrackResponse* response) {
  if (request->activities_size() > kMaxBatch) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("at most ", kMaxBatch, " activities per call"));
  }
  std::vector<const events::v1::InboundActivity*> inbound;
  std::vector<absl::Time> received_at;
  for (const events::v1::InboundActivity& activity : request->activities()) {
    inbound.push_back(&activity);
    received_at.push_back(clock_.Now());
  }
  // One call's activities share their round trips; their events are acknowledged together.
  std::vector<absl::StatusOr<TrackOutcome>> outcomes = handler_.TrackBatch(inbound, received_at);
  std::vector<kafka::OutboundMessage> events;
  for (size_t i = 0; i < outcomes.size(); ++i) {
    tracking::v1::TrackResult* result = response->add_results();
    result->set_message_id(inbound[i]->message_id());
    absl::StatusOr<TrackOutcome>& outcome = outcomes[i];
    if (!outcome.ok()) {
      if (!absl::IsInvalidArgument(outcome.status())) {
        return grpc_util::ToGrpcStatus(outcome.status());  // transient: the caller retries all
      }
      result->set_status("rejected");
      result->set_error(std::string(outcome.status().message()));
      continue;
    }
    for (kafka::OutboundMessage& m : outcome->outputs) events.push_back(std::move(m));
    *result = std::move(outcome->result);
  }
  if (absl::Status s = producer_.SendAllAndWait(std::move(events), kAckTimeout); !s.ok()) {
    return grpc_util::ToGrpcStatus(absl::UnavailableError(absl::StrCat(
        "activities recorded but their events are not yet acknowledged: ", s.message())));
  }
  return grpc::Status::OK;
}

grpc::Status TrackingGrpcService::GetTimeline(grpc::ServerContext*,
                                              const tracking::v1::GetTimelineRequest* request,
                                              tracking::v1::GetTimelineResponse* response) {
  if (request->lead_id().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "lead_id is required");
  }
  const int page_size =
      request->page_size() > 0 ? std::min(request->page_size(), kTimelineLength) : 50;
  int start = 0;
  // A negative start would make LRANGE count from the end (the oldest entries).
  if (!request->page_token().empty() &&
      (!absl::SimpleAtoi(request->page_token(), &start) || start < 0)) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad page_token");
  }
  // A lead merged into another answers with that lead's timeline.
  std::string lead_id;
  absl::StatusOr<redis::Versioned> history = store_.CurrentHistory(request->lead_id(), &lead_id);
  if (!history.ok()) return grpc_util::ToGrpcStatus(history.status());
  absl::StatusOr<std::vector<events::v1::Activity>> page =
      store_.Timeline(lead_id, start, page_size);
  if (!page.ok()) return grpc_util::ToGrpcStatus(page.status());
  for (events::v1::Activity& a : *page) *response->add_activities() = std::move(a);
  if (static_cast<int>(page->size()) == page_size && start + page_size < kTimelineLength) {
    response->set_next_page_token(absl::StrCat(start + page_size));
  }
  return grpc::Status::OK;
}

grpc::Status TrackingGrpcService::GetAggregates(grpc::ServerContext*,
                                                const tracking::v1::GetAggregatesRequest* request,
                                                tracking::v1::GetAggregatesResponse* response) {
  // A lead merged into another answers with that lead's aggregates.
  std::string lead_id;
  absl::StatusOr<redis::Versioned> record = store_.CurrentHistory(request->lead_id(), &lead_id);
  if (!record.ok()) return grpc_util::ToGrpcStatus(record.status());
  if (!record->data.has_value()) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "no activity for " + request->lead_id());
  }
  absl::StatusOr<ActivityHistory> history = ActivityHistory::Parse(*record->data);
  if (!history.ok()) return grpc_util::ToGrpcStatus(history.status());
  *response->mutable_aggregates() = history->Aggregates(clock_.Now());
  return grpc::Status::OK;
}

grpc::Status TrackingGrpcService::GetAnonymousProfile(
    grpc::ServerContext*, const tracking::v1::GetAnonymousProfileRequest* request,
    tracking::v1::GetAnonymousProfileResponse* response) {
  const std::string identity = "anon:" + request->anonymous_id();
  absl::StatusOr<std::optional<std::string>> lead = store_.Resolve({identity});
  if (!lead.ok()) return grpc_util::ToGrpcStatus(lead.status());
  if (lead->has_value()) response->set_lead_id(**lead);
  absl::StatusOr<std::vector<redis::Versioned>> records =
      store_.apply().Read({TrackingStore::PendingKey(identity)});
  if (!records.ok()) return grpc_util::ToGrpcStatus(records.status());
  if ((*records)[0].data.has_value()) {
    internal::v1::PendingActivities pending;
    if (!pending.ParseFromString(*(*records)[0].data)) {
      return grpc::Status(grpc::StatusCode::DATA_LOSS, "corrupt pending activities");
    }
    *response->mutable_activities() = pending.activities();
  }
  if (!lead->has_value() && response->activities().empty()) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown anonymous id");
  }
  return grpc::Status::OK;
}

}  // namespace leadflow::tracking
