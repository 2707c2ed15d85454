#include "services/routing/grpc_service.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
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
constexpr int kMaxUpsertAttempts = 16;
constexpr absl::Duration kOverridesWriteTtl = absl::Hours(24);

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
    case internal::v1::ASSIGNMENT_STATE_ESCALATED:
      return "escalated";
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

// "routing.teams[3].reps[1].weight: 0 is not ..." → {"routing.teams[3].reps[1].weight", "0 is
// not ..."}.
std::pair<std::string, std::string> SplitPath(absl::string_view message) {
  const size_t colon = message.find(": ");
  if (colon == absl::string_view::npos) return {"", std::string(message)};
  return {std::string(message.substr(0, colon)), std::string(message.substr(colon + 2))};
}

// A validation error of the overlaid rules as a violation of the request's fields: paths inside
// the upserted team (at `team_index` of the compiled file) are renamed to `request_field`
// ("team", or "rep" for the rep at `rep_index`); anything else keeps its file path.
absl::Status AsViolation(const absl::Status& status, int team_index,
                         absl::string_view request_field, int rep_index) {
  auto [path, why] = SplitPath(status.message());
  const std::string team_prefix = absl::StrCat("routing.teams[", team_index, "]");
  std::string field = path;
  if (absl::StartsWith(path, team_prefix)) {
    const std::string rest = path.substr(team_prefix.size());
    if (request_field == "rep") {
      const std::string rep_prefix = absl::StrCat(".reps[", rep_index, "]");
      field = absl::StartsWith(rest, rep_prefix)
                  ? absl::StrCat("rep", rest.substr(rep_prefix.size()))
                  : absl::StrCat("team_id (team", rest, ")");
    } else {
      field = absl::StrCat(request_field, rest);
    }
  }
  validation::ViolationList violations;
  violations.Add(field.empty() ? std::string(request_field) : field, why);
  return violations.ToStatus("invalid team");
}

internal::v1::RepPresenceState ToStored(routing::v1::Availability availability) {
  switch (availability) {
    case routing::v1::AVAILABILITY_AWAY:
      return internal::v1::REP_PRESENCE_STATE_AWAY;
    case routing::v1::AVAILABILITY_OUT_OF_OFFICE:
      return internal::v1::REP_PRESENCE_STATE_OUT_OF_OFFICE;
    default:
      return internal::v1::REP_PRESENCE_STATE_AVAILABLE;
  }
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

grpc::Status RoutingGrpcService::SetAvailability(grpc::ServerContext* context,
                                                 const routing::v1::SetAvailabilityRequest* request,
                                                 routing::v1::SetAvailabilityResponse* response) {
  const absl::Time now = clock_.Now();
  validation::ViolationList violations;
  if (request->rep_id().empty()) violations.Add("rep_id", "required");
  if (request->availability() == routing::v1::AVAILABILITY_UNSPECIFIED) {
    violations.Add("availability", "required: available, away or out of office");
  } else if (!routing::v1::Availability_IsValid(request->availability())) {
    // An open enum takes any number off the wire; an unknown one would be stored as is.
    violations.Add("availability", absl::StrCat("unknown value ", request->availability(),
                                                ": available, away or out of office"));
  }
  if (request->has_until()) {
    if (request->availability() == routing::v1::AVAILABILITY_AVAILABLE) {
      violations.Add("until", "only away and out of office expire");
    } else if (events::FromProto(request->until()) <= now) {
      violations.Add("until", "must be in the future");
    }
  }
  if (!violations.empty()) {
    return grpc_util::ToGrpcStatus(violations.ToStatus("invalid availability"));
  }
  absl::StatusOr<std::shared_ptr<const CompiledRoutingRules>> rules = rules_.Current();
  if (!rules.ok()) return grpc_util::ToGrpcStatus(rules.status());
  std::string team_id;
  for (const config::v1::Team& team : (*rules)->teams()) {
    for (const config::v1::Rep& rep : team.reps()) {
      if (rep.id() == request->rep_id()) team_id = team.id();
    }
  }
  if (team_id.empty()) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "rep " + request->rep_id() + " is in no team");
  }

  // Without a request id the call is simply not idempotent.
  const std::string request_id =
      !request->request_id().empty()
          ? request->request_id()
          : events::DeriveEventId("availability",
                                  absl::StrCat(context != nullptr ? context->peer() : "",
                                               absl::ToUnixNanos(now), request->rep_id()));
  internal::v1::RepPresence presence;
  presence.set_rep_id(request->rep_id());
  presence.set_state(ToStored(request->availability()));
  if (request->has_until()) *presence.mutable_until() = request->until();
  *presence.mutable_set_at() = events::ToProto(now);
  presence.set_request_id(request_id);

  redis::ApplyOnceRequest apply;
  apply.dedup_key = RoutingStore::PresenceRequestKey(request->rep_id(), request_id);
  apply.state_keys = {RoutingStore::RepPresenceKey(request->rep_id())};
  absl::StatusOr<redis::ApplyResult> applied =
      store_.apply().Run(apply, [&](const std::vector<redis::Versioned>& records) {
        redis::Plan plan;
        plan.writes.push_back({records[0].key, presence.SerializeAsString()});
        // Decisions that read this record watch the counter, not the record (store.h).
        plan.extra_commands.push_back(RoutingStore::CountPresenceChange());
        plan.memo = presence.SerializeAsString();
        return absl::StatusOr<redis::Plan>(std::move(plan));
      });
  if (!applied.ok()) return grpc_util::ToGrpcStatus(applied.status());

  // Back (or never away): the team's queue may be waiting for exactly this rep.
  if (scheduler_ != nullptr && presence.state() == internal::v1::REP_PRESENCE_STATE_AVAILABLE) {
    absl::StatusOr<std::vector<std::string>> assigned = scheduler_->DrainTeam(team_id);
    if (!assigned.ok()) return grpc_util::ToGrpcStatus(assigned.status());
    for (std::string& id : *assigned) response->add_assigned_lead_ids(std::move(id));
  }
  return grpc::Status::OK;
}

absl::StatusOr<std::optional<config::v1::Team>> RoutingGrpcService::EffectiveTeam(
    const std::string& team_id) {
  absl::StatusOr<std::pair<int64_t, internal::v1::RoutingOverrides>> overrides =
      store_.LoadOverrides();
  if (!overrides.ok()) return overrides.status();
  if (auto it = overrides->second.teams().find(team_id); it != overrides->second.teams().end()) {
    return it->second;
  }
  if (const config::v1::Team* team = rules_.Yaml()->FindTeam(team_id)) return *team;
  return std::nullopt;
}

grpc::Status RoutingGrpcService::StoreTeam(const config::v1::Team& team,
                                           absl::string_view request_field, int rep_index) {
  for (int attempt = 0; attempt < kMaxUpsertAttempts; ++attempt) {
    absl::StatusOr<std::pair<int64_t, internal::v1::RoutingOverrides>> loaded =
        store_.LoadOverrides();
    if (!loaded.ok()) return grpc_util::ToGrpcStatus(loaded.status());
    const int64_t version = loaded->first;
    internal::v1::RoutingOverrides overrides = std::move(loaded->second);
    (*overrides.mutable_teams())[team.id()] = team;

    // Validated exactly as the running service will compile it.
    const std::shared_ptr<const CompiledRoutingRules> yaml = rules_.Yaml();
    absl::StatusOr<std::shared_ptr<const CompiledRoutingRules>> compiled =
        CompileWithOverrides(*yaml, overrides);
    if (!compiled.ok()) {
      // Violations name the file's paths ("routing.teams[5]..."): find the team's index there.
      const config::v1::RoutingRules merged = WithOverrides(*yaml, overrides);
      int team_index = -1;
      for (int i = 0; i < merged.teams_size(); ++i) {
        if (merged.teams(i).id() == team.id()) team_index = i;
      }
      return grpc_util::ToGrpcStatus(
          AsViolation(compiled.status(), team_index, request_field, rep_index));
    }

    redis::ApplyOnceRequest apply;
    apply.dedup_key = RoutingStore::OverridesWriteKey(version);
    apply.dedup_ttl = kOverridesWriteTtl;
    apply.state_keys = {RoutingStore::OverridesKey()};
    bool stale = false;
    absl::StatusOr<redis::ApplyResult> applied =
        store_.apply().Run(apply, [&](const std::vector<redis::Versioned>& records) {
          // Validated against `version`; anything newer must be merged and validated again.
          if (records[0].version != version) {
            stale = true;
            return absl::StatusOr<redis::Plan>(absl::AbortedError("overrides changed"));
          }
          redis::Plan plan;
          plan.writes.push_back({records[0].key, overrides.SerializeAsString()});
          return absl::StatusOr<redis::Plan>(std::move(plan));
        });
    if (!applied.ok()) {
      if (stale) continue;
      return grpc_util::ToGrpcStatus(applied.status());
    }
    // A duplicate means another writer stored exactly this version's successor; re-check.
    if (applied->outcome == redis::ApplyOutcome::kDuplicate) continue;
    rules_.Invalidate();
    return grpc::Status::OK;
  }
  return grpc::Status(grpc::StatusCode::ABORTED, "teams kept changing; retry");
}

grpc::Status RoutingGrpcService::UpsertTeam(grpc::ServerContext*,
                                            const routing::v1::UpsertTeamRequest* request,
                                            routing::v1::UpsertTeamResponse* response) {
  if (request->team().id().empty()) {
    validation::ViolationList violations;
    violations.Add("team.id", "required");
    return grpc_util::ToGrpcStatus(violations.ToStatus("invalid team"));
  }
  config::v1::Team team = request->team();
  if (team.reps().empty()) {
    // "Its reps are replaced when non-empty": keep the ones the team has.
    absl::StatusOr<std::optional<config::v1::Team>> current = EffectiveTeam(team.id());
    if (!current.ok()) return grpc_util::ToGrpcStatus(current.status());
    if (current->has_value()) *team.mutable_reps() = (*current)->reps();
  }
  if (grpc::Status s = StoreTeam(team, "team", -1); !s.ok()) return s;
  *response->mutable_team() = team;
  return grpc::Status::OK;
}

grpc::Status RoutingGrpcService::UpsertRep(grpc::ServerContext*,
                                           const routing::v1::UpsertRepRequest* request,
                                           routing::v1::UpsertRepResponse* response) {
  validation::ViolationList violations;
  if (request->team_id().empty()) violations.Add("team_id", "required");
  if (request->rep().id().empty()) violations.Add("rep.id", "required");
  if (!violations.empty()) return grpc_util::ToGrpcStatus(violations.ToStatus("invalid rep"));
  absl::StatusOr<std::optional<config::v1::Team>> current = EffectiveTeam(request->team_id());
  if (!current.ok()) return grpc_util::ToGrpcStatus(current.status());
  if (!current->has_value()) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        "team " + request->team_id() + " does not exist (UpsertTeam creates it)");
  }
  config::v1::Team team = **current;
  int rep_index = -1;
  for (int i = 0; i < team.reps_size(); ++i) {
    if (team.reps(i).id() == request->rep().id()) rep_index = i;
  }
  if (rep_index < 0) {
    rep_index = team.reps_size();
    team.add_reps();
  }
  *team.mutable_reps(rep_index) = request->rep();
  if (grpc::Status s = StoreTeam(team, "rep", rep_index); !s.ok()) return s;
  *response->mutable_rep() = request->rep();
  return grpc::Status::OK;
}

grpc::Status RoutingGrpcService::DryRun(grpc::ServerContext*,
                                        const routing::v1::DryRunRequest* request,
                                        routing::v1::DryRunResponse* response) {
  absl::StatusOr<std::shared_ptr<const CompiledRoutingRules>> rules = rules_.Current();
  if (!rules.ok()) return grpc_util::ToGrpcStatus(rules.status());
  const RouteDecision decision = MatchTeam(**rules, request->lead(), request->score());
  // As if the lead had never been routed: does this score reach the matched rule's threshold?
  response->set_would_route(
      ShouldRoute(decision, events::v1::ScoreSnapshot(), request->score(), /*new_episode=*/true));
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

grpc::Status RoutingGrpcService::Reroute(grpc::ServerContext* context,
                                         const routing::v1::RerouteRequest* request,
                                         routing::v1::RerouteResponse* response) {
  validation::ViolationList violations;
  if (request->lead_id().empty()) violations.Add("lead_id", "required");
  if (request->reason().empty()) violations.Add("reason", "required");
  if (!violations.empty()) return grpc_util::ToGrpcStatus(violations.ToStatus("invalid re-route"));
  if (scheduler_ == nullptr) {
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "re-routing needs the scheduler");
  }
  const absl::Time now = clock_.Now();
  // Without a request id the call is simply not idempotent.
  const std::string request_id =
      !request->request_id().empty()
          ? request->request_id()
          : events::DeriveEventId("grpc-request",
                                  absl::StrCat(context != nullptr ? context->peer() : "",
                                               absl::ToUnixNanos(now), request->lead_id()));
  if (absl::Status s = scheduler_->Reroute(request->lead_id(), request->reason(), request_id);
      !s.ok()) {
    if (absl::IsNotFound(s)) return grpc_util::ToGrpcStatus(s);
    return grpc_util::ToGrpcStatus(
        absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s)
            ? absl::UnavailableError(absl::StrCat(
                  "re-route not acknowledged; retry with the same request_id: ", s.message()))
            : s);
  }
  absl::StatusOr<std::optional<internal::v1::RoutingAssignment>> a =
      store_.LoadAssignment(request->lead_id());
  if (!a.ok()) return grpc_util::ToGrpcStatus(a.status());
  if (a->has_value()) *response->mutable_assignment() = ToApi(**a);
  return grpc::Status::OK;
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
      kind != LeadOutcome::KIND_QUALIFIED && kind != LeadOutcome::KIND_OPPORTUNITY &&
      kind != LeadOutcome::KIND_WON && kind != LeadOutcome::KIND_LOST) {
    violations.Add("kind",
                   "must be contacted, qualified, opportunity, won or lost (Accept and Reject "
                   "have their own calls)");
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
