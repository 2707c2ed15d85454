#pragma once

// Field violations carried inside an absl::Status, so that validation code anywhere (engines,
// config loaders) can report every bad field at once without depending on gRPC. The gRPC edge
// (common/grpc/status.h) turns them into google.rpc.BadRequest details; the consumer loop puts
// the status message into the DLQ headers.

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/rpc/error_details.pb.h"

namespace leadflow::validation {

inline constexpr absl::string_view kBadRequestTypeUrl = "type.googleapis.com/google.rpc.BadRequest";

// INVALID_ARGUMENT whose message is `summary` followed by every violation ("field: why"), with
// the violations attached as a google.rpc.BadRequest payload.
absl::Status InvalidArgumentWithViolations(absl::string_view summary,
                                           const google::rpc::BadRequest& violations);

// The violations attached to a status (empty if none).
google::rpc::BadRequest ViolationsOf(const absl::Status& status);

// Collects violations; `ToStatus()` is OK when there are none.
class ViolationList {
 public:
  void Add(std::string field, std::string description);
  bool empty() const { return violations_.field_violations().empty(); }
  absl::Status ToStatus(absl::string_view summary) const;
  const google::rpc::BadRequest& proto() const { return violations_; }

 private:
  google::rpc::BadRequest violations_;
};

}  // namespace leadflow::validation
