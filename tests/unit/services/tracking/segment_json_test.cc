// DecodeSegmentJson against the proto3 JSON mapping it stands in for (events::DecodeJson, with
// unknown fields ignored as tracking decodes): for every input both give the same message, or
// both refuse it. The inputs are the segment_activity fuzz corpus and the edge cases below.

#include "services/tracking/segment_json.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/events/codec.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace leadflow::tracking {
namespace {

using ::testing::HasSubstr;

// Both decoders on `json`; a failure message saying how they differ, or "" when they agree.
std::string Disagreement(const std::string& json) {
  events::v1::InboundActivity ours;
  events::v1::InboundActivity mapping;
  const absl::Status a = DecodeSegmentJson(json, &ours);
  const absl::Status b = events::DecodeJson(json, &mapping, /*ignore_unknown_fields=*/true);
  if (a.ok() != b.ok()) {
    return absl::StrCat("DecodeSegmentJson: ", a.ToString(), "; the JSON mapping: ", b.ToString());
  }
  if (a.ok() && !google::protobuf::util::MessageDifferencer::Equals(ours, mapping)) {
    return absl::StrCat("decoded differently:\n", ours.DebugString(), "\nvs the mapping's\n",
                        mapping.DebugString());
  }
  return "";
}

// A call whose properties nest `levels` JSON levels below the properties object: objects,
// arrays, or both alternately, around protobuf's message depth limit.
enum class Nesting { kObjects, kArrays, kAlternating };
std::string Nested(Nesting nesting, int levels) {
  std::string json = R"({"type":"track","properties":{"a":)";
  std::string close;  // reversed at the end
  for (int level = 1; level <= levels; ++level) {
    const bool object =
        nesting == Nesting::kObjects || (nesting == Nesting::kAlternating && level % 2 == 0);
    json += object ? R"({"a":)" : "[";
    close += object ? '}' : ']';
  }
  std::reverse(close.begin(), close.end());
  return json + "1" + close + "}}";
}

TEST(SegmentJsonTest, TheSpecificationsExamplesDecodeAsTheJsonMappingDecodesThem) {
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(LEADFLOW_FUZZ_CORPUS)) {
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string input((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (input.empty() || static_cast<unsigned char>(input[0]) % 2 != 0) continue;  // protobuf
    ++files;
    EXPECT_EQ(Disagreement(input.substr(1)), "") << entry.path();  // after the selector byte
  }
  EXPECT_GE(files, 6);
}

// The decoder finds fields through the schema and fills strings, Structs and Timestamps; a
// field of another kind added to InboundActivity would be refused until it learns it.
TEST(SegmentJsonTest, EveryFieldOfTheSchemaIsOfAKindTheDecoderFills) {
  const google::protobuf::Descriptor* call = events::v1::InboundActivity::descriptor();
  for (int i = 0; i < call->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* f = call->field(i);
    EXPECT_FALSE(f->is_repeated()) << f->name();
    EXPECT_TRUE(f->type() == google::protobuf::FieldDescriptor::TYPE_STRING ||
                f->message_type() == google::protobuf::Struct::descriptor() ||
                f->message_type() == google::protobuf::Timestamp::descriptor())
        << f->name();
  }
}

TEST(SegmentJsonTest, AValidCallFillsEveryField) {
  events::v1::InboundActivity call;
  ASSERT_TRUE(DecodeSegmentJson(
                  R"({"type":"page","message_id":"m-1","userId":"u-1","anonymous_id":"a-1",)"
                  R"("event":"e","name":"Pricing","properties":{"url":"https://x.example/p",)"
                  R"("n":3,"ok":true,"tags":["a",null]},"traits":{"email":"p@x.example"},)"
                  R"("context":{"ip":"203.0.113.7"},"timestamp":"2026-01-01T10:00:00.123Z",)"
                  R"("sentAt":"2026-01-01T10:00:01+01:00","received_at":"2026-01-01T09:00:02Z",)"
                  R"("originalTimestamp":"2026-01-01T10:00:00Z","version":2})",
                  &call)
                  .ok());
  EXPECT_EQ(call.type(), "page");
  EXPECT_EQ(call.message_id(), "m-1");
  EXPECT_EQ(call.user_id(), "u-1");
  EXPECT_EQ(call.anonymous_id(), "a-1");
  EXPECT_EQ(call.event(), "e");
  EXPECT_EQ(call.name(), "Pricing");
  EXPECT_EQ(call.properties().fields().at("url").string_value(), "https://x.example/p");
  EXPECT_EQ(call.properties().fields().at("n").number_value(), 3);
  EXPECT_TRUE(call.properties().fields().at("ok").bool_value());
  EXPECT_EQ(call.properties().fields().at("tags").list_value().values_size(), 2);
  EXPECT_EQ(call.traits().fields().at("email").string_value(), "p@x.example");
  EXPECT_EQ(call.context().fields().at("ip").string_value(), "203.0.113.7");
  EXPECT_EQ(call.timestamp().seconds(), 1767261600);
  EXPECT_EQ(call.timestamp().nanos(), 123000000);
  EXPECT_EQ(call.sent_at().seconds(), 1767261601 - 3600);
  EXPECT_EQ(call.received_at().seconds(), 1767258002);
  EXPECT_EQ(call.original_timestamp().seconds(), 1767261600);
}

TEST(SegmentJsonTest, EdgeCasesDecodeOrFailAsTheJsonMappingDoes) {
  std::vector<std::string> inputs = {
      // names, nulls, unknown fields, whitespace
      R"({"type":"track","user_id":"u","messageId":"m"})",
      R"({"type":null,"userId":null,"properties":null,"timestamp":null})",
      R"(  {"type":"identify","traits":{},"context":{"page":{"url":"u"}},"extra":[1,{"x":2}]}  )",
      R"({})",
      // deep nesting inside a field this does not know (skipped, but still JSON)
      std::string(R"({"extra":)") + std::string(90, '[') + std::string(90, ']') + "}",
      std::string(R"({"extra":)") + std::string(98, '[') + std::string(98, ']') + "}",
      std::string(R"({"extra":)") + std::string(99, '[') + std::string(99, ']') + "}",
      std::string(R"({"extra":)") + std::string(100, '[') + std::string(100, ']') + "}",
      std::string(R"({"extra":)") + std::string(101, '[') + std::string(101, ']') + "}",
      std::string(R"({"extra":)") + std::string(150, '[') + std::string(150, ']') + "}",
      std::string(R"({"extra":)") + std::string(5000, '[') + std::string(5000, ']') + "}",
      R"({"properties":{"a":{"x":1}},"properties":{"a":{"y":2}}})",
      R"({"properties":{"a":1,"a":2},"properties":{"b":2}})",
      R"({"properties":{"n":1e400}})",
      R"({"properties":{"n":-1e400}})",
      R"({"extra":1e400})",
      // empty names
      R"({"type":"alias","":"m","userId":"u"})",
      R"({"":{"a":[1]}})",
      R"({"properties":{"":1}})",
      R"({"extra":{"":1}})",
      // a field named twice, or in both spellings, in either order
      R"({"userId":"a","userId":"b"})",
      R"({"userId":"a","user_id":"b"})",
      R"({"user_id":"a","userId":"b"})",
      R"({"properties":{"k":1,"k":2}})",
      R"({"properties":{"a":1},"properties":{"b":2}})",
      R"({"timestamp":"2015-12-12T19:11:01Z","timestamp":"2016-12-12T19:11:01Z"})",
      R"({"properties":{"a":1},"properties":{"a":2}})",
      R"({"context":{"campaign":{"source":"a","source":"b"}}})",
      // values of the wrong type for a known field
      R"({"userId":123})",
      R"({"userId":true})",
      R"({"type":["track"]})",
      R"({"properties":"a string"})",
      R"({"properties":[1,2]})",
      R"({"traits":5})",
      R"({"timestamp":1449947461})",
      // timestamps
      R"({"timestamp":"2015-12-12T19:11:01Z"})",
      R"({"timestamp":"2015-12-12T19:11:01.123456789Z"})",
      R"({"timestamp":"2015-12-12T19:11:01-08:00"})",
      R"({"timestamp":"2015-12-12 19:11:01Z"})",
      R"({"timestamp":"2015-12-12T19:11:01"})",
      R"({"timestamp":"0001-01-01T00:00:00Z"})",
      R"({"timestamp":"9999-12-31T23:59:59.999999999Z"})",
      R"({"timestamp":"10000-01-01T00:00:00Z"})",
      R"({"timestamp":"yesterday"})",
      // numbers inside a Struct
      R"({"properties":{"big":9223372036854775807,"neg":-1,"f":1.5e300,"tiny":5e-324}})",
      R"({"properties":{"n":18446744073709551616}})",
      // strings: escapes, unicode, invalid UTF-8
      R"({"userId":"caf\u00e9 \ud83d\ude00 \n\"q\""})",
      "{\"userId\":\"caf\xc3\xa9\"}",
      "{\"userId\":\"\xff\xfe\"}",
      "{\"properties\":{\"k\":\"\xc3\x28\"}}",
      // not a JSON object, or not JSON
      R"([])",
      R"("track")",
      R"(42)",
      R"(null)",
      R"()",
      R"({"type":"track")",
      R"({"type":"track"} trailing)",
      std::string("{\"type\":\"track\"}\0\0", 17),
      std::string("{\"type\":\"track\",\0\"userId\":\"u\"}", 28),
      R"({"type":"tr\u0000ck"})",
      // nesting, around the limit (objects: 32 levels fit, arrays 48, alternating 39)
      Nested(Nesting::kObjects, 10),
  };
  for (int levels = 30; levels <= 52; ++levels) {
    for (Nesting nesting : {Nesting::kObjects, Nesting::kArrays, Nesting::kAlternating}) {
      inputs.push_back(Nested(nesting, levels));
    }
  }
  inputs.push_back(Nested(Nesting::kAlternating, 1000));
  inputs.push_back(Nested(Nesting::kArrays, 5000));
  for (const std::string& json : inputs) {
    EXPECT_EQ(Disagreement(json), "") << json.substr(0, 200);
  }
}

// Where protobuf's JSON parser is lenient, this is strict JSON (RFC 8259): such input goes to
// the DLQ with its reason instead of being read as the sender may not have meant it. (Raw
// control characters inside a string, even NUL, must be escaped.)
TEST(SegmentJsonTest, InputThatIsNotStrictJsonIsRefusedWhereTheMappingIsLenient) {
  for (const std::string& json :
       {std::string(R"({"type":'track'})"), std::string(R"({type:"track"})"),
        std::string(R"({"type":"track",})"), std::string(R"({"timestamp":{}})"),
        std::string("{\"type\":\"tr\0ck\"}", 16), std::string("{\"type\":\"tr\x01ck\"}"),
        std::string("{\"type\":\"tr\tck\"}")}) {
    events::v1::InboundActivity ours;
    events::v1::InboundActivity mapping;
    EXPECT_FALSE(DecodeSegmentJson(json, &ours).ok()) << json;
    EXPECT_TRUE(events::DecodeJson(json, &mapping, /*ignore_unknown_fields=*/true).ok()) << json;
  }
}

TEST(SegmentJsonTest, RefusalsSayWhatIsWrong) {
  events::v1::InboundActivity call;
  EXPECT_THAT(std::string(DecodeSegmentJson(R"({"userId":123})", &call).message()),
              HasSubstr("userId: expected a string"));
  EXPECT_THAT(std::string(DecodeSegmentJson(R"({"properties":[1]})", &call).message()),
              HasSubstr("properties: expected an object"));
  EXPECT_THAT(std::string(DecodeSegmentJson(R"({"sentAt":"noon"})", &call).message()),
              HasSubstr("sentAt: expected an RFC 3339 timestamp"));
  EXPECT_THAT(std::string(DecodeSegmentJson(R"({"type":)", &call).message()),
              HasSubstr("invalid JSON InboundActivity"));
  EXPECT_THAT(std::string(DecodeSegmentJson(Nested(Nesting::kObjects, 40), &call).message()),
              HasSubstr("nested too deeply"));
  EXPECT_THAT(std::string(DecodeSegmentJson(R"({"properties":{"a":1,"a":2}})", &call).message()),
              HasSubstr("repeated key 'a'"));
}

// A megabyte of nesting, the most activities.inbound takes: protobuf 3.21's JSON mapping needs
// 12.9 s to refuse 20,000 levels (40 kB) and grows faster than the square of the depth, so such
// a message would hold its partition for hours; this refuses it at the depth limit, and skips it
// in a field it ignores, in one pass.
TEST(SegmentJsonTest, AMegabyteOfNestingIsRefusedOrSkippedInOnePass) {
  events::v1::InboundActivity call;
  EXPECT_THAT(std::string(DecodeSegmentJson(Nested(Nesting::kArrays, 500000), &call).message()),
              HasSubstr("nested too deeply"));
  const std::string skipped = std::string(R"({"type":"track","extra":)") +
                              std::string(500000, '[') + std::string(500000, ']') + "}";
  ASSERT_TRUE(DecodeSegmentJson(skipped, &call).ok());
  EXPECT_EQ(call.type(), "track");
}

}  // namespace
}  // namespace leadflow::tracking
