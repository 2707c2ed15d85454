// End-to-end: the five services as real processes on a real Kafka broker and real redis-servers.
// Requires the stack of scripts/test.sh (LEADFLOW_TEST_ENV); skipped without it.

#include <atomic>
#include <csignal>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/events/codec.h"
#include "common/events/envelope.h"
#include "common/kafka/consumer_loop.h"
#include "common/kafka/topics.h"
#include "common/testing/kafka_test_client.h"
#include "common/testing/test_env.h"
#include "common/testing/wait.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "leadflow/capture/v1/capture.grpc.pb.h"
#include "leadflow/events/v1/activity.pb.h"
#include "leadflow/events/v1/lead.pb.h"
#include "leadflow/events/v1/nurture.pb.h"
#include "leadflow/events/v1/routing.pb.h"
#include "leadflow/events/v1/scoring.pb.h"
#include "tests/e2e/e2e_fixtures.h"
#include "tests/e2e/pipeline_stack.h"

namespace leadflow::e2e {
namespace {

using events::v1::LeadSubmission;

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::TestEnv::Available()) GTEST_SKIP() << "LEADFLOW_TEST_ENV not set";
    absl::StatusOr<std::unique_ptr<PipelineStack>> stack =
        PipelineStack::StartInTestEnv("e2e", {{"scoring.yaml", kScoringRules},
                                              {"routing.yaml", kRoutingRules},
                                              {"nurture.yaml", kNurtureTracks}});
    ASSERT_TRUE(stack.ok()) << stack.status();
    stack_ = *std::move(stack);
    props_ = testing::KafkaProps(stack_->bootstrap());
    absl::StatusOr<std::unique_ptr<kafka::Producer>> producer = testing::MakeProducer(props_);
    ASSERT_TRUE(producer.ok()) << producer.status();
    producer_ = *std::move(producer);
  }

  std::unique_ptr<testing::TopicReader> Read(const std::string& base) {
    absl::StatusOr<std::unique_ptr<testing::TopicReader>> reader =
        testing::TopicReader::Start(props_, {stack_->Topic(base)});
    EXPECT_TRUE(reader.ok()) << reader.status();
    return reader.ok() ? *std::move(reader) : nullptr;
  }

  template <typename T>
  static std::vector<T> Decoded(const testing::TopicReader& reader) {
    std::vector<T> out;
    for (const kafka::ConsumedMessage& m : reader.Messages()) {
      T event;
      if (events::Decode(m, &event).ok()) out.push_back(std::move(event));
    }
    return out;
  }

  void PublishLead(const LeadSubmission& s) {
    ASSERT_TRUE(testing::ProduceAndWait(*producer_, JsonOn(stack_->Topic("leads.inbound"),
                                                           s.email(), events::ToJson(s)))
                    .ok());
  }

  testing::KafkaProperties props_;
  std::unique_ptr<PipelineStack> stack_;
  std::unique_ptr<kafka::Producer> producer_;
};

TEST_F(PipelineTest, LeadsFlowFromCaptureThroughScoringToRoutingAndNurturing) {
  auto routed = Read("leads.routed");
  auto touches = Read("nurture.touches");
  auto activity = Read("leads.activity");

  // An executive from the UK interested in shoes, through the gRPC API: sales-ready on fit.
  auto capture = capture::v1::Capture::NewStub(
      grpc::CreateChannel(stack_->GrpcAddress("capture"), grpc::InsecureChannelCredentials()));
  capture::v1::SubmitLeadRequest request;
  *request.mutable_submission() = Lead("exec-uk", "CEO", "United Kingdom");
  request.mutable_submission()->add_interests("Shoes");
  capture::v1::SubmitLeadResponse response;
  grpc::ClientContext ctx;
  ASSERT_TRUE(capture->SubmitLead(&ctx, request, &response).ok());
  EXPECT_TRUE(response.created());
  const std::string exec_id = response.lead_id();

  // A manager as JSON on leads.inbound: warm on fit, sales-ready after a demo request tracked
  // through activities.inbound.
  PublishLead(Lead("manager-de", "Marketing Manager", "DE"));
  ASSERT_TRUE(
      testing::ProduceAndWait(
          *producer_,
          JsonOn(stack_->Topic("activities.inbound"), "user-manager-de",
                 R"({"type":"track","messageId":"m-demo-1","userId":"user-manager-de",)"
                 R"("event":"Demo Requested","timestamp":")" +
                     absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone()) +
                     R"("})"))
          .ok());

  // A student: cold, so nurtured.
  PublishLead(Lead("student-fr", "Student", "France"));

  ASSERT_TRUE(routed->WaitForCount(2, absl::Seconds(60)))
      << "routed " << routed->Count() << "; see logs in " << stack_->LogFile("routing");
  std::map<std::string, events::v1::LeadRouted> by_team;
  for (auto& r : Decoded<events::v1::LeadRouted>(*routed)) by_team[r.team_id()] = r;
  ASSERT_TRUE(by_team.contains("uk-fashion"));
  EXPECT_EQ(by_team["uk-fashion"].envelope().lead_id(), exec_id);
  EXPECT_EQ(by_team["uk-fashion"].lead().country(), "GB");
  EXPECT_FALSE(by_team["uk-fashion"].rep_id().empty());
  ASSERT_TRUE(by_team.contains("inbound"));
  EXPECT_EQ(by_team["inbound"].lead().email(), "lead@manager-de.example.com");
  for (const kafka::ConsumedMessage& m : routed->Messages()) {
    EXPECT_TRUE(m.key == "uk-fashion" || m.key == "inbound") << "leads.routed is keyed by team";
  }

  ASSERT_TRUE(activity->WaitForCount(1, absl::Seconds(30)));
  EXPECT_EQ(Decoded<events::v1::LeadActivity>(*activity)[0].activity().type(), "demo_request");

  ASSERT_TRUE(touches->WaitForCount(1, absl::Seconds(60)))
      << "see logs in " << stack_->LogFile("nurturing");
  const auto touch = Decoded<events::v1::NurtureTouch>(*touches)[0];
  EXPECT_EQ(touch.track_id(), "cold-welcome");
  EXPECT_EQ(touch.step(), 0);
  EXPECT_EQ(touch.content_id(), "welcome");
  EXPECT_EQ(touch.address(), "lead@student-fr.example.com");
}

TEST_F(PipelineTest, MalformedInboundMessageGoesToDlqWithReasonAndNextIsProcessed) {
  auto dlq = Read("leads.inbound.dlq");
  auto captured = Read("leads.captured");
  ASSERT_TRUE(testing::ProduceAndWait(*producer_, JsonOn(stack_->Topic("leads.inbound"), "bad",
                                                         R"({"email": "no-closing-brace")"))
                  .ok());
  PublishLead(Lead("after-bad", "CEO", "GB"));

  ASSERT_TRUE(dlq->WaitForCount(1, absl::Seconds(60)));
  const kafka::ConsumedMessage bad = dlq->Messages()[0];
  EXPECT_EQ(bad.value, R"({"email": "no-closing-brace")");
  EXPECT_EQ(bad.HeaderValue(kafka::kDlqTopicHeader).value_or(""), stack_->Topic("leads.inbound"));
  EXPECT_EQ(bad.HeaderValue(kafka::kDlqErrorClassHeader).value_or(""), "INVALID_ARGUMENT");
  EXPECT_NE(bad.HeaderValue(kafka::kDlqErrorMessageHeader).value_or(""), "");
  EXPECT_TRUE(bad.HeaderValue(kafka::kDlqOffsetHeader).has_value());

  ASSERT_TRUE(captured->WaitForCount(1, absl::Seconds(60)));
  EXPECT_EQ(Decoded<events::v1::LeadCaptured>(*captured)[0].lead().email(),
            "lead@after-bad.example.com");
}

TEST_F(PipelineTest, ErasureRemovesTheLeadFromCapture) {
  auto capture = capture::v1::Capture::NewStub(
      grpc::CreateChannel(stack_->GrpcAddress("capture"), grpc::InsecureChannelCredentials()));
  capture::v1::SubmitLeadRequest request;
  *request.mutable_submission() = Lead("to-erase", "CEO", "GB");
  capture::v1::SubmitLeadResponse response;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(capture->SubmitLead(&ctx, request, &response).ok());
  }
  events::v1::LeadErasure erasure;
  *erasure.mutable_envelope() = events::MakeEnvelope({.event_id = "erase-1",
                                                      .lead_id = response.lead_id(),
                                                      .occurred_at = absl::Now(),
                                                      .produced_at = absl::Now(),
                                                      .causation_id = "erase-1",
                                                      .trace_id = "",
                                                      .producer = "test"});
  erasure.set_reason("gdpr request");
  ASSERT_TRUE(testing::ProduceAndWait(*producer_, events::Encode(stack_->Topic("leads.erasure"),
                                                                 response.lead_id(), erasure))
                  .ok());
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        grpc::ClientContext ctx;
        capture::v1::GetLeadRequest get;
        get.set_lead_id(response.lead_id());
        capture::v1::GetLeadResponse lead;
        return capture->GetLead(&ctx, get, &lead).error_code() == grpc::StatusCode::NOT_FOUND;
      },
      absl::Seconds(60)));
}

TEST_F(PipelineTest, MergingTwoLeadsMergesTheirBehaviourAndEndsTheAbsorbedEnrolment) {
  auto activity = Read("leads.activity");
  auto enrollments = Read("nurture.enrollments");
  auto capture = capture::v1::Capture::NewStub(
      grpc::CreateChannel(stack_->GrpcAddress("capture"), grpc::InsecureChannelCredentials()));
  auto submit = [&](const LeadSubmission& s) {
    capture::v1::SubmitLeadRequest request;
    *request.mutable_submission() = s;
    capture::v1::SubmitLeadResponse response;
    grpc::ClientContext ctx;
    const grpc::Status status = capture->SubmitLead(&ctx, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  };
  auto page_view = [&](const std::string& message_id, const std::string& user_id) {
    ASSERT_TRUE(
        testing::ProduceAndWait(
            *producer_,
            JsonOn(stack_->Topic("activities.inbound"), user_id,
                   R"({"type":"page","messageId":")" + message_id + R"(","userId":")" + user_id +
                       R"(","properties":{"url":"https://shop.example/pricing"},)"
                       R"("timestamp":")" +
                       absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone()) +
                       R"("})"))
            .ok());
  };
  auto activities_of = [&](const std::string& lead_id) {
    std::vector<events::v1::LeadActivity> out;
    for (auto& a : Decoded<events::v1::LeadActivity>(*activity)) {
      if (a.envelope().lead_id() == lead_id) out.push_back(std::move(a));
    }
    return out;
  };
  auto enrolment_events_of = [&](const std::string& lead_id) {
    std::vector<events::v1::NurtureEnrollmentChanged> out;
    for (auto& e : Decoded<events::v1::NurtureEnrollmentChanged>(*enrollments)) {
      if (e.envelope().lead_id() == lead_id) out.push_back(std::move(e));
    }
    return out;
  };

  // Lead A by e-mail (a web form), lead B by phone (an event app): two students, cold, nurtured.
  LeadSubmission by_email = Lead("merge-a", "Student", "GB");
  by_email.clear_external_id();
  const capture::v1::SubmitLeadResponse a = submit(by_email);
  LeadSubmission by_phone;
  by_phone.set_request_id("merge-b");
  by_phone.set_source("event");
  by_phone.set_phone("+44 20 7946 0958");
  by_phone.set_first_name("Other");
  by_phone.set_last_name("Name");
  by_phone.set_job_title("Student");
  by_phone.set_external_id("user-merge-b");
  by_phone.set_time_zone(DaytimeZone());
  auto* consent = by_phone.add_consents();
  consent->set_channel(events::v1::CHANNEL_EMAIL);
  consent->set_granted(true);
  const capture::v1::SubmitLeadResponse b = submit(by_phone);
  ASSERT_TRUE(a.created() && b.created());
  ASSERT_NE(a.lead_id(), b.lead_id());

  // Each browses: A twice (by its lead id as Segment userId), B three times (by its CRM id).
  page_view("merge-a-1", a.lead_id());
  page_view("merge-a-2", a.lead_id());
  for (int i = 1; i <= 3; ++i) page_view(absl::StrCat("merge-b-", i), "user-merge-b");
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        return activities_of(a.lead_id()).size() >= 2 && activities_of(b.lead_id()).size() >= 3;
      },
      absl::Seconds(60)))
      << "see " << stack_->LogFile("tracking");
  // B is in the cold track before the merge.
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        for (const auto& e : enrolment_events_of(b.lead_id())) {
          if (e.kind() == events::v1::NurtureEnrollmentChanged::KIND_ENROLLED) return true;
        }
        return false;
      },
      absl::Seconds(60)))
      << "see " << stack_->LogFile("nurturing");

  // One submission with both keys: one person.
  LeadSubmission both = by_email;
  both.set_request_id("merge-both");
  both.set_phone("020 7946 0958");
  const capture::v1::SubmitLeadResponse merged = submit(both);
  EXPECT_EQ(merged.lead_id(), a.lead_id());
  ASSERT_EQ(merged.merged_lead_ids_size(), 1);
  EXPECT_EQ(merged.merged_lead_ids(0), b.lead_id());

  // Tracking: one leads.activity for A with the merged behaviour.
  events::v1::LeadActivity merge_event;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        for (const auto& e : activities_of(a.lead_id())) {
          if (e.merged_lead_ids_size() > 0) {
            merge_event = e;
            return true;
          }
        }
        return false;
      },
      absl::Seconds(60)))
      << "see " << stack_->LogFile("tracking");
  EXPECT_EQ(merge_event.activity().type(), "lead_merged");
  EXPECT_EQ(merge_event.merged_lead_ids(0), b.lead_id());
  EXPECT_EQ(merge_event.aggregates().by_type().at("page_view").total(), 5);

  // Capture: B's id answers with A.
  {
    grpc::ClientContext ctx;
    capture::v1::GetLeadRequest get;
    get.set_lead_id(b.lead_id());
    capture::v1::GetLeadResponse lead;
    ASSERT_TRUE(capture->GetLead(&ctx, get, &lead).ok());
    EXPECT_EQ(lead.lead().lead_id(), a.lead_id());
    EXPECT_EQ(lead.merged_lead_id(), b.lead_id());
    EXPECT_EQ(lead.lead().phone(), "+442079460958");
  }
  // Nurturing: B's enrolment ends as merged.
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        for (const auto& e : enrolment_events_of(b.lead_id())) {
          if (e.kind() == events::v1::NurtureEnrollmentChanged::KIND_EXITED &&
              e.reason() == "merged") {
            return true;
          }
        }
        return false;
      },
      absl::Seconds(60)))
      << "see " << stack_->LogFile("nurturing");
  // A later page view under B's CRM id counts for A.
  page_view("merge-b-late", "user-merge-b");
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        for (const auto& e : activities_of(a.lead_id())) {
          if (e.activity().message_id() == "merge-b-late") {
            return e.aggregates().by_type().at("page_view").total() == 6;
          }
        }
        return false;
      },
      absl::Seconds(60)));
}

TEST_F(PipelineTest, SigkilledServicesLoseNoLeadAndRouteEachExactlyOnce) {
  constexpr int kMinLeads = 60;
  constexpr int kMaxLeads = 2000;
  auto routed = Read("leads.routed");
  ASSERT_TRUE(routed->WaitForAssignment(absl::Seconds(30)));

  // Leads stream in while every service is killed (SIGKILL, no chance to flush or commit) and
  // restarted, one after the other. The feeder runs until the last restart, however long the
  // kills take on a busy machine, so every kill lands mid-stream.
  std::atomic<bool> kills_done{false};
  std::atomic<int> fed{0};
  std::thread feeder([&] {
    for (int i = 0; i < kMaxLeads && (i < kMinLeads || !kills_done.load()); ++i) {
      LeadSubmission s = Lead(absl::StrCat("kill-", i), "Founder", i % 2 ? "GB" : "US");
      (void)testing::ProduceAndWait(
          *producer_, JsonOn(stack_->Topic("leads.inbound"), s.email(), events::ToJson(s)));
      ++fed;
      absl::SleepFor(absl::Milliseconds(40));  // pacing the load generator, not synchronising
    }
  });
  for (const std::string service :
       {"capture", "scoring", "routing", "tracking", "nurturing", "capture"}) {
    // Kill once some traffic has gone through, so the kill lands mid-stream.
    const size_t seen = routed->Count();
    testing::WaitFor([&] { return routed->Count() >= seen + 5; }, absl::Seconds(20));
    ASSERT_TRUE(stack_->Kill(service, SIGKILL).ok()) << service;
    ASSERT_TRUE(stack_->Restart(service).ok()) << service;
  }
  kills_done = true;
  feeder.join();
  const int leads = fed.load();
  ASSERT_LT(leads, kMaxLeads) << "the feeder ran out before the kills were done";

  // Every lead routed; one routing decision per lead (same event id, same rep, whatever was
  // redelivered); wire duplicates of that one decision are allowed.
  std::map<std::string, std::set<std::string>> decisions;
  const bool all = testing::WaitFor(
      [&] {
        decisions.clear();
        for (auto& r : Decoded<events::v1::LeadRouted>(*routed)) {
          decisions[r.envelope().lead_id()].insert(
              absl::StrCat(r.envelope().event_id(), "/", r.team_id(), "/", r.rep_id()));
        }
        return decisions.size() >= static_cast<size_t>(leads);
      },
      absl::Seconds(120));
  EXPECT_TRUE(all) << "routed " << decisions.size() << " of " << leads;
  EXPECT_EQ(decisions.size(), static_cast<size_t>(leads));
  for (const auto& [lead, ids] : decisions) {
    EXPECT_EQ(ids.size(), 1u) << "lead " << lead << " routed by " << ids.size() << " decisions";
  }
}

}  // namespace
}  // namespace leadflow::e2e
