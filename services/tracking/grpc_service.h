#pragma once

// Tracking's gRPC API (proto/leadflow/tracking/v1/tracking.proto): a thin adapter over
// TrackingHandler and TrackingStore. Track answers after the resulting events are acknowledged.
//
// An activity recorded whose event the broker did not acknowledge (tracking died in between,
// the broker refused it) is not left to the caller's retry: Track puts every message id in
// tracking's outbox before recording anything and takes it out once its events are
// acknowledged (or it gave none); ResendUnacknowledged, every few seconds, re-sends the events
// of those left for longer than a grace period, the same events with the same ids.

#include "absl/synchronization/notification.h"
#include "common/kafka/producer.h"
#include "leadflow/tracking/v1/tracking.grpc.pb.h"
#include "prometheus/counter.h"
#include "prometheus/registry.h"
#include "services/tracking/handler.h"

namespace leadflow::tracking {

class TrackingGrpcService final : public tracking::v1::Tracking::Service {
 public:
  TrackingGrpcService(TrackingHandler& handler, TrackingStore& store, kafka::Producer& producer,
                      const runtime::Clock& clock, prometheus::Registry& registry);

  grpc::Status Track(grpc::ServerContext* context, const tracking::v1::TrackRequest* request,
                     tracking::v1::TrackResponse* response) override;
  grpc::Status GetTimeline(grpc::ServerContext* context,
                           const tracking::v1::GetTimelineRequest* request,
                           tracking::v1::GetTimelineResponse* response) override;
  grpc::Status GetAggregates(grpc::ServerContext* context,
                             const tracking::v1::GetAggregatesRequest* request,
                             tracking::v1::GetAggregatesResponse* response) override;
  grpc::Status GetAnonymousProfile(grpc::ServerContext* context,
                                   const tracking::v1::GetAnonymousProfileRequest* request,
                                   tracking::v1::GetAnonymousProfileResponse* response) override;

  // Re-sends the events of up to `limit` activities in the outbox since before `now - grace`
  // and waits for their acknowledgement; drops the entries of activities that recorded nothing.
  // Returns how many activities' events were re-sent. Errors: the outbox could not be read.
  absl::StatusOr<int> ResendUnacknowledged(absl::Time now, absl::Duration grace, int limit = 500);
  // The background task: ResendUnacknowledged every `interval` until `stop`.
  void RunOutbox(const absl::Notification& stop, absl::Duration interval = absl::Seconds(5),
                 absl::Duration grace = absl::Seconds(60));

 private:
  // Takes activities that will send nothing out of the outbox; best effort (an entry left
  // behind is dropped by ResendUnacknowledged).
  void ForgetUnsent(const std::vector<std::string>& message_ids);

  TrackingHandler& handler_;
  TrackingStore& store_;
  kafka::Producer& producer_;
  const runtime::Clock& clock_;
  prometheus::Counter& outbox_resent_;
};

}  // namespace leadflow::tracking
