#include "common/kafka/producer.h"

#include <memory>

#include "absl/synchronization/notification.h"

namespace leadflow::kafka {

absl::Status Producer::SendAndWait(OutboundMessage message, absl::Duration timeout) {
  struct Wait {
    absl::Notification done;
    absl::Status status;
  };
  // Shared: the callback may fire after we gave up waiting.
  auto wait = std::make_shared<Wait>();
  absl::Status sent = Send(std::move(message), [wait](const absl::Status& s) {
    wait->status = s;
    wait->done.Notify();
  });
  if (!sent.ok()) return sent;
  if (!wait->done.WaitForNotificationWithTimeout(timeout)) {
    return absl::DeadlineExceededError("kafka delivery not acknowledged in time");
  }
  return wait->status;
}

}  // namespace leadflow::kafka
