#pragma once

// ConsumerLoop: the one consumer loop, implementing the processing contract of ARCHITECTURE.md §4
// for every service.
//
//   poll ─► handler (state effects, apply-once) ─► produce outputs ─► broker acks ─► store offset
//                 │ poison                                 ▲
//                 └──────────► <topic>.dlq with reason ────┘
//
// - Batches: after the first message of a poll, the loop takes whatever else librdkafka already
//   holds (up to max_batch, without waiting) and gives it to MessageHandler::HandleBatch(), so a
//   handler can share its Redis round trips between inputs. Results are sent in input order;
//   from the first transient result on, inputs are handled one by one with retries (handler.h).
// - At-least-once: an input's offset is stored (and later committed) only after the handler's
//   effects are done and every output, or its DLQ copy, is acknowledged by the broker. Outputs
//   of many inputs are in flight at once; OffsetTracker keeps commits contiguous.
// - Poison input (see IsPoison()) goes to `<topic>.dlq` with headers naming the original topic,
//   partition, offset, error class and message; it never stalls the partition.
// - Transient failure is retried with exponential backoff, never skipped. While retrying, all
//   partitions are paused but the consumer keeps polling, so the member stays in the group and
//   still sees rebalances; health reports not-serving until the handler succeeds again.
// - A failed delivery of an output rewinds its partition to the input, which is handled again;
//   the handler's apply-once memo makes the second run produce the same events.
// - On revocation, in-flight outputs are flushed and finished offsets committed before the
//   partitions go; unfinished work is dropped and will be redone by the new owner.
// - Stop() (SIGTERM) finishes the message in hand, flushes the producer, commits, and leaves.
//
// Ownership: borrows the consumer, producer and handler, which must outlive the loop.
// Thread safety: Run() on one thread; Stop() and Serving() from any thread.

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/kafka/consumer.h"
#include "common/kafka/handler.h"
#include "common/kafka/offset_tracker.h"
#include "common/kafka/producer.h"
#include "prometheus/registry.h"

namespace leadflow::kafka {

// DLQ header names.
inline constexpr char kDlqTopicHeader[] = "dlq.topic";
inline constexpr char kDlqPartitionHeader[] = "dlq.partition";
inline constexpr char kDlqOffsetHeader[] = "dlq.offset";
inline constexpr char kDlqErrorClassHeader[] = "dlq.error.class";
inline constexpr char kDlqErrorMessageHeader[] = "dlq.error.message";
inline constexpr char kDlqServiceHeader[] = "dlq.service";
// Set when the DLQ copy holds only the first kMaxDlqValueBytes of the input: its full size.
inline constexpr char kDlqTruncatedHeader[] = "dlq.truncated";
inline constexpr size_t kMaxDlqValueBytes = 256 * 1024;

struct ConsumerLoopOptions {
  // Name of the service, for metrics and DLQ headers.
  std::string service;
  // Topics to consume (already prefixed).
  std::vector<std::string> topics;
  // DLQ topic of a topic is `topic + dlq_suffix`.
  std::string dlq_suffix = ".dlq";
  // Inputs whose outputs are not yet acknowledged; above this the loop waits (backpressure).
  size_t max_in_flight = 20000;
  // Most inputs handed to the handler at once; 1 handles every input alone.
  size_t max_batch = 256;
  absl::Duration poll_timeout = absl::Milliseconds(100);
  absl::Duration initial_backoff = absl::Milliseconds(50);
  absl::Duration max_backoff = absl::Seconds(5);
  // Consecutive transient failures after which the loop reports not-serving.
  int failures_before_unhealthy = 3;
  // How long shutdown and revocation wait for outstanding deliveries.
  absl::Duration flush_timeout = absl::Seconds(30);
};

class ConsumerLoop final : public RebalanceListener {
 public:
  ConsumerLoop(Consumer& consumer, Producer& producer, MessageHandler& handler,
               ConsumerLoopOptions options, prometheus::Registry& registry);
  ~ConsumerLoop() override;

  // Subscribes and processes until Stop(). Returns an error only for a fatal consumer error.
  absl::Status Run();
  // Asks Run() to finish gracefully. Idempotent; callable from any thread or signal thread.
  void Stop();
  // False while a dependency (handler's store, broker deliveries) is failing.
  bool Serving() const { return serving_.load(); }

  // RebalanceListener.
  void OnAssigned(const std::vector<TopicPartition>& partitions) override;
  void OnRevoked(const std::vector<TopicPartition>& partitions) override;

 private:
  struct Completion {
    TopicPartition tp;
    int64_t offset;
    uint64_t generation;
    absl::Status status;
    // The input, kept while its outputs are in flight so that an output the broker can never
    // accept sends the input to the DLQ instead of stalling the partition.
    std::shared_ptr<const ConsumedMessage> input;
    bool was_dlq = false;
  };
  struct Metrics;

  // Takes what librdkafka already holds after `first`, without waiting, up to max_batch; inputs
  // of partitions revoked meanwhile are left out (the next owner has them). A fatal consumer
  // error ends the batch and is stored in `*fatal`.
  std::vector<ConsumedMessage> CollectBatch(ConsumedMessage first, absl::Status* fatal);
  // Handles a batch end to end (see the header comment).
  void ProcessBatch(const std::vector<ConsumedMessage>& batch);
  // Sends the outputs of a handled input, or its DLQ copy when poison.
  void Finish(const ConsumedMessage& message, uint64_t generation,
              absl::StatusOr<std::vector<OutboundMessage>> outputs);
  // Runs the handler, retrying transient failures. Returns the final status; CANCELLED if the
  // loop is stopping or the partition was revoked meanwhile. `failed_in_batch`, when not OK, is
  // the transient failure HandleBatch() gave this input: the first retry waits a backoff.
  absl::StatusOr<std::vector<OutboundMessage>> HandleWithRetry(const ConsumedMessage& message,
                                                               uint64_t generation,
                                                               absl::Status failed_in_batch);
  // Sends `outputs` as the effects of (tp, offset); completion arrives through the queue.
  void SendAll(const ConsumedMessage& message, uint64_t generation,
               std::vector<OutboundMessage> outputs, bool is_dlq = false);
  OutboundMessage DlqMessageFor(const ConsumedMessage& message, const absl::Status& reason) const;
  // Applies finished deliveries: stores offsets, rewinds partitions whose delivery failed.
  void DrainCompletions();
  void WaitForCompletions(absl::Duration timeout);
  // Waits for everything in flight (used on revoke and shutdown).
  void FlushAndDrain();
  void SetServing(bool serving);

  Consumer& consumer_;
  Producer& producer_;
  MessageHandler& handler_;
  const ConsumerLoopOptions options_;
  std::unique_ptr<Metrics> metrics_;

  OffsetTracker tracker_;  // loop thread only
  absl::Notification stop_;
  std::atomic<bool> serving_{true};
  int consecutive_failures_ = 0;  // loop thread only
  bool retrying_ = false;         // loop thread only: in HandleWithRetry's backoff polls
  // Loop thread only: inputs of the batch in hand that are begun but not yet sent (the one being
  // retried and those after it); a revocation during the retry polls must not wait for them.
  size_t unsent_ = 0;
  // Loop thread only: while collecting a batch, the partitions revoked, with the batch size then.
  bool collecting_ = false;
  size_t collected_ = 0;
  std::vector<std::pair<size_t, TopicPartition>> revoked_while_collecting_;

  absl::Mutex mu_;
  std::vector<Completion> completions_ ABSL_GUARDED_BY(mu_);
};

}  // namespace leadflow::kafka
