#pragma once

// absl::Status ⇄ grpc::Status, converted once at the edge (STYLE.md habit 5).
//
// A status carrying a google.rpc.BadRequest payload (field violations) keeps it: the gRPC status
// gets the serialized google.rpc.Status in its details, which clients read from the
// `grpc-status-details-bin` trailer.

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/validation/violations.h"
#include "grpcpp/support/status.h"

namespace leadflow::grpc_util {

using validation::InvalidArgumentWithViolations;
using validation::kBadRequestTypeUrl;
using validation::ViolationsOf;

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace leadflow::grpc_util
