#include "services/nurturing/grpc_service.h"

#include <cinttypes>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/grpc/status.h"
#include "common/validation/violations.h"
#include "spdlog/spdlog.h"

namespace leadflow::nurturing {
namespace {

// A request id for calls without one: random, so such calls are simply not idempotent.
std::string RequestIdOr(const std::string& request_id) {
  if (!request_id.empty()) return request_id;
  absl::BitGen gen;
  return absl::StrFormat("grpc-%016x%016x", absl::Uniform<uint64_t>(gen),
                         absl::Uniform<uint64_t>(gen));
}

grpc::Status LeadIdRequired() {
  validation::ViolationList violations;
  violations.Add("lead_id", "required");
  return grpc_util::ToGrpcStatus(violations.ToStatus("invalid request"));
}

// How long a command waits for its enrolment events to be acknowledged.
constexpr absl::Duration kAckTimeout = absl::Seconds(10);

}  // namespace

grpc::Status NurturingGrpcService::Reply(const absl::StatusOr<CommandOutcome>& outcome,
                                         v1::Enrollment* response) {
  if (!outcome.ok()) return grpc_util::ToGrpcStatus(outcome.status());
  for (const kafka::OutboundMessage& event : outcome->events) {
    if (absl::Status s = producer_.SendAndWait(event, kAckTimeout); !s.ok()) {
      return grpc_util::ToGrpcStatus(absl::UnavailableError(absl::StrCat(
          "enrolment event not acknowledged; retry with the same request_id: ", s.message())));
    }
  }
  if (absl::Status s = handler_.Acknowledged(*outcome); !s.ok()) {
    spdlog::warn("nurturing: could not take an acknowledged command out of the outbox: {}",
                 s.ToString());
  }
  *response = outcome->enrollment;
  return grpc::Status::OK;
}

grpc::Status NurturingGrpcService::GetEnrollments(grpc::ServerContext*,
                                                  const v1::GetEnrollmentsRequest* request,
                                                  v1::GetEnrollmentsResponse* response) {
  if (request->lead_id().empty()) {
    return LeadIdRequired();
  }
  absl::StatusOr<StoredState> stored = handler_.Load(request->lead_id());
  if (!stored.ok()) return grpc_util::ToGrpcStatus(stored.status());
  if (stored->version == 0) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        "nurturing knows no lead " + request->lead_id());
  }
  for (v1::Enrollment& e : ApiEnrollments(stored->state)) {
    *response->add_enrollments() = std::move(e);
  }
  return grpc::Status::OK;
}

grpc::Status NurturingGrpcService::ListTracks(grpc::ServerContext*, const v1::ListTracksRequest*,
                                              v1::ListTracksResponse* response) {
  const std::shared_ptr<const CompiledNurtureTracks> tracks = tracks_();
  for (const config::v1::Track* track : tracks->Tracks()) *response->add_tracks() = *track;
  response->set_version(tracks->version());
  return grpc::Status::OK;
}

grpc::Status NurturingGrpcService::Pause(grpc::ServerContext*, const v1::LeadRequest* request,
                                         v1::Enrollment* response) {
  if (request->lead_id().empty()) {
    return LeadIdRequired();
  }
  return Reply(handler_.Pause(request->lead_id(), RequestIdOr(request->request_id())), response);
}

grpc::Status NurturingGrpcService::Resume(grpc::ServerContext*, const v1::LeadRequest* request,
                                          v1::Enrollment* response) {
  if (request->lead_id().empty()) {
    return LeadIdRequired();
  }
  return Reply(handler_.Resume(request->lead_id(), RequestIdOr(request->request_id())), response);
}

grpc::Status NurturingGrpcService::Unsubscribe(grpc::ServerContext*,
                                               const v1::UnsubscribeRequest* request,
                                               v1::Enrollment* response) {
  validation::ViolationList violations;
  if (request->lead_id().empty()) violations.Add("lead_id", "required");
  if (request->channel() == events::v1::CHANNEL_UNSPECIFIED) violations.Add("channel", "required");
  if (!violations.empty()) return grpc_util::ToGrpcStatus(violations.ToStatus("invalid request"));
  return Reply(handler_.Unsubscribe(request->lead_id(), request->channel(),
                                    RequestIdOr(request->request_id())),
               response);
}

}  // namespace leadflow::nurturing
