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
// SetAvailability stores the rep's presence (RoutingStore::RepPresenceKey; idempotent on
// request_id) and, when the rep can take leads again, drains the rep's team queue at once
// through the scheduler (the leads it assigned are in the response; the periodic pass would
// otherwise do it within one interval).
//
// UpsertTeam / UpsertRep store a whole team in the overrides record (effective_rules.h for the
// precedence over routing.yaml). The result is validated exactly like the YAML — the same
// CompileRoutingRules over routing.yaml with the overrides laid over it — and refused with
// INVALID_ARGUMENT and field violations naming the request's fields ("team.reps[1].weight",
// "rep.time_zone") otherwise. The write is version-checked, so concurrent upserts on any
// replicas never lose one another's changes.

#include "common/kafka/producer.h"
#include "common/kafka/topics.h"
#include "common/runtime/clock.h"
#include "leadflow/routing/v1/routing.grpc.pb.h"
#include "services/routing/effective_rules.h"
#include "services/routing/handler.h"
#include "services/routing/scheduler.h"
#include "services/routing/store.h"

namespace leadflow::routing {

class RoutingGrpcService final : public routing::v1::Routing::Service {
 public:
  // Borrows everything; all must outlive the service. Without a scheduler, SetAvailability
  // leaves draining to the periodic pass.
  RoutingGrpcService(EffectiveRules& rules, RoutingStore& store, kafka::Producer& producer,
                     const kafka::Topics& topics, const runtime::Clock& clock,
                     RoutingScheduler* scheduler = nullptr)
      : rules_(rules),
        store_(store),
        producer_(producer),
        topics_(topics),
        clock_(clock),
        scheduler_(scheduler) {}

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
  // Applied here, not through leads.outcomes (no other consumer needs it): see
  // RoutingHandler::Reroute. Needs the scheduler (UNIMPLEMENTED without one).
  grpc::Status Reroute(grpc::ServerContext* context, const routing::v1::RerouteRequest* request,
                       routing::v1::RerouteResponse* response) override;

 private:
  // Validates an outcome command, publishes it as `kind` and waits for the acknowledgement.
  grpc::Status PublishOutcome(grpc::ServerContext* context,
                              const routing::v1::OutcomeRequest& request,
                              events::v1::LeadOutcome::Kind kind,
                              routing::v1::OutcomeResponse* response);

  // Stores `team` (whole) as an override after validating it against the YAML in force;
  // `request_field` / `rep_index` say how to name violations ("team", or "rep" for the rep at
  // rep_index of the team).
  grpc::Status StoreTeam(const config::v1::Team& team, absl::string_view request_field,
                         int rep_index);
  // The team as routing uses it now (override, else YAML), or nullopt.
  absl::StatusOr<std::optional<config::v1::Team>> EffectiveTeam(const std::string& team_id);

  EffectiveRules& rules_;
  RoutingStore& store_;
  kafka::Producer& producer_;
  const kafka::Topics& topics_;
  const runtime::Clock& clock_;
  RoutingScheduler* const scheduler_;
};

// The API view of a stored assignment.
routing::v1::Assignment ToApi(const internal::v1::RoutingAssignment& assignment);

}  // namespace leadflow::routing
