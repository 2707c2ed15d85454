#pragma once

// Decoding of a Segment call sent as JSON on activities.inbound into InboundActivity.
//
// The result is the proto3 JSON mapping's (google::protobuf::util::JsonStringToMessage with
// unknown fields ignored, as events::DecodeJson does): fields by their lowerCamel or proto name,
// `null` leaves a field unset, a field given twice keeps the later value (a Struct given twice
// merges, the later keys winning), a key repeated inside one JSON object of a Struct is refused,
// properties / traits / context become google.protobuf.Struct, timestamps are RFC 3339 strings,
// the value of a field not in the schema is skipped however deep it nests; only input that is not
// strict JSON is refused here where the mapping is lenient (below). What differs is the cost:
// protobuf 3.21's converter spends ~22 µs on the specification's example `track` call, more than
// the rest of tracking's work on an activity, and seconds on a few kilobytes of nested arrays
// (docs/BENCHMARKS.md, BM_TrackingDecodeSegmentJson); this fills the message from nlohmann-json's
// SAX events in one pass. tests/unit/services/tracking/segment_json_test.cc and the
// segment_activity fuzz target check that both give the same message, or both refuse.
//
// Thread safety: a pure function.

#include <string_view>

#include "absl/status/status.h"
#include "leadflow/events/v1/activity.pb.h"

namespace leadflow::tracking {

// protobuf's recursion limit when it parses a message: a JSON object inside properties, traits or
// context nests three messages (Value, Struct, map entry), an array two (Value, ListValue), so
// about 33 levels of objects or 50 of arrays fit. Deeper is refused, as the JSON mapping refuses
// it (an activity decoded deeper could not be parsed back wherever it is stored).
inline constexpr int kMaxMessageDepth = 100;

// INVALID_ARGUMENT "invalid JSON InboundActivity: <reason>" when `json` is not a JSON object
// (RFC 8259: protobuf's parser also takes single quotes, bare keys, trailing commas and raw
// control characters inside strings, this does not), a known field has the wrong type (also `{}`
// for a timestamp, which protobuf lets pass as unset), a Struct repeats a key, a timestamp is not
// RFC 3339, a string is not valid UTF-8, or nesting exceeds kMaxMessageDepth. `out` is cleared
// first.
absl::Status DecodeSegmentJson(std::string_view json, events::v1::InboundActivity* out);

}  // namespace leadflow::tracking
