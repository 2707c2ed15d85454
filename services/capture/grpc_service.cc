#include "services/capture/grpc_service.h"

#include <memory>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/events/envelope.h"
#include "common/grpc/status.h"
#include "common/kafka/handler.h"
#include "common/runtime/periodic.h"
#include "spdlog/spdlog.h"

namespace leadflow::capture {
namespace {

// SubmitLeads items captured together (see SubmitLeads).
constexpr size_t kItemsPerBatch = 256;
constexpr absl::Duration kAckTimeout = absl::Seconds(30);

// A request id for calls without one: unique, so such calls are simply not idempotent.
std::string RequestIdFor(const events::v1::LeadSubmission& s, grpc::ServerContext* context) {
  if (!s.request_id().empty()) return s.request_id();
  return events::DeriveEventId("grpc-request",
                               absl::StrCat(context->peer(), absl::ToUnixNanos(absl::Now()),
                                            reinterpret_cast<uintptr_t>(context)));
}

// Waits for the acknowledgement of a batch of sends.
class AckGroup : public std::enable_shared_from_this<AckGroup> {
 public:
  // The callback keeps the group alive: acknowledgements may arrive after the call gave up.
  kafka::Producer::DeliveryCallback Callback(size_t index) {
    absl::MutexLock lock(&mu_);
    ++pending_;
    return [self = shared_from_this(), index](const absl::Status& s) {
      absl::MutexLock lock(&self->mu_);
      if (!s.ok()) self->failed_.emplace_back(index, s);
      --self->pending_;
    };
  }
  // False if some acknowledgements did not arrive in time.
  bool Wait(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto done = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return pending_ == 0; };
    return mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
  }
  std::vector<std::pair<size_t, absl::Status>> failed() {
    absl::MutexLock lock(&mu_);
    return failed_;
  }

 private:
  absl::Mutex mu_;
  size_t pending_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::pair<size_t, absl::Status>> failed_ ABSL_GUARDED_BY(mu_);
};

void SetItemError(const absl::Status& status, capture::v1::ItemResult* item) {
  capture::v1::ItemError* error = item->mutable_error();
  error->set_code(static_cast<int>(status.code()));
  error->set_message(std::string(status.message()));
  // Bound to a local: ranging over a member of the returned temporary would dangle.
  const google::rpc::BadRequest violations = grpc_util::ViolationsOf(status);
  for (const auto& v : violations.field_violations()) {
    auto* out = error->add_violations();
    out->set_field(v.field());
    out->set_description(v.description());
  }
}

}  // namespace

CaptureGrpcService::CaptureGrpcService(CaptureHandler& handler, CaptureStore& store,
                                       const Normalizer& normalizer, kafka::Producer& producer,
                                       prometheus::Registry& registry)
    : handler_(handler),
      store_(store),
      normalizer_(normalizer),
      producer_(producer),
      outbox_resent_(prometheus::BuildCounter()
                         .Name("leadflow_capture_outbox_resent_total")
                         .Help("gRPC submissions whose events were re-sent from the outbox "
                               "because their acknowledgement never came.")
                         .Register(registry)
                         .Add({})) {}

void CaptureGrpcService::MarkSent(
    const std::vector<std::pair<std::string, std::string>>& requests) {
  // Best effort: without the record a duplicate request re-sends the same events (same ids),
  // which consumers de-duplicate; nothing is lost.
  if (absl::Status s = store_.MarkSent(requests, handler_.request_retention()); !s.ok()) {
    spdlog::warn("could not record {} delivered submission(s): {}", requests.size(), s.ToString());
  }
}

void CaptureGrpcService::ForgetUnsent(const std::vector<std::string>& request_ids) {
  if (absl::Status s = store_.outbox().Remove(request_ids); !s.ok()) {
    spdlog::warn("could not take {} submission(s) out of the outbox: {}", request_ids.size(),
                 s.ToString());
  }
}

grpc::Status CaptureGrpcService::SubmitLead(grpc::ServerContext* context,
                                            const capture::v1::SubmitLeadRequest* request,
                                            capture::v1::SubmitLeadResponse* response) {
  const std::string request_id = RequestIdFor(request->submission(), context);
  // In the outbox before anything is stored: whatever happens from here on, a lead stored is a
  // lead whose event goes out.
  if (absl::Status s = store_.outbox().Add({request_id}, handler_.clock().Now()); !s.ok()) {
    return grpc_util::ToGrpcStatus(s);
  }
  absl::StatusOr<SubmitOutcome> outcome = handler_.Submit(request->submission(), request_id);
  if (!outcome.ok()) {
    if (kafka::IsPoison(outcome.status())) ForgetUnsent({request_id});
    return grpc_util::ToGrpcStatus(outcome.status());
  }
  const bool sends = !outcome->outputs.empty();
  if (!sends) ForgetUnsent({request_id});
  for (kafka::OutboundMessage& m : outcome->outputs) {
    if (absl::Status s = producer_.SendAndWait(std::move(m), kAckTimeout); !s.ok()) {
      // The lead is stored; a retry with the same request id re-sends the same event.
      return grpc_util::ToGrpcStatus(absl::UnavailableError(
          absl::StrCat("lead stored but its event is not yet acknowledged: ", s.message())));
    }
  }
  if (sends) MarkSent({{request_id, outcome->response.lead_id()}});
  *response = std::move(outcome->response);
  return grpc::Status::OK;
}

grpc::Status CaptureGrpcService::SubmitLeads(
    grpc::ServerContext* context, grpc::ServerReader<capture::v1::SubmitLeadRequest>* reader,
    capture::v1::SubmitLeadsResponse* response) {
  // Events are sent as items arrive and acknowledged together at the end: a bulk import is not
  // throttled by one broker round trip per lead.
  auto acks = std::make_shared<AckGroup>();
  capture::v1::SubmitLeadRequest request;
  // Items whose events were sent: (index, request id) for MarkSent once they are acknowledged.
  std::vector<std::pair<size_t, std::string>> sent;
  // Items are captured kItemsPerBatch at a time (CaptureHandler::SubmitBatch): they share their
  // Redis round trips.
  std::vector<capture::v1::SubmitLeadRequest> chunk;
  std::vector<std::string> chunk_request_ids;
  int64_t chunk_start = 0;
  grpc::Status outbox_error = grpc::Status::OK;
  auto capture_chunk = [&] {
    std::vector<const events::v1::LeadSubmission*> submissions;
    for (const capture::v1::SubmitLeadRequest& r : chunk) submissions.push_back(&r.submission());
    // In the outbox before anything is stored (see SubmitLead).
    if (absl::Status s = store_.outbox().Add(chunk_request_ids, handler_.clock().Now()); !s.ok()) {
      outbox_error = grpc_util::ToGrpcStatus(s);
      return;
    }
    std::vector<absl::StatusOr<SubmitOutcome>> outcomes =
        handler_.SubmitBatch(submissions, chunk_request_ids);
    std::vector<std::string> unsent;
    for (size_t k = 0; k < outcomes.size(); ++k) {
      const int64_t index = chunk_start + static_cast<int64_t>(k);
      capture::v1::ItemResult* item = response->mutable_results(static_cast<int>(index));
      absl::StatusOr<SubmitOutcome>& outcome = outcomes[k];
      if (!outcome.ok()) {
        if (kafka::IsPoison(outcome.status())) unsent.push_back(chunk_request_ids[k]);
        SetItemError(outcome.status(), item);
        continue;
      }
      if (outcome->outputs.empty()) {
        unsent.push_back(chunk_request_ids[k]);
      } else {
        sent.emplace_back(index, std::move(chunk_request_ids[k]));
      }
      for (kafka::OutboundMessage& m : outcome->outputs) {
        kafka::Producer::DeliveryCallback cb = acks->Callback(static_cast<size_t>(index));
        if (absl::Status s = producer_.Send(std::move(m), cb); !s.ok()) cb(s);
      }
      *item->mutable_ok() = std::move(outcome->response);
    }
    ForgetUnsent(unsent);
    chunk_start += static_cast<int64_t>(chunk.size());
    chunk.clear();
    chunk_request_ids.clear();
  };
  for (int64_t index = 0; outbox_error.ok() && reader->Read(&request); ++index) {
    response->add_results()->set_index(index);
    chunk_request_ids.push_back(RequestIdFor(request.submission(), context));
    chunk.push_back(std::move(request));
    if (chunk.size() >= kItemsPerBatch) capture_chunk();
  }
  if (outbox_error.ok() && !chunk.empty()) capture_chunk();
  if (!outbox_error.ok()) {
    // Redis is unreachable: nothing of this chunk was captured; what earlier chunks sent is
    // acknowledged or re-sent from the outbox. The client resubmits with the same request ids.
    (void)acks->Wait(kAckTimeout);
    return outbox_error;
  }
  if (!acks->Wait(kAckTimeout)) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "events not acknowledged in time; resubmit with the same request ids");
  }
  for (const auto& [i, status] : acks->failed()) {
    SetItemError(absl::UnavailableError(absl::StrCat("event not acknowledged: ", status.message())),
                 response->mutable_results(static_cast<int>(i)));
  }
  std::vector<std::pair<std::string, std::string>> acknowledged;
  for (auto& [i, request_id] : sent) {
    const capture::v1::ItemResult& item = response->results(static_cast<int>(i));
    if (item.has_ok()) acknowledged.emplace_back(std::move(request_id), item.ok().lead_id());
  }
  MarkSent(acknowledged);
  for (const capture::v1::ItemResult& item : response->results()) {
    if (item.has_error()) {
      response->set_rejected(response->rejected() + 1);
    } else if (item.ok().created() && !item.ok().duplicate_request()) {
      response->set_created(response->created() + 1);
    } else {
      response->set_merged(response->merged() + 1);
    }
  }
  return grpc::Status::OK;
}

absl::StatusOr<int> CaptureGrpcService::ResendUnacknowledged(absl::Time now, absl::Duration grace,
                                                             int limit) {
  absl::StatusOr<std::vector<std::string>> stale =
      store_.outbox().TakeStale(now - grace, now, limit);
  if (!stale.ok()) return stale.status();
  std::vector<std::string> unsent;
  std::vector<std::pair<std::string, std::string>> acknowledged;
  for (const std::string& request_id : *stale) {
    absl::StatusOr<SubmitOutcome> outcome = handler_.Replay(request_id);
    if (!outcome.ok()) {
      if (absl::IsNotFound(outcome.status())) {
        unsent.push_back(request_id);  // nothing was stored under it: nothing to send
      } else {
        spdlog::warn("capture outbox: request {}: {}", request_id, outcome.status().ToString());
      }
      continue;
    }
    if (outcome->outputs.empty()) {
      unsent.push_back(request_id);  // acknowledged before (MarkSent's record is there)
      continue;
    }
    // Stays in the outbox (moved to now) when this fails: re-sent after another grace.
    if (absl::Status s = producer_.SendAllAndWait(std::move(outcome->outputs), kAckTimeout);
        !s.ok()) {
      spdlog::warn("capture outbox: re-sending the events of request {}: {}", request_id,
                   s.ToString());
      continue;
    }
    acknowledged.emplace_back(request_id, outcome->response.lead_id());
    outbox_resent_.Increment();
  }
  ForgetUnsent(unsent);
  MarkSent(acknowledged);
  if (!acknowledged.empty()) {
    spdlog::info("capture outbox: re-sent the unacknowledged events of {} submission(s)",
                 acknowledged.size());
  }
  return static_cast<int>(acknowledged.size());
}

void CaptureGrpcService::RunOutbox(const absl::Notification& stop, absl::Duration interval,
                                   absl::Duration grace) {
  runtime::RunEvery(interval, stop, [&] {
    absl::StatusOr<int> resent = ResendUnacknowledged(handler_.clock().Now(), grace);
    if (!resent.ok()) spdlog::warn("capture outbox: {}", resent.status().ToString());
  });
}

grpc::Status CaptureGrpcService::GetLead(grpc::ServerContext*,
                                         const capture::v1::GetLeadRequest* request,
                                         capture::v1::GetLeadResponse* response) {
  if (request->lead_id().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "lead_id is required");
  }
  // A lead merged into another answers with the one it is now part of.
  absl::StatusOr<std::optional<events::v1::LeadProfile>> profile =
      store_.LoadCurrent(request->lead_id());
  if (!profile.ok()) return grpc_util::ToGrpcStatus(profile.status());
  if (!profile->has_value()) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "no lead " + request->lead_id());
  }
  if ((*profile)->lead_id() != request->lead_id()) {
    response->set_merged_lead_id(request->lead_id());
  }
  *response->mutable_lead() = std::move(**profile);
  return grpc::Status::OK;
}

grpc::Status CaptureGrpcService::FindLead(grpc::ServerContext*,
                                          const capture::v1::FindLeadRequest* request,
                                          capture::v1::GetLeadResponse* response) {
  std::string index_key;
  if (request->has_email()) {
    index_key = CaptureStore::EmailIndexKey(EmailMatchKey(request->email()));
  } else if (request->has_phone()) {
    absl::StatusOr<std::string> e164 = normalizer_.NormalizePhone(request->phone());
    if (!e164.ok()) return grpc_util::ToGrpcStatus(e164.status());
    index_key = CaptureStore::PhoneIndexKey(*e164);
  } else {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "email or phone is required");
  }
  absl::StatusOr<std::optional<std::string>> lead_id = store_.LookupIndex(index_key);
  if (!lead_id.ok()) return grpc_util::ToGrpcStatus(lead_id.status());
  if (!lead_id->has_value()) return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such lead");
  capture::v1::GetLeadRequest get;
  get.set_lead_id(**lead_id);
  return GetLead(nullptr, &get, response);
}

}  // namespace leadflow::capture
