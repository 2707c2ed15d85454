#include "services/routing/grpc_service.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/events/codec.h"
#include "common/events/envelope.h"
#include "common/grpc/status.h"
#include "common/validation/violations.h"

namespace leadflow::routing {
namespace {

using events::v1::LeadOutcome;

constexpr absl::Duration kAckTimeout = absl::Seconds(30);
constexpr int kDefaultPageSize = 100;
constexpr int kMaxPageSize = 1000;
constexpr char kLaterIssue[] =
    " is not implemented yet: rep availability and team/rep management over gRPC are a later "
    "issue; teams, reps and caps come from routing.yaml and every rep counts as available";

const char* StateName(internal::v1::AssignmentState state) {
  switch (state) {
    case internal::v1::ASSIGNMENT_STATE_QUEUED:
      return "queued";
    case internal::v1::ASSIGNMENT_STATE_ASSIGNED:
      return "assigned";
    case internal::v1::ASSIGNMENT_STATE_ACCEPTED:
      return "accepted";
    case internal::v1::ASSIGNMENT_STATE_CONTACTED:
      return "contacted";
    case internal::v1::ASSIGNMENT_STATE_CLOSED:
      return "closed";
    default:
      return "";
  }
}

// A request id for calls without one: unique, so such calls are simply not idempotent.
std::string RequestIdFor(const routing::v1::OutcomeRequest& request, grpc::ServerContext* context,
                         absl::Time now) {
  if (!request.request_id().empty()) return request.request_id();
  return events::DeriveEventId(
      "grpc-request", absl::StrCat(context != nullptr ? context->peer() : "",
                                   absl::ToUnixNanos(now), reinterpret_cast<uintptr_t>(&request)));
}

}  // namespace

routing::v1::Assignment ToApi(const internal::v1::RoutingAssignment& a) {
  routing::v1::Assignment out;
  out.set_lead_id(a.lead_id());
  out.set_team_id(a.team_id());
  out.set_rep_id(a.rep_id());
  out.set_rule_id(a.rule_id());
  out.set_state(StateName(a.state()));
  if (a.has_sla_deadline()) *out.mutable_sla_deadline() = a.sla_deadline();
  if (a.has_assigned_at()) *out.mutable_assigned_at() = a.assigned_at();
  out.set_episode(a.episode());
  out.set_attempt(a.attempt());
  return out;
}

grpc::Status RoutingGrpcService::GetAssignment(grpc::ServerContext*,
                                               const routing::v1::GetAssignmentRequest* request,
                                               routing::v1::Assignment* response) {
  if (request->lead_id().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "lead_id is required");
  }
  absl::StatusOr<std::optional<internal::v1::RoutingAssignment>> a =
      store_.LoadAssignment(request->lead_id());
  if (!a.ok()) return grpc_util::ToGrpcStatus(a.status());
  if (!a->has_value()) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        "lead " + request->lead_id() + " was never routed");
  }
  *response = ToApi(**a);
  return grpc::Status::OK;
}

grpc::Status RoutingGrpcService::ListQueue(grpc::ServerContext*,
                                           const routing::v1::ListQueueRequest* request,
                                           routing::v1::ListQueueResponse* response) {
  if (request->page_size() < 0) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "page_size must not be negative");
  }
  const int limit =
      request->page_size() == 0 ? kDefaultPageSize : std::min(request->page_size(), kMaxPageSize);
  absl::StatusOr<std::vector<std::string>> lead_ids;
  if (request->has_rep_id() && !request->rep_id().empty()) {
    lead_ids = store_.RepOpenLeads(request->rep_id(), limit);
  } else if (request->has_team_id() && !request->team_id().empty()) {
    lead_ids = store_.TeamQueue(request->team_id(), limit);
  } else {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "rep_id or team_id is required");
  }
  if (!lead_ids.ok()) return grpc_util::ToGrpcStatus(lead_ids.status());
  absl::StatusOr<std::vector<internal::v1::RoutingAssignment>> assignments =
      store_.LoadAssignments(*lead_ids);
  if (!assignments.ok()) return grpc_util::ToGrpcStatus(assignments.status());
  for (const internal::v1::RoutingAssignment& a : *assignments) {
    *response->add_assignments() = ToApi(a);
  }
  return grpc::Status::OK;
}

grpc::Status RoutingGrpcService::SetAvailability(grpc::ServerContext*,
                                                 const routing::v1::SetAvailabilityRequest*,
                                                 routing::v1::SetAvailabilityResponse*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                      absl::StrCat("SetAvailability", kLaterIssue));
}

grpc::Status RoutingGrpcService::UpsertTeam(grpc::ServerContext*,
                                            const routing::v1::UpsertTeamRequest*,
                                            routing::v1::UpsertTeamResponse*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, absl::StrCat("UpsertTeam", kLaterIssue));
}

grpc::Status RoutingGrpcService::UpsertRep(grpc::ServerContext*,
                                           const routing::v1::UpsertRepRequest*,
                                           routing::v1::UpsertRepResponse*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, absl::StrCat("UpsertRep", kLaterIssue));
}

grpc::Status RoutingGrpcService::DryRun(grpc::ServerContext*,
                                        const routing::v1::DryRunRequest* request,
                                        routing::v1::DryRunResponse* response) {
  const std::shared_ptr<const CompiledRoutingRules> rules = rules_.Current();
  // As if the lead had never been routed: does this score reach the threshold?
  response->set_would_route(
      ShouldRoute(*rules, events::v1::ScoreSnapshot(), request->score(), /*new_episode=*/true));
  const RouteDecision decision = MatchTeam(*rules, request->lead(), request->score());
  response->set_team_id(decision.team_id);
  response->set_rule_id(decision.rule_id);
  response->set_reason(decision.reason);
  return grpc::Status::OK;
}

grpc::Status RoutingGrpcService::Accept(grpc::ServerContext* context,
                                        const routing::v1::OutcomeRequest* request,
                                        routing::v1::OutcomeResponse* response) {
  return PublishOutcome(context, *request, LeadOutcome::KIND_ACCEPTED, response);
}

grpc::Status RoutingGrpcService::Reject(grpc::ServerContext* context,
                                        const routing::v1::OutcomeRequest* request,
                                        routing::v1::OutcomeResponse* response) {
  return PublishOutcome(context, *request, LeadOutcome::KIND_REJECTED, response);
}

grpc::Status RoutingGrpcService::RecordOutcome(grpc::ServerContext* context,
                                               const routing::v1::OutcomeRequest* request,
                                               routing::v1::OutcomeResponse* response) {
  return PublishOutcome(context, *request, request->kind(), response);
}

grpc::Status RoutingGrpcService::PublishOutcome(grpc::ServerContext* context,
                                                const routing::v1::OutcomeRequest& request,
                                                LeadOutcome::Kind kind,
                                                routing::v1::OutcomeResponse* response) {
  const bool assignment_command =
      kind == LeadOutcome::KIND_ACCEPTED || kind == LeadOutcome::KIND_REJECTED;
  validation::ViolationList violations;
  if (request.lead_id().empty()) violations.Add("lead_id", "required");
  if (!assignment_command && kind != LeadOutcome::KIND_CONTACTED &&
      kind != LeadOutcome::KIND_QUALIFIED && kind != LeadOutcome::KIND_WON &&
      kind != LeadOutcome::KIND_LOST) {
    violations.Add("kind",
                   "must be contacted, qualified, won or lost (Accept and Reject have "
                   "their own calls)");
  }
  if ((kind == LeadOutcome::KIND_REJECTED || kind == LeadOutcome::KIND_LOST) &&
      request.reason().empty()) {
    violations.Add("reason", "required for rejected and lost");
  }
  if (!violations.empty()) {
    return grpc_util::ToGrpcStatus(violations.ToStatus("invalid outcome"));
  }

  absl::StatusOr<std::optional<internal::v1::RoutingAssignment>> current =
      store_.LoadAssignment(request.lead_id());
  if (!current.ok()) return grpc_util::ToGrpcStatus(current.status());
  if (assignment_command) {
    if (!current->has_value() || (*current)->rep_id().empty()) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          "lead " + request.lead_id() + " is not assigned to a rep");
    }
    if (!request.rep_id().empty() && request.rep_id() != (*current)->rep_id()) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          absl::StrCat("lead ", request.lead_id(), " is assigned to ",
                                       (*current)->rep_id(), ", not ", request.rep_id()));
    }
  }

  const absl::Time now = clock_.Now();
  const std::string request_id = RequestIdFor(request, context, now);
  LeadOutcome outcome;
  *outcome.mutable_envelope() = events::MakeEnvelope({
      .event_id = events::DeriveEventId("outcome", request_id),
      .lead_id = request.lead_id(),
      .occurred_at = now,
      .produced_at = now,
      .causation_id = request_id,
      .trace_id = request_id,
      .producer = kService,
  });
  outcome.set_kind(kind);
  // A manager reporting for the rep may leave rep_id out: the holder is the reporter of record.
  std::string rep_id = request.rep_id();
  if (rep_id.empty() && current->has_value()) rep_id = (*current)->rep_id();
  outcome.set_rep_id(rep_id);
  if (current->has_value()) outcome.set_team_id((*current)->team_id());
  outcome.set_reason(request.reason());
  outcome.set_value(request.value());
  outcome.set_request_id(request_id);
  if (absl::Status s = producer_.SendAndWait(
          events::Encode(topics_.Name(kafka::kLeadsOutcomes), request.lead_id(), outcome),
          kAckTimeout);
      !s.ok()) {
    return grpc_util::ToGrpcStatus(absl::UnavailableError(
        absl::StrCat("outcome not acknowledged; retry with the same request_id: ", s.message())));
  }
  if (current->has_value()) *response->mutable_assignment() = ToApi(**current);
  return grpc::Status::OK;
}

}  // namespace leadflow::routing
