// Tests of DecodeJsonSubset (common/events/json_subset.h): where it decodes, it gives the message
// protobuf's JSON parser gives; where it declines, DecodeJson's answer is protobuf's.
#include "common/events/json_subset.h"

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/events/codec.h"
#include "gtest/gtest.h"
#include "leadflow/events/v1/activity.pb.h"
#include "leadflow/events/v1/lead.pb.h"

namespace leadflow::events {
namespace {

using events::v1::LeadSubmission;
using google::protobuf::util::MessageDifferencer;

// What protobuf's parser makes of `json`, with DecodeJson's options.
absl::StatusOr<LeadSubmission> ByProtobuf(const std::string& json, bool ignore_unknown = false) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = ignore_unknown;
  options.case_insensitive_enum_parsing = true;
  LeadSubmission out;
  auto status = google::protobuf::util::JsonStringToMessage(json, &out, options);
  if (!status.ok()) return absl::InvalidArgumentError(status.message().ToString());
  return out;
}

void ExpectDecodedAsProtobufDoes(const std::string& json) {
  SCOPED_TRACE(json);
  absl::StatusOr<LeadSubmission> expected = ByProtobuf(json);
  ASSERT_TRUE(expected.ok()) << expected.status();
  LeadSubmission decoded;
  decoded.set_city("left over");  // cleared first
  ASSERT_TRUE(DecodeJsonSubset(json, &decoded)) << "declined";
  EXPECT_TRUE(MessageDifferencer::Equals(decoded, *expected))
      << decoded.DebugString() << "\nvs protobuf's\n"
      << expected->DebugString();
}

TEST(JsonSubsetTest, DecodesTheCommonShapesAsProtobufDoes) {
  for (const std::string& json : {
           std::string(R"({})"),
           std::string(R"({"requestId":"r-1","source":"web_form","email":"Jane@Example.com",
               "firstName":"Jane","lastName":"Doe","companySize":250,"doNotContact":true})"),
           std::string(R"({"request_id":"r-1","first_name":"Jane","company_size":-3,
               "email_verified":false})"),
           std::string(R"({"submittedAt":"2026-01-05T11:00:00Z","companySize":0})"),
           std::string(R"({"submittedAt":"2026-01-05T11:00:00.123456789Z"})"),
           std::string(R"({"submitted_at":"2026-01-05T12:00:00.5+01:00"})"),
           std::string(R"({"consents":[{"channel":"CHANNEL_EMAIL","granted":true,
               "at":"2026-01-05T11:00:00Z","source":"signup form"},{"channel":"CHANNEL_SMS"}]})"),
           std::string(R"({"attribution":{"campaign":"q4","utmSource":"google",
               "utm_medium":"cpc","at":"2025-12-31T23:59:59Z"}})"),
           std::string(R"({"attribution":{},"interests":[],"consents":[]})"),
           std::string(R"({"interests":["shoes","bags","shoes"],"custom":{"crm_owner":"ann",
               "tier":"gold","":"empty key"}})"),
           std::string(R"({"firstName":"Jos\u00e9","lastName":"M\u00fcller \ud83d\ude00",
               "company":"Acme \"Best\" Ltd\n\t\\","city":"São Paulo"})"),
           std::string("  {\"email\" : \"a@b.example\" }\n"),
       }) {
    ExpectDecodedAsProtobufDoes(json);
  }
}

std::string RandomText(std::mt19937_64& rng) {
  static const char* const kParts[] = {"a", "Z", "0",    " ", "-", "\"", "\\", "/", "\n", "é",
                                       "ß", "Ж", "日本", "😀", "'", "{",  "}",  ",", ":",  "\t"};
  std::string s;
  const int n = static_cast<int>(rng() % 8);
  for (int i = 0; i < n; ++i) s += kParts[rng() % (sizeof(kParts) / sizeof(kParts[0]))];
  return s;
}

TEST(JsonSubsetTest, RandomSubmissionsPrintedByProtobufDecodeToThemselves) {
  std::mt19937_64 rng(20261207);
  for (int i = 0; i < 500; ++i) {
    LeadSubmission s;
    if (rng() % 2) s.set_request_id(RandomText(rng));
    if (rng() % 2) s.set_email(RandomText(rng));
    if (rng() % 2) s.set_first_name(RandomText(rng));
    if (rng() % 2) s.set_company(RandomText(rng));
    if (rng() % 2) s.set_company_size(static_cast<int32_t>(rng()));
    if (rng() % 2) s.set_do_not_contact(true);
    for (int k = static_cast<int>(rng() % 3); k > 0; --k) s.add_interests(RandomText(rng));
    for (int k = static_cast<int>(rng() % 3); k > 0; --k) {
      (*s.mutable_custom())[RandomText(rng)] = RandomText(rng);
    }
    for (int k = static_cast<int>(rng() % 3); k > 0; --k) {
      events::v1::Consent* c = s.add_consents();
      c->set_channel(static_cast<events::v1::Channel>(rng() % 4));
      c->set_granted(rng() % 2);
      if (rng() % 2) {
        c->mutable_at()->set_seconds(static_cast<int64_t>(rng() % 4000000000));
        c->mutable_at()->set_nanos(static_cast<int32_t>(rng() % 1000000000));
      }
    }
    if (rng() % 2) s.mutable_attribution()->set_utm_campaign(RandomText(rng));
    for (bool proto_names : {false, true}) {
      google::protobuf::util::JsonPrintOptions options;
      options.preserve_proto_field_names = proto_names;
      std::string json;
      ASSERT_TRUE(google::protobuf::util::MessageToJsonString(s, &json, options).ok());
      SCOPED_TRACE(json);
      LeadSubmission decoded;
      ASSERT_TRUE(DecodeJsonSubset(json, &decoded));
      EXPECT_TRUE(MessageDifferencer::Equals(decoded, s));
      ExpectDecodedAsProtobufDoes(json);
    }
  }
}

TEST(JsonSubsetTest, DeclinesWhatItDoesNotCoverAndDecodeJsonAnswersAsProtobufDoes) {
  for (const std::string& json : {
           std::string(R"({"email":null})"),
           std::string(R"({"interests":["a",null]})"),
           std::string(R"({"email":"a@b.example","email":"c@d.example"})"),
           std::string(R"({"firstName":"Jane","first_name":"Janet"})"),
           std::string(R"({"custom":{"k":"1","k":"2"}})"),
           std::string(R"({"unknownField":1})"),
           std::string(R"({"companySize":"250"})"),
           std::string(R"({"companySize":1e2})"),
           std::string(R"({"companySize":250.0})"),
           std::string(R"({"companySize":3000000000})"),
           std::string(R"({"consents":[{"channel":1}]})"),
           std::string(R"({"consents":[{"channel":"channel_email"}]})"),
           std::string(R"({"consents":[{"channel":"CHANNEL_FAX"}]})"),
           std::string(R"({"submittedAt":{}})"),
           std::string(R"({"submittedAt":"yesterday"})"),
           std::string(R"({"submittedAt":"2026-01-05 11:00:00"})"),
           std::string(R"({"custom":{"k":1}})"),
           std::string(R"({"interests":"shoes"})"),
           std::string(R"({"doNotContact":"true"})"),
           std::string(R"({'email':'a@b.example'})"),
           std::string(R"({"email":"a@b.example",})"),
           std::string(R"([{"email":"a@b.example"}])"),
           std::string("{\"email\":\"\xff\xfe\"}"),
           std::string(R"({"email":"a@b.example"} trailing)"),
           std::string(""),
           std::string("{\"email\":\"a@b.example\"}\0\0", 25),
           std::string("{\"email\":\"a@b.example\"}\0junk", 28),
       }) {
    SCOPED_TRACE(json);
    LeadSubmission subset;
    EXPECT_FALSE(DecodeJsonSubset(json, &subset));
    for (bool ignore_unknown : {false, true}) {
      absl::StatusOr<LeadSubmission> expected = ByProtobuf(json, ignore_unknown);
      LeadSubmission decoded;
      const absl::Status status = DecodeJson(json, &decoded, ignore_unknown);
      ASSERT_EQ(status.ok(), expected.ok()) << status << " / " << expected.status();
      if (status.ok()) {
        EXPECT_TRUE(MessageDifferencer::Equals(decoded, *expected));
      }
    }
  }
}

// Every JSON input of the fuzz corpora (capture's and tracking's, edge cases included), as a
// submission and as an activity: where the subset decodes, protobuf decodes the same.
TEST(JsonSubsetTest, EveryFuzzCorpusInputDecodesAsProtobufDecodesIt) {
  int inputs = 0;
  int decoded = 0;
  for (const char* corpus : {"lead_submission", "segment_activity"}) {
    const std::filesystem::path dir =
        std::filesystem::path(LEADFLOW_SOURCE_DIR) / "tests/fuzz/corpus" / corpus;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      std::ifstream in(entry.path(), std::ios::binary);
      const std::string file((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
      if (file.empty()) continue;
      const std::string json = file.substr(1);  // after the content-type selector byte
      SCOPED_TRACE(entry.path().string());
      ++inputs;
      auto check = [&json, &decoded](auto subset, auto reference) {
        if (!DecodeJsonSubset(json, &subset)) return;
        ++decoded;
        google::protobuf::util::JsonParseOptions options;
        options.case_insensitive_enum_parsing = true;
        ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &reference, options).ok());
        EXPECT_TRUE(MessageDifferencer::Equals(subset, reference));
      };
      check(LeadSubmission(), LeadSubmission());
      check(events::v1::InboundActivity(), events::v1::InboundActivity());
    }
  }
  EXPECT_GE(inputs, 20);
  EXPECT_GE(decoded, 4);  // the subset is exercised, not only declined
  std::printf("corpus inputs: %d, decoded by the subset: %d\n", inputs, decoded);
}

}  // namespace
}  // namespace leadflow::events
