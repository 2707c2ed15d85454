#pragma once

#include <string>

#include "absl/status/status.h"

namespace leadflow::leadctl {

// `leadctl topics create`: creates every leadflow topic (and DLQ) that does not exist yet.
absl::Status CreateAllTopics(const std::string& bootstrap, const std::string& prefix,
                             int partitions);

}  // namespace leadflow::leadctl
