#pragma once

// Nurturing's gRPC API (proto/leadflow/nurturing/v1/nurturing.proto): a thin adapter over
// NurturingHandler and the track rules in force. Commands are idempotent per request_id (a
// call without one gets a fresh id, so it is simply not idempotent); their replies are the
// lead's current enrolment after the command.

#include "leadflow/nurturing/v1/nurturing.grpc.pb.h"
#include "services/nurturing/handler.h"

namespace leadflow::nurturing {

class NurturingGrpcService final : public v1::Nurturing::Service {
 public:
  NurturingGrpcService(NurturingHandler& handler, TracksSource tracks)
      : handler_(handler), tracks_(std::move(tracks)) {}

  grpc::Status GetEnrollments(grpc::ServerContext* context,
                              const v1::GetEnrollmentsRequest* request,
                              v1::GetEnrollmentsResponse* response) override;
  grpc::Status ListTracks(grpc::ServerContext* context, const v1::ListTracksRequest* request,
                          v1::ListTracksResponse* response) override;
  grpc::Status Pause(grpc::ServerContext* context, const v1::LeadRequest* request,
                     v1::Enrollment* response) override;
  grpc::Status Resume(grpc::ServerContext* context, const v1::LeadRequest* request,
                      v1::Enrollment* response) override;
  grpc::Status Unsubscribe(grpc::ServerContext* context, const v1::UnsubscribeRequest* request,
                           v1::Enrollment* response) override;

 private:
  NurturingHandler& handler_;
  const TracksSource tracks_;
};

}  // namespace leadflow::nurturing
