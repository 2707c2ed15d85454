#pragma once

// Nurturing's gRPC API (proto/leadflow/nurturing/v1/nurturing.proto): a thin adapter over
// NurturingHandler and the track rules in force. Commands are idempotent per request_id (a
// call without one gets a fresh id, so it is simply not idempotent); their replies are the
// lead's current enrolment after the command. The enrolment events a command causes (paused,
// resumed, exited) are published on `nurture.enrollments` and acknowledged before the reply;
// when they are not, the call fails UNAVAILABLE and a retry with the same request_id publishes
// the same events again.

#include "common/kafka/producer.h"
#include "leadflow/nurturing/v1/nurturing.grpc.pb.h"
#include "services/nurturing/handler.h"

namespace leadflow::nurturing {

class NurturingGrpcService final : public v1::Nurturing::Service {
 public:
  NurturingGrpcService(NurturingHandler& handler, TracksSource tracks, kafka::Producer& producer)
      : handler_(handler), tracks_(std::move(tracks)), producer_(producer) {}

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
  grpc::Status Reply(const absl::StatusOr<CommandOutcome>& outcome, v1::Enrollment* response);

  NurturingHandler& handler_;
  const TracksSource tracks_;
  kafka::Producer& producer_;
};

}  // namespace leadflow::nurturing
