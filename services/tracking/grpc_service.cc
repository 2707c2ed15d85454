#include "services/tracking/grpc_service.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/grpc/status.h"
#include "common/runtime/periodic.h"
#include "leadflow/internal/v1/tracking_state.pb.h"
#include "spdlog/spdlog.h"

namespace leadflow::tracking {
namespace {

constexpr absl::Duration kAckTimeout = absl::Seconds(30);
constexpr int kMaxBatch = 1000;

}  // namespace

TrackingGrpcService::TrackingGrpcService(TrackingHandler& handler, TrackingStore& store,
                                         kafka::Producer& producer, const runtime::Clock& clock,
                                         prometheus::Registry& registry)
    : handler_(handler),
      store_(store),
      producer_(producer),
      clock_(clock),
      outbox_resent_(prometheus::BuildCounter()
                         .Name("leadflow_tracking_outbox_resent_total")
                         .Help("Track activities whose events were re-sent from the outbox "
                               "because their acknowledgement never came.")
                         .Register(registry)
                         .Add({})) {}

grpc::Status TrackingGrpcService::Track(grpc::ServerContext*,
                                        const tracking::v1::TrackRequest* request,
                                        tracking::v1::TrackResponse* response) {
  if (request->activities_size() > kMaxBatch) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("at most ", kMaxBatch, " activities per call"));
  }
  std::vector<const events::v1::InboundActivity*> inbound;
  std::vector<absl::Time> received_at;
  std::vector<std::string> message_ids;
  for (const events::v1::InboundActivity& activity : request->activities()) {
    inbound.push_back(&activity);
    received_at.push_back(clock_.Now());
    if (!activity.message_id().empty()) message_ids.push_back(activity.message_id());
  }
  // In the outbox before anything is recorded: an activity recorded is one whose event goes out.
  if (absl::Status s = store_.outbox().Add(message_ids, clock_.Now()); !s.ok()) {
    return grpc_util::ToGrpcStatus(s);
  }
  // One call's activities share their round trips; their events are acknowledged together.
  std::vector<absl::StatusOr<TrackOutcome>> outcomes = handler_.TrackBatch(inbound, received_at);
  std::vector<kafka::OutboundMessage> events;
  std::vector<std::string> unsent;  // rejected, or nothing to send
  std::vector<std::string> sending;
  for (size_t i = 0; i < outcomes.size(); ++i) {
    tracking::v1::TrackResult* result = response->add_results();
    const std::string& message_id = inbound[i]->message_id();
    result->set_message_id(message_id);
    absl::StatusOr<TrackOutcome>& outcome = outcomes[i];
    if (!outcome.ok()) {
      if (!absl::IsInvalidArgument(outcome.status())) {
        // Transient: the caller retries all; what was recorded is re-sent from the outbox.
        return grpc_util::ToGrpcStatus(outcome.status());
      }
      if (!message_id.empty()) unsent.push_back(message_id);
      result->set_status("rejected");
      result->set_error(std::string(outcome.status().message()));
      continue;
    }
    (outcome->outputs.empty() ? unsent : sending).push_back(message_id);
    for (kafka::OutboundMessage& m : outcome->outputs) events.push_back(std::move(m));
    *result = std::move(outcome->result);
  }
  ForgetUnsent(unsent);
  if (absl::Status s = producer_.SendAllAndWait(std::move(events), kAckTimeout); !s.ok()) {
    return grpc_util::ToGrpcStatus(absl::UnavailableError(absl::StrCat(
        "activities recorded but their events are not yet acknowledged: ", s.message())));
  }
  ForgetUnsent(sending);  // acknowledged
  return grpc::Status::OK;
}

void TrackingGrpcService::ForgetUnsent(const std::vector<std::string>& message_ids) {
  if (absl::Status s = store_.outbox().Remove(message_ids); !s.ok()) {
    spdlog::warn("could not take {} activities out of the outbox: {}", message_ids.size(),
                 s.ToString());
  }
}

absl::StatusOr<int> TrackingGrpcService::ResendUnacknowledged(absl::Time now, absl::Duration grace,
                                                              int limit) {
  absl::StatusOr<std::vector<std::string>> stale =
      store_.outbox().TakeStale(now - grace, now, limit);
  if (!stale.ok()) return stale.status();
  std::vector<std::string> done;
  int resent = 0;
  for (const std::string& message_id : *stale) {
    absl::StatusOr<TrackOutcome> outcome = handler_.Replay(message_id);
    if (!outcome.ok()) {
      if (absl::IsNotFound(outcome.status())) {
        done.push_back(message_id);  // nothing was recorded under it: nothing to send
      } else {
        spdlog::warn("tracking outbox: message {}: {}", message_id, outcome.status().ToString());
      }
      continue;
    }
    if (!outcome->outputs.empty()) {
      // Stays in the outbox (moved to now) when this fails: re-sent after another grace.
      if (absl::Status s = producer_.SendAllAndWait(std::move(outcome->outputs), kAckTimeout);
          !s.ok()) {
        spdlog::warn("tracking outbox: re-sending the events of message {}: {}", message_id,
                     s.ToString());
        continue;
      }
      ++resent;
      outbox_resent_.Increment();
    }
    done.push_back(message_id);
  }
  ForgetUnsent(done);
  if (resent > 0) {
    spdlog::info("tracking outbox: re-sent the unacknowledged events of {} activities", resent);
  }
  return resent;
}

void TrackingGrpcService::RunOutbox(const absl::Notification& stop, absl::Duration interval,
                                    absl::Duration grace) {
  runtime::RunEvery(interval, stop, [&] {
    absl::StatusOr<int> resent = ResendUnacknowledged(clock_.Now(), grace);
    if (!resent.ok()) spdlog::warn("tracking outbox: {}", resent.status().ToString());
  });
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
