#pragma once

// The endpoints file written by scripts/stack.sh (KEY=VALUE lines), read by leadctl and tests.

#include <map>
#include <string>

#include "absl/status/statusor.h"

namespace leadflow::leadctl {

absl::StatusOr<std::map<std::string, std::string>> LoadStackEnv(const std::string& path);

}  // namespace leadflow::leadctl
