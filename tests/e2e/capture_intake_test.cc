// End-to-end tests of capture's three intakes — gRPC, `leads.inbound` and `leadctl import` —
// against the capture binary, a real redis-server and the real broker of scripts/test.sh
// (LEADFLOW_TEST_ENV); skipped without it.

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/events/codec.h"
#include "common/kafka/consumer_loop.h"
#include "common/testing/kafka_test_client.h"
#include "common/testing/subprocess.h"
#include "common/testing/test_env.h"
#include "common/testing/wait.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "leadflow/capture/v1/capture.grpc.pb.h"
#include "leadflow/events/v1/lead.pb.h"
#include "tests/e2e/pipeline_stack.h"

namespace leadflow::e2e {
namespace {

using events::v1::LeadCaptured;
using ::testing::HasSubstr;

class CaptureIntakeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::TestEnv::Available()) GTEST_SKIP() << "LEADFLOW_TEST_ENV not set";
    absl::StatusOr<std::unique_ptr<PipelineStack>> stack =
        PipelineStack::StartInTestEnv("intake", {}, {"capture"});
    ASSERT_TRUE(stack.ok()) << stack.status();
    stack_ = *std::move(stack);
    props_ = testing::KafkaProps(stack_->bootstrap());
    dir_ = std::filesystem::temp_directory_path() / ("leadflow-" + stack_->prefix() + "import");
    std::filesystem::create_directories(dir_);
  }

  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  // Runs `leadctl import` against the stack's capture; its exit code and everything it printed.
  std::pair<int, std::string> Import(const std::string& csv, const std::string& mapping) {
    const std::string log = (dir_ / "leadctl.log").string();
    std::filesystem::remove(log);
    absl::StatusOr<std::unique_ptr<testing::Subprocess>> leadctl = testing::Subprocess::Start(
        absl::StrCat(LEADFLOW_BINARY_DIR, "/tools/leadctl/leadctl"),
        {"import", csv, "--mapping", mapping, "--target", stack_->GrpcAddress("capture")}, {}, log);
    EXPECT_TRUE(leadctl.ok()) << leadctl.status();
    if (!leadctl.ok()) return {-1, ""};
    std::optional<int> code = (*leadctl)->Wait(absl::Minutes(5));
    std::ifstream in(log);
    std::stringstream out;
    out << in.rdbuf();
    return {code.value_or(-1), out.str()};
  }

  int64_t CapturedCount() {
    absl::StatusOr<std::map<int32_t, int64_t>> ends =
        testing::EndOffsets(props_, stack_->Topic("leads.captured"), 3);
    EXPECT_TRUE(ends.ok()) << ends.status();
    int64_t total = 0;
    if (ends.ok()) {
      for (const auto& [partition, end] : *ends) total += end;
    }
    return total;
  }

  std::string WriteFile(const std::string& name, const std::string& content) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << content;
    return path;
  }

  testing::KafkaProperties props_;
  std::unique_ptr<PipelineStack> stack_;
  std::filesystem::path dir_;
};

constexpr char kMapping[] = R"yaml(
columns:
  Email Address: email
  Phone: phone
  First Name: first_name
  Last Name: last_name
  Company: company
  Country: country
  Email opt-in: consent.email
values:
  country: {"Select": ""}
defaults:
  source: event
)yaml";

TEST_F(CaptureIntakeTest, SamePersonThroughGrpcKafkaAndCsvIsOneLead) {
  absl::StatusOr<std::unique_ptr<testing::TopicReader>> captured =
      testing::TopicReader::Start(props_, {stack_->Topic("leads.captured")});
  ASSERT_TRUE(captured.ok()) << captured.status();

  // 1. gRPC, as a web form would send it.
  auto redirect = capture::v1::Capture::NewStub(
      grpc::CreateChannel(stack_->GrpcAddress("capture"), grpc::InsecureChannelCredentials()));
  capture::v1::SubmitLeadRequest request;
  events::v1::LeadSubmission* s = request.mutable_submission();
  s->set_request_id("web-1");
  s->set_source("web_form");
  s->set_email("Jane.Doe@Acme-Widgets.com");
  s->set_first_name("jane");
  s->set_last_name("doe");
  s->set_company("Acme Widgets Ltd");
  s->set_country("United Kingdom");
  capture::v1::SubmitLeadResponse response;
  grpc::ClientContext context;
  ASSERT_TRUE(redirect->SubmitLead(&context, request, &response).ok());
  ASSERT_TRUE(response.created());
  const std::string lead_id = response.lead_id();

  // 2. JSON on leads.inbound from an ad platform: other casing, a phone in national format.
  absl::StatusOr<std::unique_ptr<kafka::Producer>> producer = testing::MakeProducer(props_);
  ASSERT_TRUE(producer.ok()) << producer.status();
  kafka::OutboundMessage m{
      stack_->Topic("leads.inbound"),
      "jane",
      R"({"requestId":"ads-7","source":"ads","email":"  jane.doe@ACME-WIDGETS.COM ",)"
      R"("phone":"020 7946 0958","firstName":"JANE","company":"ACME WIDGETS"})",
      {}};
  m.headers.push_back(
      {std::string(kafka::kContentTypeHeader), std::string(kafka::kContentTypeJson)});
  ASSERT_TRUE(testing::ProduceAndWait(**producer, std::move(m)).ok());

  // 3. A trade-show list through leadctl import: the phone in international format, no e-mail.
  const std::string csv =
      WriteFile("show.csv",
                "Email Address,Phone,First Name,Last Name,Company,Country,Email opt-in\n"
                ",+44 (20) 7946-0958,Jane,Doe,\"Acme Widgets, Inc.\",Select,yes\n");
  const std::string mapping = WriteFile("mapping.yaml", kMapping);
  auto [code, output] = Import(csv, mapping);
  ASSERT_EQ(code, 0) << output;
  EXPECT_THAT(output, HasSubstr("created    0\n  merged     1\n  duplicates 0"));

  ASSERT_TRUE((*captured)->WaitForCount(3, absl::Seconds(30)));
  std::vector<LeadCaptured> events;
  for (const kafka::ConsumedMessage& msg : (*captured)->Messages()) {
    LeadCaptured e;
    ASSERT_TRUE(events::Decode(msg, &e).ok());
    events.push_back(e);
  }
  ASSERT_EQ(events.size(), 3u);
  std::set<std::string> sources;
  for (const LeadCaptured& e : events) {
    EXPECT_EQ(e.lead().lead_id(), lead_id);
  }
  const events::v1::LeadProfile& last = events.back().lead();
  EXPECT_EQ(last.email(), "jane.doe@acme-widgets.com");
  EXPECT_EQ(last.phone(), "+442079460958");
  EXPECT_EQ(last.country(), "GB");

  capture::v1::FindLeadRequest find;
  find.set_phone("+44 20 7946 0958");
  capture::v1::GetLeadResponse found;
  grpc::ClientContext find_context;
  ASSERT_TRUE(redirect->FindLead(&find_context, find, &found).ok());
  EXPECT_EQ(found.lead().lead_id(), lead_id);
}

TEST_F(CaptureIntakeTest, ImportOfTenThousandRowsShowsProgressAndACorrectSummary) {
  // 10,000 distinct people, then 1 % of rows with an invalid e-mail and 0.5 % exact repeats.
  std::ostringstream csv;
  csv << "Email Address,Phone,First Name,Last Name,Company,Country,Email opt-in\n";
  for (int i = 0; i < 9850; ++i) {
    csv << "Person" << i << "@Company" << i << ".example.com,,Pat,Person" << i << ",Company" << i
        << " GmbH,Germany," << (i % 2 == 0 ? "yes" : "no") << "\n";
  }
  for (int i = 0; i < 100; ++i) csv << "not-an-email-" << i << ",,Bad,Row,,Germany,no\n";
  for (int i = 0; i < 50; ++i) {
    csv << "Person" << i << "@Company" << i << ".example.com,,Pat,Person" << i << ",Company" << i
        << " GmbH,Germany," << (i % 2 == 0 ? "yes" : "no") << "\n";
  }
  const std::string path = WriteFile("big.csv", csv.str());
  const std::string mapping = WriteFile("mapping.yaml", kMapping);

  auto [code, output] = Import(path, mapping);
  ASSERT_EQ(code, 0) << output;
  // Progress (not a terminal: one line per 10 %) and the summary.
  EXPECT_THAT(output, HasSubstr("%  "));
  EXPECT_THAT(output, HasSubstr("100%  10000 rows"));
  EXPECT_THAT(output, HasSubstr(absl::StrCat("imported ", path, ": 10000 rows")));
  EXPECT_THAT(output, HasSubstr("created    9850\n  merged     0\n"
                                "  duplicates 50 (imported before)\n"
                                "  rejected   100, reasons in "));
  // Exactly one captured event per created lead; the repeats emitted nothing.
  EXPECT_EQ(CapturedCount(), 9850);

  std::ifstream rejects(dir_ / "big.rejects.csv");
  std::string header, first;
  std::getline(rejects, header);
  std::getline(rejects, first);
  EXPECT_EQ(header,
            "row,reason,Email Address,Phone,First Name,Last Name,Company,Country,"
            "Email opt-in");
  EXPECT_THAT(first, HasSubstr("email"));
  EXPECT_THAT(first, HasSubstr("not-an-email-"));

  // Running the same file again changes nothing.
  auto [code2, output2] = Import(path, mapping);
  ASSERT_EQ(code2, 0) << output2;
  EXPECT_THAT(output2, HasSubstr("created    0\n  merged     0\n"
                                 "  duplicates 9900 (imported before)\n"));
  EXPECT_EQ(CapturedCount(), 9850);
}

// A bad message of kind `k` (one of 8) at position `i`, and what makes it bad.
kafka::OutboundMessage Garbage(const std::string& topic, int i, int k) {
  const std::string n = absl::StrCat(i);
  std::string value;
  bool json = true;
  switch (k) {
    case 0:  // malformed JSON
      value = absl::StrCat(R"({"source":"web_form","email":"g)", n, R"(@x.example",)");
      break;
    case 1:  // wrong type
      value = R"({"source":"web_form","email":42})";
      break;
    case 2:  // neither e-mail nor phone
      value = R"({"source":"web_form","firstName":"Nobody"})";
      break;
    case 3:  // invalid e-mail
      value = absl::StrCat(R"({"source":"web_form","email":"not-an-email-)", n, R"("})");
      break;
    case 4:  // invalid UTF-8
      value = absl::StrCat(R"({"source":"web_form","email":"u)", n, R"(@x.example","firstName":")",
                           "\xff\xfe", R"("})");
      break;
    case 5:  // unknown source
      value = absl::StrCat(R"({"source":"carrier_pigeon","email":"s)", n, R"(@x.example"})");
      break;
    case 6:  // protobuf garbage
      value = std::string("\xff\xff\xff\xff\x0f\x01\x02garbage", 15);
      json = false;
      break;
    default:  // oversized field
      value = absl::StrCat(R"({"source":"web_form","email":"o)", n, R"(@x.example","firstName":")",
                           std::string(100 * 1024, 'a'), R"("})");
      break;
  }
  kafka::OutboundMessage m{topic, absl::StrCat("garbage-", n), std::move(value), {}};
  m.headers.push_back({std::string(kafka::kContentTypeHeader),
                       std::string(json ? kafka::kContentTypeJson : kafka::kContentTypeProtobuf)});
  return m;
}

int64_t Sum(const std::map<int32_t, int64_t>& offsets) {
  int64_t total = 0;
  for (const auto& [partition, offset] : offsets) total += std::max<int64_t>(0, offset);
  return total;
}

TEST_F(CaptureIntakeTest, OnePercentGarbageInAHundredThousandEndsInTheDlqAndEveryValidLeadOnce) {
  constexpr int kMessages = 100000;
  const std::string inbound = stack_->Topic("leads.inbound");
  std::vector<kafka::OutboundMessage> messages;
  messages.reserve(kMessages);
  int valid = 0;
  for (int i = 0; i < kMessages; ++i) {
    if (i % 100 == 50) {
      messages.push_back(Garbage(inbound, i, (i / 100) % 8));
      continue;
    }
    ++valid;
    events::v1::LeadSubmission s;
    s.set_source("ads");
    s.set_email(absl::StrCat("Person.", i, "@Domain", i, ".example.net"));
    s.set_first_name("pat");
    s.set_last_name(absl::StrCat("person", i));
    s.set_company(absl::StrCat("Company ", i, " Ltd"));
    // Half JSON, half protobuf: both encodings of the same message are accepted.
    kafka::OutboundMessage m = i % 2 == 0
                                   ? events::Encode(inbound, s.email(), s, events::Encoding::kJson)
                                   : events::Encode(inbound, s.email(), s);
    messages.push_back(std::move(m));
  }
  absl::StatusOr<std::unique_ptr<kafka::Producer>> producer = testing::MakeProducer(props_);
  ASSERT_TRUE(producer.ok()) << producer.status();
  const absl::Time start = absl::Now();
  ASSERT_TRUE(testing::ProduceAll(**producer, std::move(messages), absl::Minutes(3)).ok());
  const absl::Duration produced_in = absl::Now() - start;

  // Consumed to the end: capture's group has committed every inbound offset.
  absl::StatusOr<std::map<int32_t, int64_t>> ends = testing::EndOffsets(props_, inbound, 3);
  ASSERT_TRUE(ends.ok()) << ends.status();
  const std::string group = absl::StrCat(stack_->prefix(), "leadflow-capture");
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        absl::StatusOr<std::map<int32_t, int64_t>> committed =
            testing::CommittedOffsets(props_, group, inbound, 3);
        return committed.ok() && *committed == *ends;
      },
      absl::Minutes(8)))
      << "capture did not consume leads.inbound to the end; see " << stack_->LogFile("capture");
  // The figure docs/BENCHMARKS.md quotes (not asserted: a test is no benchmark).
  const absl::Duration consumed_in = absl::Now() - start;
  std::printf(
      "leads.inbound: %d messages produced in %.1f s, consumed and committed %.1f s after "
      "the first was sent: %.0f messages/s\n",
      kMessages, absl::ToDoubleSeconds(produced_in), absl::ToDoubleSeconds(consumed_in),
      kMessages / absl::ToDoubleSeconds(consumed_in));

  // Every valid lead exactly once; every bad message in the DLQ.
  absl::StatusOr<std::map<int32_t, int64_t>> captured =
      testing::EndOffsets(props_, stack_->Topic("leads.captured"), 3);
  ASSERT_TRUE(captured.ok());
  EXPECT_EQ(Sum(*captured), valid);
  absl::StatusOr<std::unique_ptr<testing::TopicReader>> dlq =
      testing::TopicReader::Start(props_, {stack_->Topic("leads.inbound.dlq")});
  ASSERT_TRUE(dlq.ok()) << dlq.status();
  ASSERT_TRUE((*dlq)->WaitForCount(kMessages - valid, absl::Seconds(60)));
  std::map<std::string, int> classes;
  for (const kafka::ConsumedMessage& m : (*dlq)->Messages()) {
    ASSERT_TRUE(absl::StartsWith(m.key, "garbage-")) << m.key;
    std::optional<std::string_view> reason = m.HeaderValue(kafka::kDlqErrorMessageHeader);
    ASSERT_TRUE(reason.has_value() && !reason->empty()) << m.key;
    EXPECT_EQ(m.HeaderValue(kafka::kDlqTopicHeader).value_or(""), inbound);
    ++classes[std::string(m.HeaderValue(kafka::kDlqErrorClassHeader).value_or(""))];
  }
  EXPECT_EQ((*dlq)->Count(), static_cast<size_t>(kMessages - valid));
  EXPECT_EQ(classes["INVALID_ARGUMENT"], kMessages - valid) << ::testing::PrintToString(classes);
}

}  // namespace
}  // namespace leadflow::e2e
