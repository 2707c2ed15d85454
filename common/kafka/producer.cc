#include "common/kafka/producer.h"

#include <memory>

#include "absl/synchronization/mutex.h"
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

absl::Status Producer::SendAllAndWait(std::vector<OutboundMessage> messages,
                                      absl::Duration timeout) {
  struct Wait {
    absl::Mutex mu;
    size_t remaining ABSL_GUARDED_BY(mu) = 0;
    absl::Status first_error ABSL_GUARDED_BY(mu);
  };
  auto wait = std::make_shared<Wait>();
  {
    absl::MutexLock lock(&wait->mu);
    wait->remaining = messages.size();
  }
  auto on_delivery = [wait](const absl::Status& s) {
    absl::MutexLock lock(&wait->mu);
    if (!s.ok() && wait->first_error.ok()) wait->first_error = s;
    --wait->remaining;
  };
  for (OutboundMessage& message : messages) {
    if (absl::Status s = Send(std::move(message), on_delivery); !s.ok()) on_delivery(s);
  }
  absl::MutexLock lock(&wait->mu);
  auto all_done = [&wait]() ABSL_SHARED_LOCKS_REQUIRED(wait->mu) { return wait->remaining == 0; };
  if (!wait->mu.AwaitWithTimeout(absl::Condition(&all_done), timeout)) {
    return absl::DeadlineExceededError("kafka deliveries not acknowledged in time");
  }
  return wait->first_error;
}

}  // namespace leadflow::kafka
