#pragma once

// Producer: sends messages to Kafka and reports each delivery once.
//
// Contract:
// - Send() enqueues and returns at once. `on_delivery` is called exactly once per accepted
//   message, with OK when the broker acknowledged it (acks=all, idempotent producer) or the
//   error that made librdkafka give up. It runs on the producer's own delivery thread: keep it
//   short and synchronise what it touches.
// - Send() returns an error (and never calls `on_delivery`) when the message cannot even be
//   enqueued: UNAVAILABLE for a full local queue (retry later), INVALID_ARGUMENT for a message
//   the broker can never accept (too large, bad topic).
// - Flush() waits until every enqueued message has been delivered or failed.
//
// Thread safety: all methods may be called from any thread.

#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/kafka/message.h"

namespace leadflow::kafka {

class Producer {
 public:
  using DeliveryCallback = std::function<void(const absl::Status&)>;

  Producer() = default;
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;
  virtual ~Producer() = default;

  virtual absl::Status Send(OutboundMessage message, DeliveryCallback on_delivery) = 0;

  // Waits up to `timeout` for all outstanding deliveries. DEADLINE_EXCEEDED if some remain.
  virtual absl::Status Flush(absl::Duration timeout) = 0;

  // Sends and waits for the delivery report. For request/response paths (gRPC commands) that
  // must not answer before their event is durable.
  absl::Status SendAndWait(OutboundMessage message, absl::Duration timeout);
  // SendAndWait() for several messages, all in flight at once: OK when every one is
  // acknowledged, else the first error (DEADLINE_EXCEEDED when some are still unacknowledged).
  absl::Status SendAllAndWait(std::vector<OutboundMessage> messages, absl::Duration timeout);
};

}  // namespace leadflow::kafka
