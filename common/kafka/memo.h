#pragma once

// Memos for apply-once (see common/redis/apply_once.h): the outputs an input produced, plus an
// optional service-specific result, serialised so a re-delivered input yields the same outputs.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/kafka/message.h"

namespace leadflow::kafka {

std::string EncodeMemo(const std::vector<OutboundMessage>& outputs, const std::string& result = "");
// DATA_LOSS if the memo is corrupt.
absl::Status DecodeMemo(const std::string& memo, std::vector<OutboundMessage>* outputs,
                        std::string* result = nullptr);

}  // namespace leadflow::kafka
