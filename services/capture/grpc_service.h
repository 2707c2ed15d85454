#pragma once

// Capture's gRPC API (proto/leadflow/capture/v1/capture.proto): a thin adapter over
// CaptureHandler and CaptureStore. A submission's event is acknowledged by the broker before
// the call answers, so an OK reply means the lead is durable and on its way.
//
// A lead stored whose event the broker did not acknowledge (capture died in between, the broker
// was down past the call's deadline) is not left to the client's retry: every submission is in
// capture's outbox (CaptureStore::OutboxKey) from before it is captured until its events are
// acknowledged, and ResendUnacknowledged, run every few seconds, re-sends the events of those
// left for longer than a grace period — the same events, with the same ids — until acknowledged.

#include "absl/synchronization/notification.h"
#include "common/kafka/producer.h"
#include "leadflow/capture/v1/capture.grpc.pb.h"
#include "prometheus/counter.h"
#include "prometheus/registry.h"
#include "services/capture/handler.h"

namespace leadflow::capture {

class CaptureGrpcService final : public capture::v1::Capture::Service {
 public:
  CaptureGrpcService(CaptureHandler& handler, CaptureStore& store, const Normalizer& normalizer,
                     kafka::Producer& producer, prometheus::Registry& registry);

  grpc::Status SubmitLead(grpc::ServerContext* context,
                          const capture::v1::SubmitLeadRequest* request,
                          capture::v1::SubmitLeadResponse* response) override;
  grpc::Status SubmitLeads(grpc::ServerContext* context,
                           grpc::ServerReader<capture::v1::SubmitLeadRequest>* reader,
                           capture::v1::SubmitLeadsResponse* response) override;
  grpc::Status GetLead(grpc::ServerContext* context, const capture::v1::GetLeadRequest* request,
                       capture::v1::GetLeadResponse* response) override;
  grpc::Status FindLead(grpc::ServerContext* context, const capture::v1::FindLeadRequest* request,
                        capture::v1::GetLeadResponse* response) override;

  // Re-sends the events of up to `limit` submissions in the outbox since before `now - grace`
  // and waits for their acknowledgement; drops the entries of submissions that recorded
  // nothing. Returns how many submissions' events were re-sent and acknowledged. Errors: the
  // outbox could not be read (Redis); the failures of single entries are logged and retried.
  absl::StatusOr<int> ResendUnacknowledged(absl::Time now, absl::Duration grace, int limit = 500);
  // The background task: ResendUnacknowledged every `interval` until `stop`.
  void RunOutbox(const absl::Notification& stop, absl::Duration interval = absl::Seconds(5),
                 absl::Duration grace = absl::Seconds(60));

 private:
  // Records acknowledged (request id, lead id) pairs (CaptureStore::MarkSent).
  void MarkSent(const std::vector<std::pair<std::string, std::string>>& requests);
  // Takes submissions that will send nothing (rejected, nothing changed, sent before) out of
  // the outbox; best effort: an entry left behind is dropped by ResendUnacknowledged.
  void ForgetUnsent(const std::vector<std::string>& request_ids);

  CaptureHandler& handler_;
  CaptureStore& store_;
  const Normalizer& normalizer_;
  kafka::Producer& producer_;
  prometheus::Counter& outbox_resent_;
};

}  // namespace leadflow::capture
