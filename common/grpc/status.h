#pragma once

// absl::Status ⇄ grpc::Status, converted once at the edge (STYLE.md habit 5).
//
// A status carrying a google.rpc.BadRequest payload (field violations) keeps it: the gRPC status
// gets the serialized google.rpc.Status in its details, which clients read from the
// `grpc-status-details-bin` trailer.

#include <string>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/rpc/error_details.pb.h"
#include "grpcpp/support/status.h"

namespace leadflow::grpc_util {

inline constexpr absl::string_view kBadRequestTypeUrl = "type.googleapis.com/google.rpc.BadRequest";

// INVALID_ARGUMENT carrying field violations.
absl::Status InvalidArgumentWithViolations(absl::string_view summary,
                                           const google::rpc::BadRequest& violations);
// The violations attached to a status (empty if none).
google::rpc::BadRequest ViolationsOf(const absl::Status& status);

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace leadflow::grpc_util
