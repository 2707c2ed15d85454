// Bad input through every intake of the five service binaries (real Kafka, real redis-servers):
// the Kafka topics the services consume from outside (leads.inbound, activities.inbound,
// leads.outcomes, leads.erasure) and the gRPC commands (capture SubmitLead / SubmitLeads,
// tracking Track, routing RecordOutcome / Accept / Reject / SetAvailability, nurturing Pause /
// Resume / Unsubscribe). Every bad message must end in `<topic>.dlq` with a reason, by every
// service that consumes the topic; every bad request must be answered INVALID_ARGUMENT (or, in
// a batch, a per-item rejection) with a reason; the services keep running; valid leads sent in
// between are all captured and routed. The Kafka corpora reuse tests/fuzz's seeds (first byte
// 0 = JSON, 1 = protobuf) that are invalid, plus cases of their own. Requires LEADFLOW_TEST_ENV.

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/events/codec.h"
#include "common/kafka/consumer_loop.h"
#include "common/testing/kafka_test_client.h"
#include "common/testing/test_env.h"
#include "common/testing/wait.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "leadflow/capture/v1/capture.grpc.pb.h"
#include "leadflow/events/v1/routing.pb.h"
#include "leadflow/nurturing/v1/nurturing.grpc.pb.h"
#include "leadflow/routing/v1/routing.grpc.pb.h"
#include "leadflow/tracking/v1/tracking.grpc.pb.h"
#include "tests/e2e/e2e_fixtures.h"
#include "tests/e2e/pipeline_stack.h"

#ifndef LEADFLOW_SOURCE_DIR
#error "LEADFLOW_SOURCE_DIR must be defined by the build"
#endif

namespace leadflow::e2e {
namespace {

using events::v1::LeadSubmission;

// Who consumes each external topic (the README's table).
const std::map<std::string, std::vector<std::string>>& Consumers() {
  static const auto* kConsumers = new std::map<std::string, std::vector<std::string>>{
      {"leads.inbound", {"capture"}},
      {"activities.inbound", {"tracking"}},
      {"leads.outcomes", {"capture", "scoring", "routing", "nurturing"}},
      {"leads.erasure", {"capture", "tracking", "scoring", "routing", "nurturing"}},
  };
  return *kConsumers;
}

struct BadMessage {
  std::string topic;  // base name
  std::string what;
  std::string value;
  // Content type header; empty = none.
  std::string content_type;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A tests/fuzz seed: first byte 0 = JSON, 1 = protobuf, then the payload.
BadMessage FromFuzzSeed(const std::string& topic, const std::string& corpus,
                        const std::string& file) {
  const std::string bytes =
      ReadFile(absl::StrCat(LEADFLOW_SOURCE_DIR, "/tests/fuzz/corpus/", corpus, "/", file));
  const bool json = !bytes.empty() && bytes[0] == 0;
  return {topic, absl::StrCat("fuzz seed ", corpus, "/", file),
          bytes.empty() ? "" : bytes.substr(1),
          std::string(json ? kafka::kContentTypeJson : kafka::kContentTypeProtobuf)};
}

const std::string kJson(kafka::kContentTypeJson);
const std::string kProto(kafka::kContentTypeProtobuf);

// Payloads bad on any topic: undecodable whatever the message type.
void AddUndecodable(const std::string& topic, std::vector<BadMessage>& out) {
  out.push_back({topic, "malformed JSON", R"({"envelope": {"leadId": "x")", kJson});
  out.push_back({topic, "JSON array", "[1, 2, 3]", kJson});
  out.push_back({topic, "JSON null", "null", kJson});
  out.push_back({topic, "empty payload", "", kJson});
  out.push_back({topic, "invalid UTF-8 in JSON", "{\"reason\": \"\xff\xfe\xfd\"}", kJson});
  out.push_back({topic, "unknown field", R"({"noSuchField": 1})", kJson});
  out.push_back(
      {topic, "protobuf garbage", std::string("\xff\xff\xff\xff\x0f\x01\x02garbage", 15), kProto});
  out.push_back({topic, "truncated protobuf", std::string("\x0a\x40\x0a\x05", 4), kProto});
  out.push_back({topic, "unknown content type", R"({"a": 1})", "text/csv"});
  // Over the 1 MiB decode limit, but compressible so the broker takes it (lz4).
  out.push_back({topic, "oversized (1.1 MiB)",
                 absl::StrCat(R"({"reason": ")", std::string(1100000, 'A'), R"("})"), kJson});
}

std::vector<BadMessage> Corpus() {
  std::vector<BadMessage> out;
  for (const auto& [topic, services] : Consumers()) AddUndecodable(topic, out);
  // leads.inbound: the submission decoder's and validator's seeds that must be rejected.
  for (const char* f : {"malformed.json", "wrong_type.json", "invalid_utf8.json",
                        "unknown_enum.json", "no_contact.json", "injection.json", "huge_name.json",
                        "protobuf_garbage.bin", "protobuf_truncated.bin"}) {
    out.push_back(FromFuzzSeed("leads.inbound", "lead_submission", f));
  }
  out.push_back({"leads.inbound", "huge company (100 kB)",
                 absl::StrCat(R"({"source":"web_form","email":"big@x.example","company":")",
                              std::string(100000, 'c'), R"("})"),
                 kJson});
  out.push_back({"leads.inbound", "redis-protocol injection in e-mail",
                 R"({"source":"web_form","email":"a@b.example\r\nFLUSHALL\r\n"})", kJson});
  out.push_back({"leads.inbound", "wrong type: interests as a number",
                 R"({"source":"web_form","email":"t@x.example","interests":7})", kJson});
  // activities.inbound: the Segment decoder's seeds that must be rejected.
  for (const char* f :
       {"bad_type.json", "no_ids.json", "protobuf_garbage.bin", "repeated_key_in_context.json",
        "trailing_nul_bytes.json", "empty_field_name.json"}) {
    out.push_back(FromFuzzSeed("activities.inbound", "segment_activity", f));
  }
  // protobuf's JSON mapping took 12.9 s to refuse 20,000 levels of this and grows faster than
  // the square of the depth: 400,000 levels would have held tracking's partition for hours.
  out.push_back({"activities.inbound", "nested 400,000 levels deep (800 kB)",
                 absl::StrCat(R"({"type":"track","event":"x","messageId":"m-deep","userId":"u",)",
                              R"("properties":{"a":)", std::string(400000, '['),
                              std::string(400000, ']'), "}}"),
                 kJson});
  out.push_back({"activities.inbound", "unknown type",
                 R"({"type":"teleport","messageId":"m-tele","userId":"u-1"})", kJson});
  out.push_back({"activities.inbound", "wrong type: timestamp as a number",
                 R"({"type":"track","event":"x","messageId":"m-ts","userId":"u","timestamp":5})",
                 kJson});
  out.push_back({"activities.inbound", "track without event",
                 R"({"type":"track","messageId":"m-noevent","userId":"u-2"})", kJson});
  // leads.outcomes and leads.erasure: decodable but invalid for every consumer.
  out.push_back({"leads.outcomes", "outcome without lead id",
                 R"({"envelope":{"eventId":"e-1"},"kind":"KIND_WON"})", kJson});
  out.push_back({"leads.outcomes", "unknown kind",
                 R"({"envelope":{"eventId":"e-2","leadId":"l-1"},"kind":"KIND_TELEPORTED"})",
                 kJson});
  out.push_back({"leads.outcomes", "kind of the wrong type",
                 R"({"envelope":{"eventId":"e-3","leadId":"l-1"},"kind":{"a":1}})", kJson});
  out.push_back({"leads.erasure", "erasure without lead id",
                 R"({"envelope":{"eventId":"e-4"},"reason":"gdpr-1"})", kJson});
  out.push_back({"leads.erasure", "erasure with lead id of the wrong type",
                 R"({"envelope":{"eventId":"e-5","leadId":["x"]},"reason":"gdpr-2"})", kJson});
  return out;
}

class BadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::TestEnv::Available()) GTEST_SKIP() << "LEADFLOW_TEST_ENV not set";
    absl::StatusOr<std::unique_ptr<PipelineStack>> stack =
        PipelineStack::StartInTestEnv("bad", {{"scoring.yaml", kScoringRules},
                                              {"routing.yaml", kRoutingRules},
                                              {"nurture.yaml", kNurtureTracks}});
    ASSERT_TRUE(stack.ok()) << stack.status();
    stack_ = *std::move(stack);
    props_ = testing::KafkaProps(stack_->bootstrap());
    // The client would refuse the oversized message before the broker sees it (librdkafka
    // checks the uncompressed size); compressed, the broker takes it.
    testing::KafkaProperties props = props_;
    props["message.max.bytes"] = "4000000";
    absl::StatusOr<std::unique_ptr<kafka::Producer>> producer = testing::MakeProducer(props);
    ASSERT_TRUE(producer.ok()) << producer.status();
    producer_ = *std::move(producer);
  }

  std::shared_ptr<grpc::Channel> Channel(const std::string& service) {
    return grpc::CreateChannel(stack_->GrpcAddress(service), grpc::InsecureChannelCredentials());
  }

  void ExpectAllRunning(const std::string& after) {
    for (const std::string& service : ServiceNames()) {
      EXPECT_TRUE(stack_->Running(service))
          << service << " died after " << after << "; see " << stack_->LogFile(service);
    }
  }

  testing::KafkaProperties props_;
  std::unique_ptr<PipelineStack> stack_;
  std::unique_ptr<kafka::Producer> producer_;
};

TEST_F(BadInputTest, EveryBadMessageOnEveryTopicEndsInItsDlqWithAReasonAndValidLeadsFlow) {
  std::map<std::string, std::unique_ptr<testing::TopicReader>> dlqs;
  for (const auto& [topic, services] : Consumers()) {
    absl::StatusOr<std::unique_ptr<testing::TopicReader>> r =
        testing::TopicReader::Start(props_, {stack_->Topic(topic + ".dlq")});
    ASSERT_TRUE(r.ok()) << r.status();
    dlqs[topic] = *std::move(r);
  }
  absl::StatusOr<std::unique_ptr<testing::TopicReader>> routed =
      testing::TopicReader::Start(props_, {stack_->Topic("leads.routed")});
  ASSERT_TRUE(routed.ok()) << routed.status();

  // Bad messages interleaved with valid leads (executives: sales-ready on fit, so routed), some
  // of them with injection-looking names, which are data and must flow like any other.
  const std::vector<BadMessage> corpus = Corpus();
  std::set<std::string> valid_requests;
  size_t expected_dlq = 0;
  for (size_t i = 0; i < corpus.size(); ++i) {
    const BadMessage& bad = corpus[i];
    kafka::OutboundMessage m{stack_->Topic(bad.topic), absl::StrCat("bad-", i), bad.value, {}};
    if (!bad.content_type.empty()) {
      m.headers.push_back({std::string(kafka::kContentTypeHeader), bad.content_type});
    }
    ASSERT_TRUE(testing::ProduceAndWait(*producer_, std::move(m)).ok()) << bad.what;
    expected_dlq += Consumers().at(bad.topic).size();
    if (i % 2 == 0) {
      LeadSubmission s = Lead(absl::StrCat("valid-", i), "CEO", i % 4 ? "GB" : "US");
      if (i % 8 == 0) s.set_first_name("Robert'); DROP TABLE leads;-- <script>x</script>");
      if (i % 8 == 4) s.set_last_name("{\"$where\": \"1==1\"} \\r\\nFLUSHALL");
      valid_requests.insert(s.request_id());
      ASSERT_TRUE(testing::ProduceAndWait(*producer_, JsonOn(stack_->Topic("leads.inbound"),
                                                             s.email(), events::ToJson(s)))
                      .ok());
    }
  }

  // Every bad message in its topic's DLQ, once per consuming service, with a reason.
  std::map<std::pair<std::string, std::string>, std::string> dead;  // (key, service) → reason
  auto collect = [&] {
    dead.clear();
    size_t n = 0;
    for (const auto& [topic, reader] : dlqs) {
      for (const kafka::ConsumedMessage& d : reader->Messages()) {
        dead[{d.key, std::string(d.HeaderValue(kafka::kDlqServiceHeader).value_or(""))}] =
            std::string(d.HeaderValue(kafka::kDlqErrorMessageHeader).value_or(""));
        ++n;
      }
    }
    return n;
  };
  testing::WaitFor([&] { return collect() >= expected_dlq; }, absl::Seconds(120));
  collect();
  for (size_t i = 0; i < corpus.size(); ++i) {
    for (const std::string& service : Consumers().at(corpus[i].topic)) {
      auto it = dead.find({absl::StrCat("bad-", i), service});
      if (it == dead.end()) {
        ADD_FAILURE() << corpus[i].topic << " / " << corpus[i].what << ": not in the DLQ by "
                      << service;
      } else {
        EXPECT_FALSE(it->second.empty()) << corpus[i].what << " by " << service << ": no reason";
      }
    }
  }
  for (const auto& [topic, reader] : dlqs) {
    for (const kafka::ConsumedMessage& d : reader->Messages()) {
      EXPECT_EQ(d.HeaderValue(kafka::kDlqTopicHeader).value_or(""), stack_->Topic(topic));
      EXPECT_EQ(d.HeaderValue(kafka::kDlqErrorClassHeader).value_or(""), "INVALID_ARGUMENT")
          << d.key << ": " << d.HeaderValue(kafka::kDlqErrorMessageHeader).value_or("");
    }
  }
  ExpectAllRunning("the Kafka corpus");

  // Valid traffic unaffected: every valid lead captured and routed.
  std::set<std::string> routed_requests;
  const bool all_routed = testing::WaitFor(
      [&] {
        for (const kafka::ConsumedMessage& m : (*routed)->Messages()) {
          events::v1::LeadRouted r;
          if (events::Decode(m, &r).ok()) routed_requests.insert(r.envelope().lead_id());
        }
        return routed_requests.size() >= valid_requests.size();
      },
      absl::Seconds(120));
  EXPECT_TRUE(all_routed) << routed_requests.size() << " of " << valid_requests.size()
                          << " valid leads routed";
}

// The gRPC answer must be INVALID_ARGUMENT with a reason.
void ExpectRejected(const grpc::Status& s, const std::string& what) {
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << what << ": " << s.error_code() << " " << s.error_message();
  EXPECT_FALSE(s.error_message().empty()) << what << ": no reason";
}

std::unique_ptr<grpc::ClientContext> Context() {
  auto c = std::make_unique<grpc::ClientContext>();
  c->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  return c;
}

TEST_F(BadInputTest, EveryBadGrpcRequestIsInvalidArgumentWithAReasonAndTheServicesKeepServing) {
  auto capture = capture::v1::Capture::NewStub(Channel("capture"));
  auto tracking = tracking::v1::Tracking::NewStub(Channel("tracking"));
  auto routing = routing::v1::Routing::NewStub(Channel("routing"));
  auto nurturing = nurturing::v1::Nurturing::NewStub(Channel("nurturing"));

  // Capture: SubmitLead with each invalid submission; SubmitLeads rejects them item by item.
  std::vector<std::pair<std::string, LeadSubmission>> bad_leads;
  auto add = [&](const std::string& what, auto mutate) {
    LeadSubmission s = Lead(absl::StrCat("grpc-bad-", bad_leads.size()), "CEO", "GB");
    mutate(s);
    bad_leads.emplace_back(what, s);
  };
  add("no contact", [](LeadSubmission& s) { s.clear_email(); });
  add("invalid e-mail", [](LeadSubmission& s) { s.set_email("not-an-email"); });
  add("SQL in e-mail", [](LeadSubmission& s) { s.set_email("x@y.com'; DROP TABLE leads;--"); });
  add("huge first name", [](LeadSubmission& s) { s.set_first_name(std::string(20000, 'a')); });
  add("huge company", [](LeadSubmission& s) { s.set_company(std::string(100000, 'c')); });
  add("unknown consent channel", [](LeadSubmission& s) {
    s.mutable_consents(0)->set_channel(static_cast<events::v1::Channel>(97));
  });
  add("no source", [](LeadSubmission& s) { s.clear_source(); });
  for (const auto& [what, s] : bad_leads) {
    capture::v1::SubmitLeadRequest request;
    *request.mutable_submission() = s;
    capture::v1::SubmitLeadResponse response;
    ExpectRejected(capture->SubmitLead(Context().get(), request, &response), "SubmitLead " + what);
  }
  {
    auto context = Context();
    capture::v1::SubmitLeadsResponse response;
    auto writer = capture->SubmitLeads(context.get(), &response);
    for (const auto& [what, s] : bad_leads) {
      capture::v1::SubmitLeadRequest request;
      *request.mutable_submission() = s;
      ASSERT_TRUE(writer->Write(request));
    }
    capture::v1::SubmitLeadRequest good;
    *good.mutable_submission() = Lead("grpc-good-stream", "CEO", "GB");
    ASSERT_TRUE(writer->Write(good));
    writer->WritesDone();
    ASSERT_TRUE(writer->Finish().ok());
    ASSERT_EQ(response.results_size(), static_cast<int>(bad_leads.size()) + 1);
    for (size_t i = 0; i < bad_leads.size(); ++i) {
      const capture::v1::ItemResult& r = response.results(static_cast<int>(i));
      EXPECT_TRUE(r.has_error()) << "SubmitLeads " << bad_leads[i].first;
      EXPECT_EQ(r.error().code(), grpc::StatusCode::INVALID_ARGUMENT) << bad_leads[i].first;
      EXPECT_FALSE(r.error().message().empty()) << bad_leads[i].first;
    }
    EXPECT_TRUE(response.results(static_cast<int>(bad_leads.size())).has_ok());
    EXPECT_EQ(response.rejected(), static_cast<int64_t>(bad_leads.size()));
  }

  // Tracking: Track rejects each bad activity with a reason, and accepts the good one beside it.
  {
    tracking::v1::TrackRequest request;
    auto* no_ids = request.add_activities();
    no_ids->set_type("track");
    no_ids->set_event("x");
    auto* bad_type = request.add_activities();
    bad_type->set_type("teleport");
    bad_type->set_message_id("m-grpc-teleport");
    bad_type->set_user_id("u-1");
    auto* no_event = request.add_activities();
    no_event->set_type("track");
    no_event->set_message_id("m-grpc-noevent");
    no_event->set_user_id("u-1");
    auto* good = request.add_activities();
    good->set_type("page");
    good->set_name("Home");
    good->set_message_id("m-grpc-good");
    good->set_user_id("u-1");
    tracking::v1::TrackResponse response;
    ASSERT_TRUE(tracking->Track(Context().get(), request, &response).ok());
    ASSERT_EQ(response.results_size(), 4);
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(response.results(i).status(), "rejected") << "activity " << i;
      EXPECT_FALSE(response.results(i).error().empty()) << "activity " << i;
    }
    EXPECT_NE(response.results(3).status(), "rejected") << response.results(3).error();
  }

  // Routing: outcomes and availability.
  auto outcome = [](const std::string& lead, events::v1::LeadOutcome::Kind kind) {
    routing::v1::OutcomeRequest r;
    r.set_lead_id(lead);
    r.set_rep_id("alice");
    r.set_kind(kind);
    r.set_request_id(absl::StrCat("req-", lead, "-", kind));
    return r;
  };
  routing::v1::OutcomeResponse outcome_response;
  ExpectRejected(
      routing->RecordOutcome(Context().get(), outcome("", events::v1::LeadOutcome::KIND_WON),
                             &outcome_response),
      "RecordOutcome without lead id");
  ExpectRejected(routing->RecordOutcome(Context().get(),
                                        outcome("l-1", events::v1::LeadOutcome::KIND_UNSPECIFIED),
                                        &outcome_response),
                 "RecordOutcome without kind");
  ExpectRejected(
      routing->RecordOutcome(Context().get(),
                             outcome("l-1", static_cast<events::v1::LeadOutcome::Kind>(99)),
                             &outcome_response),
      "RecordOutcome of an unknown kind");
  ExpectRejected(
      routing->RecordOutcome(Context().get(), outcome("l-1", events::v1::LeadOutcome::KIND_LOST),
                             &outcome_response),
      "RecordOutcome lost without reason");
  ExpectRejected(
      routing->Accept(Context().get(), outcome("", events::v1::LeadOutcome::KIND_ACCEPTED),
                      &outcome_response),
      "Accept without lead id");
  ExpectRejected(
      routing->Reject(Context().get(), outcome("l-1", events::v1::LeadOutcome::KIND_REJECTED),
                      &outcome_response),
      "Reject without reason");
  routing::v1::SetAvailabilityRequest availability;
  routing::v1::SetAvailabilityResponse availability_response;
  availability.set_availability(routing::v1::AVAILABILITY_AWAY);
  availability.set_request_id("avail-1");
  ExpectRejected(routing->SetAvailability(Context().get(), availability, &availability_response),
                 "SetAvailability without rep");
  availability.set_rep_id("no-such-rep-\r\nFLUSHALL");
  {
    // A well-formed request naming nobody: NOT_FOUND, with a reason.
    const grpc::Status s =
        routing->SetAvailability(Context().get(), availability, &availability_response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
    EXPECT_FALSE(s.error_message().empty());
  }
  availability.set_rep_id("alice");
  availability.set_availability(static_cast<routing::v1::Availability>(42));
  ExpectRejected(routing->SetAvailability(Context().get(), availability, &availability_response),
                 "SetAvailability to an unknown value");

  // Nurturing: commands without a lead or with an unknown channel.
  nurturing::v1::LeadRequest no_lead;
  no_lead.set_request_id("n-1");
  nurturing::v1::Enrollment enrollment;
  ExpectRejected(nurturing->Pause(Context().get(), no_lead, &enrollment), "Pause without lead");
  ExpectRejected(nurturing->Resume(Context().get(), no_lead, &enrollment), "Resume without lead");
  nurturing::v1::UnsubscribeRequest unsubscribe;
  unsubscribe.set_request_id("n-2");
  ExpectRejected(nurturing->Unsubscribe(Context().get(), unsubscribe, &enrollment),
                 "Unsubscribe without lead");
  unsubscribe.set_lead_id("l-1");
  unsubscribe.set_channel(static_cast<events::v1::Channel>(77));
  ExpectRejected(nurturing->Unsubscribe(Context().get(), unsubscribe, &enrollment),
                 "Unsubscribe from an unknown channel");

  ExpectAllRunning("the gRPC corpus");
  // And still serving: a valid lead is accepted.
  capture::v1::SubmitLeadRequest request;
  *request.mutable_submission() = Lead("grpc-good-after", "CEO", "GB");
  capture::v1::SubmitLeadResponse response;
  EXPECT_TRUE(capture->SubmitLead(Context().get(), request, &response).ok());
  EXPECT_FALSE(response.lead_id().empty());
}

}  // namespace
}  // namespace leadflow::e2e
