#include "common/events/codec.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "leadflow/events/v1/activity.pb.h"
#include "leadflow/events/v1/envelope.pb.h"
#include "leadflow/events/v1/lead.pb.h"

namespace leadflow::events {
namespace {

using ::leadflow::events::v1::Consent;
using ::leadflow::events::v1::Envelope;
using ::leadflow::events::v1::InboundActivity;
using ::testing::HasSubstr;

kafka::ConsumedMessage Message(std::string value, std::vector<kafka::Header> headers = {}) {
  kafka::ConsumedMessage m;
  m.topic = "activities.inbound";
  m.value = std::move(value);
  m.headers = std::move(headers);
  return m;
}

kafka::Header ContentType(std::string value) { return {"content-type", std::move(value)}; }

Envelope SampleEnvelope() {
  Envelope e;
  e.set_event_id("e-1");
  e.set_lead_id("lead-1");
  e.set_schema_version(1);
  return e;
}

struct JsonNamesCase {
  std::string name;
  std::string json;
};

class CodecJsonNamesTest : public ::testing::TestWithParam<JsonNamesCase> {};

TEST_P(CodecJsonNamesTest, JsonFieldNamesDecodeInEitherSpelling) {
  InboundActivity activity;
  ASSERT_TRUE(Decode(Message(GetParam().json, {ContentType("application/json")}), &activity).ok());
  EXPECT_EQ(activity.message_id(), "m-1");
  EXPECT_EQ(activity.user_id(), "u-1");
  EXPECT_EQ(activity.sent_at().seconds(), 1767225600);
}

INSTANTIATE_TEST_SUITE_P(
    Spellings, CodecJsonNamesTest,
    ::testing::Values(
        JsonNamesCase{"LowerCamel",
                      R"({"messageId":"m-1","userId":"u-1","sentAt":"2026-01-01T00:00:00Z"})"},
        JsonNamesCase{"SnakeCase",
                      R"({"message_id":"m-1","user_id":"u-1","sent_at":"2026-01-01T00:00:00Z"})"},
        JsonNamesCase{"Mixed",
                      R"({"messageId":"m-1","user_id":"u-1","sentAt":"2026-01-01T00:00:00Z"})"}),
    [](const ::testing::TestParamInfo<JsonNamesCase>& info) { return info.param.name; });

TEST(CodecTest, JsonEnumsDecodeByName) {
  Consent consent;
  ASSERT_TRUE(Decode(Message(R"({"channel":"CHANNEL_SMS","granted":true})",
                             {ContentType("application/json")}),
                     &consent)
                  .ok());
  EXPECT_EQ(consent.channel(), leadflow::events::v1::CHANNEL_SMS);
  EXPECT_TRUE(consent.granted());
}

TEST(CodecTest, ProtobufWithContentTypeHeaderDecodes) {
  Envelope decoded;
  absl::Status s =
      Decode(Message(SampleEnvelope().SerializeAsString(), {ContentType("application/x-protobuf")}),
             &decoded);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(decoded.lead_id(), "lead-1");
}

TEST(CodecTest, ContentTypeParametersDoNotChangeTheEncoding) {
  Envelope decoded;
  absl::Status s =
      Decode(Message(R"({"leadId":"lead-1"})", {ContentType(" application/json ; charset=utf-8")}),
             &decoded);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(decoded.lead_id(), "lead-1");
}

TEST(CodecTest, WithoutHeaderAPayloadStartingWithABraceIsJson) {
  Envelope decoded;
  absl::Status s = Decode(Message("  \n{\"lead_id\":\"lead-1\"}"), &decoded);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(decoded.lead_id(), "lead-1");
}

TEST(CodecTest, WithoutHeaderAnythingElseIsProtobuf) {
  Envelope decoded;
  absl::Status s = Decode(Message(SampleEnvelope().SerializeAsString()), &decoded);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(decoded.event_id(), "e-1");
}

TEST(CodecTest, TheHeaderWinsOverSniffing) {
  // JSON bytes declared as protobuf are parsed as protobuf, and fail.
  Envelope decoded;
  absl::Status s =
      Decode(Message(R"({"leadId":"lead-1"})", {ContentType("application/x-protobuf")}), &decoded);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("not a valid protobuf leadflow.events.v1.Envelope"));

  // Protobuf bytes declared as JSON are parsed as JSON, and fail.
  s = Decode(Message(SampleEnvelope().SerializeAsString(), {ContentType("application/json")}),
             &decoded);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("invalid JSON Envelope"));
}

struct RejectCase {
  std::string name;
  std::string value;
  std::vector<kafka::Header> headers;
  size_t max_bytes;
  std::string reason;  // substring of the error message
};

class CodecRejectTest : public ::testing::TestWithParam<RejectCase> {};

TEST_P(CodecRejectTest, BadPayloadIsInvalidArgumentWithAReason) {
  const RejectCase& c = GetParam();
  DecodeOptions options;
  options.max_bytes = c.max_bytes;
  Envelope decoded;
  absl::Status s = Decode(Message(c.value, c.headers), &decoded, options);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(s.message(), HasSubstr(c.reason));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, CodecRejectTest,
    ::testing::Values(
        RejectCase{"Empty", "", {}, 1 << 20, "empty payload"},
        RejectCase{
            "EmptyWithHeader", "", {ContentType("application/json")}, 1 << 20, "empty payload"},
        RejectCase{"Oversize",
                   std::string(2049, 'x'),
                   {},
                   2048,
                   "payload of 2049 bytes exceeds the limit of 2048"},
        // Wire type 7 does not exist: no protobuf parser accepts this.
        RejectCase{"GarbageProtobuf",
                   std::string("\x0f\xff\xff\xff", 4),
                   {},
                   1 << 20,
                   "not a valid protobuf"},
        RejectCase{"TruncatedProtobuf",
                   std::string("\x0a\x10"
                               "abc",
                               5),
                   {ContentType("application/x-protobuf")},
                   1 << 20,
                   "not a valid protobuf"},
        RejectCase{"MalformedJson",
                   R"({"leadId": )",
                   {ContentType("application/json")},
                   1 << 20,
                   "invalid JSON"},
        RejectCase{"UnknownJsonField",
                   R"({"leadId":"l","shoeSize":44})",
                   {ContentType("application/json")},
                   1 << 20,
                   "shoeSize"},
        RejectCase{"WrongJsonType",
                   R"({"schemaVersion":"one"})",
                   {ContentType("application/json")},
                   1 << 20,
                   "invalid JSON"},
        RejectCase{"UnknownContentType",
                   R"({"leadId":"l"})",
                   {ContentType("text/csv")},
                   1 << 20,
                   "unsupported content-type 'text/csv'"}),
    [](const ::testing::TestParamInfo<RejectCase>& info) { return info.param.name; });

TEST(CodecTest, UnknownJsonFieldsAreAcceptedWhenAsked) {
  DecodeOptions options;
  options.ignore_unknown_json_fields = true;
  InboundActivity activity;
  absl::Status s =
      Decode(Message(R"({"type":"track","integrations":{"All":true}})"), &activity, options);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(activity.type(), "track");
}

TEST(CodecTest, PayloadExactlyAtTheLimitIsAccepted) {
  const std::string bytes = SampleEnvelope().SerializeAsString();
  DecodeOptions options;
  options.max_bytes = bytes.size();
  Envelope decoded;
  EXPECT_TRUE(Decode(Message(bytes), &decoded, options).ok());
}

TEST(CodecTest, EncodeSetsTheContentTypeAndRoundTrips) {
  for (Encoding encoding : {Encoding::kProtobuf, Encoding::kJson}) {
    kafka::OutboundMessage out = Encode("leads.captured", "lead-1", SampleEnvelope(), encoding);
    EXPECT_EQ(out.topic, "leads.captured");
    EXPECT_EQ(out.key, "lead-1");
    ASSERT_EQ(out.headers.size(), 1u);
    EXPECT_EQ(out.headers[0].key, "content-type");
    EXPECT_EQ(out.headers[0].value,
              encoding == Encoding::kJson ? "application/json" : "application/x-protobuf");
    kafka::ConsumedMessage in = Message(out.value, out.headers);
    Envelope decoded;
    ASSERT_TRUE(Decode(in, &decoded).ok());
    EXPECT_EQ(decoded.SerializeAsString(), SampleEnvelope().SerializeAsString());
  }
}

TEST(CodecTest, ToJsonUsesLowerCamelNames) {
  EXPECT_THAT(ToJson(SampleEnvelope()), HasSubstr(R"("leadId":"lead-1")"));
}

struct EncodingCase {
  std::string name;
  bool ok;
  Encoding encoding;
};

TEST(CodecTest, ParseEncodingAcceptsNamesAndContentTypes) {
  const std::vector<EncodingCase> cases = {
      {"protobuf", true, Encoding::kProtobuf},
      {"PROTOBUF", true, Encoding::kProtobuf},
      {"proto", true, Encoding::kProtobuf},
      {"application/x-protobuf", true, Encoding::kProtobuf},
      {"json", true, Encoding::kJson},
      {"Json", true, Encoding::kJson},
      {"application/json", true, Encoding::kJson},
      {"xml", false, Encoding::kJson},
      {"", false, Encoding::kJson},
  };
  for (const EncodingCase& c : cases) {
    absl::StatusOr<Encoding> e = ParseEncoding(c.name);
    EXPECT_EQ(e.ok(), c.ok) << c.name;
    if (c.ok && e.ok()) {
      EXPECT_EQ(*e, c.encoding) << c.name;
    } else if (!e.ok()) {
      EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(e.status().message(), HasSubstr("unknown encoding"));
    }
  }
}

}  // namespace
}  // namespace leadflow::events
