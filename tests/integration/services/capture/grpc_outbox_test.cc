// Capture's outbox against a real redis-server (no Kafka): a lead stored whose event the broker
// never acknowledged — the broker refused it, or capture died between storing the lead and the
// acknowledgement — gets its event re-sent, the same event with the same id, without waiting for
// the client to retry (CaptureGrpcService::ResendUnacknowledged). The producer here is a fake
// that acknowledges or refuses at once.
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/config/yaml_proto.h"
#include "common/events/envelope.h"
#include "common/kafka/producer.h"
#include "common/redis/hiredis_client.h"
#include "common/testing/metrics.h"
#include "common/testing/redis_for_test.h"
#include "common/testing/redis_server.h"
#include "common/testing/simulated_clock.h"
#include "gmock/gmock.h"
#include "grpcpp/server_context.h"
#include "gtest/gtest.h"
#include "leadflow/events/v1/lead.pb.h"
#include "services/capture/grpc_service.h"
#include "services/capture/handler.h"
#include "services/capture/store.h"

namespace leadflow::capture {
namespace {

using events::v1::LeadCaptured;
using events::v1::LeadSubmission;
using ::testing::IsEmpty;
using ::testing::SizeIs;

const absl::Time kStart =
    absl::FromCivil(absl::CivilSecond(2026, 1, 5, 11, 0, 0), absl::UTCTimeZone());
constexpr absl::Duration kGrace = absl::Seconds(60);

LeadSubmission Jane(const std::string& request_id) {
  LeadSubmission s;
  s.set_request_id(request_id);
  s.set_source("web_form");
  s.set_email("jane.doe@acme-widgets.com");
  s.set_first_name("Jane");
  s.set_last_name("Doe");
  s.set_company("Acme Widgets Ltd");
  return s;
}

// Acknowledges every message at once, or refuses it (a broker down past the deadline).
class FakeProducer final : public kafka::Producer {
 public:
  absl::Status Send(kafka::OutboundMessage message, DeliveryCallback on_delivery) override {
    absl::Status report = absl::OkStatus();
    {
      absl::MutexLock lock(&mu_);
      if (refuse_) {
        report = absl::UnavailableError("Local: Message timed out");
      } else {
        acknowledged_.push_back(std::move(message));
      }
    }
    on_delivery(report);
    return absl::OkStatus();
  }
  absl::Status Flush(absl::Duration) override { return absl::OkStatus(); }

  void Refuse(bool refuse) {
    absl::MutexLock lock(&mu_);
    refuse_ = refuse;
  }
  // The event ids of the leads.captured events the broker acknowledged, in order.
  std::vector<std::string> AcknowledgedEventIds() {
    absl::MutexLock lock(&mu_);
    std::vector<std::string> ids;
    for (const kafka::OutboundMessage& m : acknowledged_) {
      LeadCaptured event;
      EXPECT_TRUE(event.ParseFromString(m.value));
      ids.push_back(event.envelope().event_id());
    }
    return ids;
  }

 private:
  absl::Mutex mu_;
  bool refuse_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<kafka::OutboundMessage> acknowledged_ ABSL_GUARDED_BY(mu_);
};

class CaptureOutboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    redis_ = testing::StartRedisForTest();
    ASSERT_NE(redis_, nullptr);
    client_ = std::make_unique<redis::HiredisClient>(*redis::ParseRedisAddress(redis_->address()));
    config::v1::CaptureConfig config;
    ASSERT_TRUE(
        config::LoadYamlProto(std::string(LEADFLOW_SOURCE_DIR) + "/config/capture.yaml", &config)
            .ok());
    normalizer_ = std::make_unique<Normalizer>(config);
    store_ = std::make_unique<CaptureStore>(*client_);
    handler_ = std::make_unique<CaptureHandler>(*normalizer_, *store_, topics_, clock_, registry_);
    grpc_ = std::make_unique<CaptureGrpcService>(*handler_, *store_, *normalizer_, producer_,
                                                 registry_);
  }

  grpc::Status SubmitLead(const LeadSubmission& submission,
                          capture::v1::SubmitLeadResponse* response) {
    capture::v1::SubmitLeadRequest request;
    *request.mutable_submission() = submission;
    grpc::ServerContext context;  // unused: every submission here carries its request id
    return grpc_->SubmitLead(&context, &request, response);
  }
  int Resend() {
    absl::StatusOr<int> resent = grpc_->ResendUnacknowledged(clock_.Now(), kGrace);
    EXPECT_TRUE(resent.ok()) << resent.status();
    return resent.ok() ? *resent : -1;
  }
  int64_t OutboxSize() {
    absl::StatusOr<redis::Reply> n = client_->Command({"ZCARD", CaptureStore::OutboxKey()});
    EXPECT_TRUE(n.ok()) << n.status();
    return n.ok() ? n->integer : -1;
  }

  testing::SimulatedClock clock_{kStart};
  kafka::Topics topics_{"test."};
  prometheus::Registry registry_;
  FakeProducer producer_;
  std::unique_ptr<testing::RedisServer> redis_;
  std::unique_ptr<redis::HiredisClient> client_;
  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<CaptureStore> store_;
  std::unique_ptr<CaptureHandler> handler_;
  std::unique_ptr<CaptureGrpcService> grpc_;
};

TEST_F(CaptureOutboxTest, AnEventTheBrokerRefusedIsResentAfterTheGraceWithoutTheClientRetrying) {
  producer_.Refuse(true);
  capture::v1::SubmitLeadResponse response;
  const grpc::Status refused = SubmitLead(Jane("form-1"), &response);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE) << refused.error_message();
  EXPECT_EQ(OutboxSize(), 1);
  producer_.Refuse(false);

  clock_.Advance(kGrace - absl::Seconds(1));
  EXPECT_EQ(Resend(), 0);
  EXPECT_THAT(producer_.AcknowledgedEventIds(), IsEmpty());
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(Resend(), 1);
  EXPECT_THAT(producer_.AcknowledgedEventIds(),
              ::testing::ElementsAre(events::DeriveEventId("captured", "form-1")));
  EXPECT_EQ(OutboxSize(), 0);
  EXPECT_EQ(testing::MetricValue(registry_, "leadflow_capture_outbox_resent_total"), 1);
  absl::StatusOr<bool> sent = store_->WasSent("form-1");
  ASSERT_TRUE(sent.ok());
  EXPECT_TRUE(*sent);
  // Done: never again, and the client's own retry now answers without sending.
  clock_.Advance(kGrace * 3);
  EXPECT_EQ(Resend(), 0);
  ASSERT_TRUE(SubmitLead(Jane("form-1"), &response).ok());
  EXPECT_TRUE(response.duplicate_request());
  EXPECT_THAT(producer_.AcknowledgedEventIds(), SizeIs(1));
}

TEST_F(CaptureOutboxTest, AResendTheBrokerRefusesAgainIsTriedAgainAfterAnotherGrace) {
  producer_.Refuse(true);
  capture::v1::SubmitLeadResponse response;
  EXPECT_FALSE(SubmitLead(Jane("form-2"), &response).ok());
  clock_.Advance(kGrace);
  EXPECT_EQ(Resend(), 0);  // refused again
  EXPECT_EQ(OutboxSize(), 1);
  producer_.Refuse(false);
  EXPECT_EQ(Resend(), 0);  // re-sent just now: not before another grace
  clock_.Advance(kGrace);
  EXPECT_EQ(Resend(), 1);
  EXPECT_THAT(producer_.AcknowledgedEventIds(), SizeIs(1));
  EXPECT_EQ(OutboxSize(), 0);
}

// Capture died after storing the lead and before the broker acknowledged its event: another
// replica (here the same store) re-sends it.
TEST_F(CaptureOutboxTest, ALeadStoredByAReplicaThatDiedBeforeItsAcknowledgementGetsItsEvent) {
  ASSERT_TRUE(store_->outbox().Add({"form-3"}, clock_.Now()).ok());
  absl::StatusOr<SubmitOutcome> stored = handler_->Submit(Jane("form-3"), "form-3");
  ASSERT_TRUE(stored.ok()) << stored.status();
  ASSERT_THAT(stored->outputs, SizeIs(1));  // never sent: the process is gone
  prometheus::Registry other_registry;
  CaptureGrpcService other(*handler_, *store_, *normalizer_, producer_, other_registry);
  clock_.Advance(kGrace);
  absl::StatusOr<int> resent = other.ResendUnacknowledged(clock_.Now(), kGrace);
  ASSERT_TRUE(resent.ok()) << resent.status();
  EXPECT_EQ(*resent, 1);
  EXPECT_THAT(producer_.AcknowledgedEventIds(),
              ::testing::ElementsAre(events::DeriveEventId("captured", "form-3")));
}

TEST_F(CaptureOutboxTest, WhatIsAcknowledgedRejectedOrStoredNothingLeavesNoEntry) {
  capture::v1::SubmitLeadResponse response;
  ASSERT_TRUE(SubmitLead(Jane("form-4"), &response).ok());
  EXPECT_EQ(OutboxSize(), 0);
  ASSERT_TRUE(SubmitLead(Jane("form-4"), &response).ok());  // a double submit: nothing to send
  EXPECT_EQ(OutboxSize(), 0);
  LeadSubmission invalid = Jane("form-5");
  invalid.clear_email();
  EXPECT_EQ(SubmitLead(invalid, &response).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(OutboxSize(), 0);

  // Died between the outbox entry and storing anything; and a lead erased before its resend.
  ASSERT_TRUE(store_->outbox().Add({"form-6"}, clock_.Now()).ok());
  ASSERT_TRUE(store_->outbox().Add({"form-7"}, clock_.Now()).ok());
  LeadSubmission erased = Jane("form-7");
  erased.set_email("erase.me@other.example");
  absl::StatusOr<SubmitOutcome> stored = handler_->Submit(erased, "form-7");
  ASSERT_TRUE(stored.ok()) << stored.status();
  ASSERT_TRUE(store_->Erase(stored->response.lead_id()).ok());
  clock_.Advance(kGrace);
  EXPECT_EQ(Resend(), 0);
  EXPECT_EQ(OutboxSize(), 0);
  EXPECT_THAT(producer_.AcknowledgedEventIds(), SizeIs(1));  // form-4's, nothing else
}

}  // namespace
}  // namespace leadflow::capture
