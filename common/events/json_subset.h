#pragma once

// A fast decoder for the common shape of a JSON event: the proto3 JSON mapping, for a subset of
// inputs, without protobuf's converter.
//
// protobuf 3.21's JSON parser resolves the message's types and walks its object writer for every
// call: ~35 µs for a web-form submission, a quarter of capture's work on a `leads.inbound`
// message (docs/BENCHMARKS.md, "JSON decoding"). Most inputs use a small part of the mapping, so
// DecodeJsonSubset handles exactly that part and declines everything else, which DecodeJson then
// hands to protobuf's parser. Where it decodes, the message is the one JsonStringToMessage
// gives; tests/unit/common/events/json_subset_test.cc compares the two.
//
// Decoded: a JSON object of fields by their lowerCamel or proto name; string fields from JSON
// strings; int32, int64, uint32 and uint64 from JSON integers in range; bool from true/false;
// enums from their exact value name; nested messages from objects; repeated fields from arrays;
// maps with string keys and string values from objects; google.protobuf.Timestamp from an
// RFC 3339 string. Declined (left to protobuf, which decodes or refuses it with its reason):
// anything else — a field the schema does not know, null, a field named twice (also by its two
// names), a repeated key, numbers as strings or in exponent form, floating-point fields, other
// well-known types, input that is not strict JSON, holds a NUL byte or is not valid UTF-8.
//
// Thread safety: a pure function.

#include <string_view>

#include "google/protobuf/message.h"

namespace leadflow::events {

// True when `json` was decoded into `out` (cleared first); false when the input is outside the
// subset, `out` then being unspecified.
bool DecodeJsonSubset(std::string_view json, google::protobuf::Message* out);

}  // namespace leadflow::events
