#pragma once

// In-memory Consumer and Producer for unit tests of the consumer loop and handlers: no sockets,
// no librdkafka, every call recorded.
//
// FakeConsumer models one group member's view of its partitions:
// - Each partition has a log (messages added with Add()); offsets are assigned in order from 0
//   unless the message says otherwise. Poll() returns the next message at the member's position
//   across the assigned, unpaused partitions, waiting up to its timeout for one to be added.
// - The member owns every partition that has a log as soon as the first Poll() runs
//   (OnAssigned is delivered then). ScheduleRevoke()/ScheduleAssign() queue rebalances that the
//   next Poll() delivers to the listener on the polling thread, as librdkafka does. Revoked
//   partitions are skipped; re-assigned ones resume at their committed offset, as a new owner
//   would.
// - StoreOffset(), Seek(), Commit(), PauseAll(), ResumeAll(), Close() are recorded. Seek() moves
//   the position, so the messages from that offset are returned again. Commit() commits the stored
//   offsets; Close() revokes the assignment through the listener and then commits what was
//   stored (like rd_kafka_consumer_close with auto-commit). A revocation from ScheduleRevoke()
//   commits nothing by itself: the listener must call Commit(), and stored offsets not committed
//   by then are dropped with the partition.
//
// FakeProducer records every Send(). By default each message is acknowledged OK at once, on the
// sending thread. Hold(true) keeps deliveries pending until the test acknowledges them with
// AckNext()/AckAll()/Ack(i), from its own thread (a different thread, as with librdkafka).
// FailDeliveries() makes the next automatic acknowledgements fail; FailSends() makes Send()
// itself return an error.
//
// Thread safety: every method may be called from any thread. Listener and delivery callbacks run
// without the fake's lock held.

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/kafka/consumer.h"
#include "common/kafka/producer.h"

namespace leadflow::testing {

class FakeConsumer final : public kafka::Consumer {
 public:
  struct StoreCall {
    kafka::TopicPartition tp;
    int64_t next_offset;
  };

  FakeConsumer() = default;
  ~FakeConsumer() override = default;

  // Appends `message` to its partition's log. If message.offset is negative (or not above the
  // last one), it gets the next offset. Returns the offset used.
  int64_t Add(kafka::ConsumedMessage message);
  // Convenience: a message with this key and value on (topic, partition).
  int64_t Add(const std::string& topic, int32_t partition, std::string key, std::string value);
  // Declares a partition with an empty log (so it is assigned even without messages).
  void AddPartition(const kafka::TopicPartition& tp);

  // Queues a rebalance event, delivered by the next Poll().
  void ScheduleRevoke(std::vector<kafka::TopicPartition> partitions);
  void ScheduleAssign(std::vector<kafka::TopicPartition> partitions);
  // A revocation delivered by the first Poll() after `messages_polled` messages in all were
  // returned (to revoke in the middle of the polls that fill one batch).
  void ScheduleRevokeAfter(size_t messages_polled, std::vector<kafka::TopicPartition> partitions);
  // The next Poll() returns this error (a fatal consumer error).
  void FailNextPoll(absl::Status status);

  // Recorded calls and state.
  std::vector<std::string> subscribed_topics() const;
  std::vector<StoreCall> store_calls() const;
  // The last offset stored for tp, if any.
  std::optional<int64_t> stored_offset(const kafka::TopicPartition& tp) const;
  std::optional<int64_t> committed_offset(const kafka::TopicPartition& tp) const;
  std::vector<StoreCall> seek_calls() const;
  int pause_calls() const;
  int resume_calls() const;
  bool paused() const;
  int commit_calls() const;
  int poll_calls() const;
  // Rebalance events delivered to the listener so far (assignments and revocations).
  int assigned_events() const;
  int revoked_events() const;
  // True while the listener's OnRevoked() is running.
  bool in_revoke() const;
  bool closed() const;
  // Messages returned by Poll() so far, in order.
  std::vector<kafka::ConsumedMessage> polled() const;

  // kafka::Consumer.
  absl::Status Subscribe(const std::vector<std::string>& topics,
                         kafka::RebalanceListener* listener) override;
  absl::StatusOr<std::optional<kafka::ConsumedMessage>> Poll(absl::Duration timeout) override;
  absl::Status StoreOffset(const kafka::TopicPartition& tp, int64_t next_offset) override;
  absl::Status Seek(const kafka::TopicPartition& tp, int64_t offset) override;
  absl::Status PauseAll() override;
  absl::Status ResumeAll() override;
  absl::Status Commit() override;
  void Close() override;

 private:
  struct Partition {
    std::vector<kafka::ConsumedMessage> log;
    int64_t position = 0;  // offset of the next message to return
    bool assigned = false;
  };
  struct Rebalance {
    bool assign;
    std::vector<kafka::TopicPartition> partitions;
    // Delivered by the first Poll() after this many messages were returned in all.
    size_t after_polled = 0;
  };
  bool RebalanceDue() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Takes the rebalance events to deliver now (the first-poll assignment included).
  std::deque<Rebalance> TakeRebalances() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs the listener for `event`. For a revocation, `auto_commit` commits the offsets stored
  // by the listener before the partitions go (consumer close).
  void Deliver(const Rebalance& event, bool auto_commit);
  std::optional<kafka::ConsumedMessage> NextMessage() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool HasWork() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void CommitLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  // std::map: deterministic order across partitions.
  std::map<std::pair<std::string, int32_t>, Partition> partitions_ ABSL_GUARDED_BY(mu_);
  kafka::RebalanceListener* listener_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::vector<std::string> topics_ ABSL_GUARDED_BY(mu_);
  bool first_poll_done_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<Rebalance> rebalances_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Status> poll_error_ ABSL_GUARDED_BY(mu_);
  std::vector<StoreCall> store_calls_ ABSL_GUARDED_BY(mu_);
  std::vector<StoreCall> seek_calls_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<kafka::TopicPartition, int64_t> stored_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<kafka::TopicPartition, int64_t> committed_ ABSL_GUARDED_BY(mu_);
  std::vector<kafka::ConsumedMessage> polled_ ABSL_GUARDED_BY(mu_);
  bool paused_ ABSL_GUARDED_BY(mu_) = false;
  int pause_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int resume_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int commit_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int poll_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int assigned_events_ ABSL_GUARDED_BY(mu_) = 0;
  int revoked_events_ ABSL_GUARDED_BY(mu_) = 0;
  bool in_revoke_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

class FakeProducer final : public kafka::Producer {
 public:
  // One Send() that was accepted: the message and what became of its delivery.
  struct Sent {
    kafka::OutboundMessage message;
    // nullopt while the delivery is held; then the status it was acknowledged with.
    std::optional<absl::Status> delivery;
  };

  FakeProducer() = default;
  ~FakeProducer() override = default;

  // While held, deliveries stay pending until acknowledged by the test.
  void Hold(bool hold);
  // Acknowledges the oldest pending delivery; false if none is pending.
  bool AckNext(absl::Status status = absl::OkStatus());
  // Acknowledges every pending delivery, oldest first; returns how many.
  int AckAll(absl::Status status = absl::OkStatus());
  // Acknowledges the delivery of sent()[index]; false if it is not pending.
  bool Ack(size_t index, absl::Status status = absl::OkStatus());
  // The next `count` automatic (non-held) deliveries fail with `status`.
  void FailDeliveries(int count, absl::Status status);
  // The next `count` Send() calls return `status` without accepting the message.
  void FailSends(int count, absl::Status status);

  std::vector<Sent> sent() const;
  size_t sent_count() const;
  size_t pending_count() const;
  // Send() calls refused by FailSends().
  int refused_sends() const;
  int flush_calls() const;

  // kafka::Producer.
  absl::Status Send(kafka::OutboundMessage message, DeliveryCallback on_delivery) override;
  // Waits until nothing is pending; DEADLINE_EXCEEDED otherwise.
  absl::Status Flush(absl::Duration timeout) override;

 private:
  struct Entry {
    Sent sent;
    DeliveryCallback callback;  // empty once called
  };
  // Marks entry `index` delivered and returns its callback to run outside the lock.
  DeliveryCallback Complete(size_t index, const absl::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::vector<Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::deque<size_t> pending_ ABSL_GUARDED_BY(mu_);
  bool hold_ ABSL_GUARDED_BY(mu_) = false;
  int fail_deliveries_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status delivery_failure_ ABSL_GUARDED_BY(mu_);
  int fail_sends_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status send_failure_ ABSL_GUARDED_BY(mu_);
  int refused_sends_ ABSL_GUARDED_BY(mu_) = 0;
  int flush_calls_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace leadflow::testing
