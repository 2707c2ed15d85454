#pragma once

// Helpers shared by the capture engine's translation units. Not part of the engine's API:
// nothing outside services/capture/engine_*.cc includes this file.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "google/protobuf/timestamp.pb.h"

namespace leadflow::capture::internal {

// True when `ts` is inside the range the Timestamp spec allows (0001-01-01..9999-12-31) with
// nanos in [0, 1e9); outside it, time arithmetic and JSON encoding are meaningless.
bool IsValidTimestamp(const google::protobuf::Timestamp& ts);

// The code points of `text`; ill-formed sequences become U+FFFD.
std::vector<int32_t> CodePoints(absl::string_view text);

// Appends the UTF-8 encoding of `c` (a valid scalar value) to `out`.
void AppendUtf8(int32_t c, std::string* out);

}  // namespace leadflow::capture::internal
