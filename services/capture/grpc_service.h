#pragma once

// Capture's gRPC API (proto/leadflow/capture/v1/capture.proto): a thin adapter over
// CaptureHandler and CaptureStore. A submission's event is acknowledged by the broker before
// the call answers, so an OK reply means the lead is durable and on its way.

#include "common/kafka/producer.h"
#include "leadflow/capture/v1/capture.grpc.pb.h"
#include "services/capture/handler.h"

namespace leadflow::capture {

class CaptureGrpcService final : public capture::v1::Capture::Service {
 public:
  CaptureGrpcService(CaptureHandler& handler, CaptureStore& store, const Normalizer& normalizer,
                     kafka::Producer& producer)
      : handler_(handler), store_(store), normalizer_(normalizer), producer_(producer) {}

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

 private:
  // Records acknowledged (request id, lead id) pairs (CaptureStore::MarkSent).
  void MarkSent(const std::vector<std::pair<std::string, std::string>>& requests);

  CaptureHandler& handler_;
  CaptureStore& store_;
  const Normalizer& normalizer_;
  kafka::Producer& producer_;
};

}  // namespace leadflow::capture
