#pragma once

// MessageHandler: what a service does with one consumed message.
//
// The handler performs its state effects (idempotently, e.g. with redis::ApplyOnce) and returns
// the messages to publish; the consumer loop publishes them and stores the input's offset only
// when every one is acknowledged. A re-delivered input must return the same output messages
// (same event ids), which apply-once memoisation provides.
//
// How the returned status is treated by the loop:
// - OK: publish the outputs, then mark the input done.
// - INVALID_ARGUMENT, DATA_LOSS, OUT_OF_RANGE, FAILED_PRECONDITION, NOT_FOUND, UNIMPLEMENTED,
//   ALREADY_EXISTS: poison input. The original bytes go to `<topic>.dlq` with the reason;
//   the input is then marked done. (See IsPoison().)
// - Anything else (UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED, RESOURCE_EXHAUSTED, INTERNAL...):
//   transient. The same message is retried with backoff and never skipped.
//
// Thread safety: called from the consumer loop thread only.

#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/kafka/message.h"

namespace leadflow::kafka {

class MessageHandler {
 public:
  virtual ~MessageHandler() = default;
  virtual absl::StatusOr<std::vector<OutboundMessage>> Handle(const ConsumedMessage& message) = 0;
};

// True when a handler status means "this input can never be processed".
inline bool IsPoison(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kUnimplemented:
    case absl::StatusCode::kAlreadyExists:
      return true;
    default:
      return false;
  }
}

}  // namespace leadflow::kafka
