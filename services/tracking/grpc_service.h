#pragma once

// Tracking's gRPC API (proto/leadflow/tracking/v1/tracking.proto): a thin adapter over
// TrackingHandler and TrackingStore. Track answers after the resulting events are acknowledged.

#include "common/kafka/producer.h"
#include "leadflow/tracking/v1/tracking.grpc.pb.h"
#include "services/tracking/handler.h"

namespace leadflow::tracking {

class TrackingGrpcService final : public tracking::v1::Tracking::Service {
 public:
  TrackingGrpcService(TrackingHandler& handler, TrackingStore& store, kafka::Producer& producer,
                      const runtime::Clock& clock)
      : handler_(handler), store_(store), producer_(producer), clock_(clock) {}

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

 private:
  TrackingHandler& handler_;
  TrackingStore& store_;
  kafka::Producer& producer_;
  const runtime::Clock& clock_;
};

}  // namespace leadflow::tracking
