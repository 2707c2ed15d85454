#pragma once

// Routing's gRPC API (proto/leadflow/routing/v1/routing.proto): a thin adapter over the store
// and the engine.
//
// Accept, Reject and RecordOutcome do not change state themselves: they publish a LeadOutcome on
// `leads.outcomes` (event id DeriveEventId("outcome", request_id), so a retried command is the
// same event) and answer once the broker acknowledged it. Routing applies it when it consumes
// it, exactly as an outcome from a CRM: one path. Their response therefore carries the
// assignment as it was when the command was accepted.
//
// SetAvailability, UpsertTeam and UpsertRep answer UNIMPLEMENTED: rep presence and team/rep
// management over gRPC are a later issue; teams and reps come from config/routing.yaml.

#include "common/kafka/producer.h"
#include "common/kafka/topics.h"
#include "common/runtime/clock.h"
#include "leadflow/routing/v1/routing.grpc.pb.h"
#include "services/routing/handler.h"
#include "services/routing/store.h"

namespace leadflow::routing {

class RoutingGrpcService final : public routing::v1::Routing::Service {
 public:
  // Borrows everything; all must outlive the service.
  RoutingGrpcService(const RoutingRulesSource& rules, RoutingStore& store,
                     kafka::Producer& producer, const kafka::Topics& topics,
                     const runtime::Clock& clock)
      : rules_(rules), store_(store), producer_(producer), topics_(topics), clock_(clock) {}

  grpc::Status GetAssignment(grpc::ServerContext* context,
                             const routing::v1::GetAssignmentRequest* request,
                             routing::v1::Assignment* response) override;
  // A rep's open leads or a team's queue, oldest first (page_size 1..1000, default 100).
  grpc::Status ListQueue(grpc::ServerContext* context, const routing::v1::ListQueueRequest* request,
                         routing::v1::ListQueueResponse* response) override;
  grpc::Status SetAvailability(grpc::ServerContext* context,
                               const routing::v1::SetAvailabilityRequest* request,
                               routing::v1::SetAvailabilityResponse* response) override;
  grpc::Status UpsertTeam(grpc::ServerContext* context,
                          const routing::v1::UpsertTeamRequest* request,
                          routing::v1::UpsertTeamResponse* response) override;
  grpc::Status UpsertRep(grpc::ServerContext* context, const routing::v1::UpsertRepRequest* request,
                         routing::v1::UpsertRepResponse* response) override;
  grpc::Status DryRun(grpc::ServerContext* context, const routing::v1::DryRunRequest* request,
                      routing::v1::DryRunResponse* response) override;
  grpc::Status Accept(grpc::ServerContext* context, const routing::v1::OutcomeRequest* request,
                      routing::v1::OutcomeResponse* response) override;
  grpc::Status Reject(grpc::ServerContext* context, const routing::v1::OutcomeRequest* request,
                      routing::v1::OutcomeResponse* response) override;
  grpc::Status RecordOutcome(grpc::ServerContext* context,
                             const routing::v1::OutcomeRequest* request,
                             routing::v1::OutcomeResponse* response) override;

 private:
  // Validates an outcome command, publishes it as `kind` and waits for the acknowledgement.
  grpc::Status PublishOutcome(grpc::ServerContext* context,
                              const routing::v1::OutcomeRequest& request,
                              events::v1::LeadOutcome::Kind kind,
                              routing::v1::OutcomeResponse* response);

  const RoutingRulesSource& rules_;
  RoutingStore& store_;
  kafka::Producer& producer_;
  const kafka::Topics& topics_;
  const runtime::Clock& clock_;
};

// The API view of a stored assignment.
routing::v1::Assignment ToApi(const internal::v1::RoutingAssignment& assignment);

}  // namespace leadflow::routing
