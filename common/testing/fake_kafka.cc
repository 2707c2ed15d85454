#include "common/testing/fake_kafka.h"

#include <algorithm>
#include <utility>

namespace leadflow::testing {

// ---------------------------------------------------------------------------------------------
// FakeConsumer

int64_t FakeConsumer::Add(kafka::ConsumedMessage message) {
  absl::MutexLock lock(&mu_);
  Partition& p = partitions_[{message.topic, message.partition}];
  const int64_t next = p.log.empty() ? 0 : p.log.back().offset + 1;
  if (message.offset < next) message.offset = next;
  p.log.push_back(std::move(message));
  return p.log.back().offset;
}

int64_t FakeConsumer::Add(const std::string& topic, int32_t partition, std::string key,
                          std::string value) {
  kafka::ConsumedMessage m;
  m.topic = topic;
  m.partition = partition;
  m.offset = -1;
  m.key = std::move(key);
  m.value = std::move(value);
  return Add(std::move(m));
}

void FakeConsumer::AddPartition(const kafka::TopicPartition& tp) {
  absl::MutexLock lock(&mu_);
  partitions_[{tp.topic, tp.partition}];
}

void FakeConsumer::ScheduleRevoke(std::vector<kafka::TopicPartition> partitions) {
  absl::MutexLock lock(&mu_);
  rebalances_.push_back({false, std::move(partitions)});
}

void FakeConsumer::ScheduleRevokeAfter(size_t messages_polled,
                                       std::vector<kafka::TopicPartition> partitions) {
  absl::MutexLock lock(&mu_);
  rebalances_.push_back({false, std::move(partitions), messages_polled});
}

bool FakeConsumer::RebalanceDue() const {
  return !rebalances_.empty() && rebalances_.front().after_polled <= polled_.size();
}

void FakeConsumer::ScheduleAssign(std::vector<kafka::TopicPartition> partitions) {
  absl::MutexLock lock(&mu_);
  rebalances_.push_back({true, std::move(partitions)});
}

void FakeConsumer::FailNextPoll(absl::Status status) {
  absl::MutexLock lock(&mu_);
  poll_error_ = std::move(status);
}

std::vector<std::string> FakeConsumer::subscribed_topics() const {
  absl::MutexLock lock(&mu_);
  return topics_;
}

std::vector<FakeConsumer::StoreCall> FakeConsumer::store_calls() const {
  absl::MutexLock lock(&mu_);
  return store_calls_;
}

std::optional<int64_t> FakeConsumer::stored_offset(const kafka::TopicPartition& tp) const {
  absl::MutexLock lock(&mu_);
  auto it = stored_.find(tp);
  if (it == stored_.end()) return std::nullopt;
  return it->second;
}

std::optional<int64_t> FakeConsumer::committed_offset(const kafka::TopicPartition& tp) const {
  absl::MutexLock lock(&mu_);
  auto it = committed_.find(tp);
  if (it == committed_.end()) return std::nullopt;
  return it->second;
}

std::vector<FakeConsumer::StoreCall> FakeConsumer::seek_calls() const {
  absl::MutexLock lock(&mu_);
  return seek_calls_;
}

int FakeConsumer::pause_calls() const {
  absl::MutexLock lock(&mu_);
  return pause_calls_;
}

int FakeConsumer::resume_calls() const {
  absl::MutexLock lock(&mu_);
  return resume_calls_;
}

bool FakeConsumer::paused() const {
  absl::MutexLock lock(&mu_);
  return paused_;
}

int FakeConsumer::commit_calls() const {
  absl::MutexLock lock(&mu_);
  return commit_calls_;
}

int FakeConsumer::poll_calls() const {
  absl::MutexLock lock(&mu_);
  return poll_calls_;
}

int FakeConsumer::assigned_events() const {
  absl::MutexLock lock(&mu_);
  return assigned_events_;
}

int FakeConsumer::revoked_events() const {
  absl::MutexLock lock(&mu_);
  return revoked_events_;
}

bool FakeConsumer::in_revoke() const {
  absl::MutexLock lock(&mu_);
  return in_revoke_;
}

bool FakeConsumer::closed() const {
  absl::MutexLock lock(&mu_);
  return closed_;
}

std::vector<kafka::ConsumedMessage> FakeConsumer::polled() const {
  absl::MutexLock lock(&mu_);
  return polled_;
}

absl::Status FakeConsumer::Subscribe(const std::vector<std::string>& topics,
                                     kafka::RebalanceListener* listener) {
  absl::MutexLock lock(&mu_);
  topics_ = topics;
  listener_ = listener;
  return absl::OkStatus();
}

bool FakeConsumer::HasWork() const {
  if (poll_error_.has_value() || RebalanceDue()) return true;
  if (!first_poll_done_ && listener_ != nullptr) return true;
  if (paused_) return false;
  for (const auto& [key, p] : partitions_) {
    if (p.assigned && !p.log.empty() && p.log.back().offset >= p.position) return true;
  }
  return false;
}

std::deque<FakeConsumer::Rebalance> FakeConsumer::TakeRebalances() {
  std::deque<Rebalance> events;
  if (!first_poll_done_) {
    first_poll_done_ = true;
    // The group's first assignment: every partition the test declared.
    Rebalance initial{true, {}};
    for (const auto& [key, p] : partitions_) initial.partitions.push_back({key.first, key.second});
    events.push_back(std::move(initial));
  }
  while (RebalanceDue()) {
    events.push_back(std::move(rebalances_.front()));
    rebalances_.pop_front();
  }
  return events;
}

void FakeConsumer::Deliver(const Rebalance& event, bool auto_commit) {
  kafka::RebalanceListener* listener;
  {
    absl::MutexLock lock(&mu_);
    listener = listener_;
    if (event.assign) {
      ++assigned_events_;
      for (const kafka::TopicPartition& tp : event.partitions) {
        Partition& p = partitions_[{tp.topic, tp.partition}];
        p.assigned = true;
        // A new owner starts at the group's committed offset, else at the log start.
        auto committed = committed_.find(tp);
        p.position = committed != committed_.end() ? committed->second
                     : p.log.empty()               ? 0
                                                   : p.log.front().offset;
      }
    } else {
      ++revoked_events_;
      in_revoke_ = true;
    }
  }
  if (event.assign) {
    if (listener != nullptr) listener->OnAssigned(event.partitions);
    return;
  }
  if (listener != nullptr) listener->OnRevoked(event.partitions);
  absl::MutexLock lock(&mu_);
  if (auto_commit) {
    // Commits what the listener stored, without counting as a Commit() call.
    for (const auto& [tp, offset] : stored_) committed_[tp] = offset;
  }
  for (const kafka::TopicPartition& tp : event.partitions) {
    partitions_[{tp.topic, tp.partition}].assigned = false;
    stored_.erase(tp);  // uncommitted stored offsets go with the partition
  }
  in_revoke_ = false;
}

std::optional<kafka::ConsumedMessage> FakeConsumer::NextMessage() {
  if (paused_) return std::nullopt;
  for (auto& [key, p] : partitions_) {
    if (!p.assigned) continue;
    for (const kafka::ConsumedMessage& m : p.log) {
      if (m.offset >= p.position) {
        p.position = m.offset + 1;
        return m;
      }
    }
  }
  return std::nullopt;
}

absl::StatusOr<std::optional<kafka::ConsumedMessage>> FakeConsumer::Poll(absl::Duration timeout) {
  std::deque<Rebalance> events;
  {
    absl::MutexLock lock(&mu_);
    ++poll_calls_;
    mu_.AwaitWithTimeout(absl::Condition(this, &FakeConsumer::HasWork), timeout);
    if (poll_error_.has_value()) {
      absl::Status error = *std::move(poll_error_);
      poll_error_.reset();
      return error;
    }
    events = TakeRebalances();
  }
  for (const Rebalance& event : events) Deliver(event, /*auto_commit=*/false);
  absl::MutexLock lock(&mu_);
  std::optional<kafka::ConsumedMessage> message = NextMessage();
  if (message.has_value()) polled_.push_back(*message);
  return message;
}

absl::Status FakeConsumer::StoreOffset(const kafka::TopicPartition& tp, int64_t next_offset) {
  absl::MutexLock lock(&mu_);
  store_calls_.push_back({tp, next_offset});
  auto it = partitions_.find({tp.topic, tp.partition});
  if (it == partitions_.end() || !it->second.assigned) {
    // librdkafka refuses to store offsets of partitions it does not own (RD_KAFKA_RESP_ERR__STATE).
    return absl::FailedPreconditionError("store offset: partition not assigned");
  }
  stored_[tp] = next_offset;
  return absl::OkStatus();
}

absl::Status FakeConsumer::Seek(const kafka::TopicPartition& tp, int64_t offset) {
  absl::MutexLock lock(&mu_);
  seek_calls_.push_back({tp, offset});
  auto it = partitions_.find({tp.topic, tp.partition});
  if (it == partitions_.end()) return absl::NotFoundError("seek: unknown partition");
  it->second.position = offset;
  return absl::OkStatus();
}

absl::Status FakeConsumer::PauseAll() {
  absl::MutexLock lock(&mu_);
  paused_ = true;
  ++pause_calls_;
  return absl::OkStatus();
}

absl::Status FakeConsumer::ResumeAll() {
  absl::MutexLock lock(&mu_);
  paused_ = false;
  ++resume_calls_;
  return absl::OkStatus();
}

void FakeConsumer::CommitLocked() {
  ++commit_calls_;
  for (const auto& [tp, offset] : stored_) committed_[tp] = offset;
}

absl::Status FakeConsumer::Commit() {
  absl::MutexLock lock(&mu_);
  CommitLocked();
  return absl::OkStatus();
}

void FakeConsumer::Close() {
  Rebalance revoke{false, {}};
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    for (const auto& [key, p] : partitions_) {
      if (p.assigned) revoke.partitions.push_back({key.first, key.second});
    }
  }
  // Like rd_kafka_consumer_close: the listener sees the revocation, then the offsets stored by
  // then are committed (auto-commit) and the member leaves.
  if (!revoke.partitions.empty()) Deliver(revoke, /*auto_commit=*/true);
  absl::MutexLock lock(&mu_);
  closed_ = true;
}

// ---------------------------------------------------------------------------------------------
// FakeProducer

void FakeProducer::Hold(bool hold) {
  absl::MutexLock lock(&mu_);
  hold_ = hold;
}

FakeProducer::DeliveryCallback FakeProducer::Complete(size_t index, const absl::Status& status) {
  Entry& e = entries_[index];
  e.sent.delivery = status;
  return std::exchange(e.callback, nullptr);
}

bool FakeProducer::AckNext(absl::Status status) {
  DeliveryCallback callback;
  {
    absl::MutexLock lock(&mu_);
    if (pending_.empty()) return false;
    const size_t index = pending_.front();
    pending_.pop_front();
    callback = Complete(index, status);
  }
  if (callback) callback(status);
  return true;
}

int FakeProducer::AckAll(absl::Status status) {
  int n = 0;
  while (AckNext(status)) ++n;
  return n;
}

bool FakeProducer::Ack(size_t index, absl::Status status) {
  DeliveryCallback callback;
  {
    absl::MutexLock lock(&mu_);
    auto it = std::find(pending_.begin(), pending_.end(), index);
    if (it == pending_.end()) return false;
    pending_.erase(it);
    callback = Complete(index, status);
  }
  if (callback) callback(status);
  return true;
}

void FakeProducer::FailDeliveries(int count, absl::Status status) {
  absl::MutexLock lock(&mu_);
  fail_deliveries_ = count;
  delivery_failure_ = std::move(status);
}

void FakeProducer::FailSends(int count, absl::Status status) {
  absl::MutexLock lock(&mu_);
  fail_sends_ = count;
  send_failure_ = std::move(status);
}

std::vector<FakeProducer::Sent> FakeProducer::sent() const {
  absl::MutexLock lock(&mu_);
  std::vector<Sent> out;
  out.reserve(entries_.size());
  for (const Entry& e : entries_) out.push_back(e.sent);
  return out;
}

size_t FakeProducer::sent_count() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

size_t FakeProducer::pending_count() const {
  absl::MutexLock lock(&mu_);
  return pending_.size();
}

int FakeProducer::refused_sends() const {
  absl::MutexLock lock(&mu_);
  return refused_sends_;
}

int FakeProducer::flush_calls() const {
  absl::MutexLock lock(&mu_);
  return flush_calls_;
}

absl::Status FakeProducer::Send(kafka::OutboundMessage message, DeliveryCallback on_delivery) {
  DeliveryCallback callback;
  absl::Status status;
  {
    absl::MutexLock lock(&mu_);
    if (fail_sends_ > 0) {
      --fail_sends_;
      ++refused_sends_;
      return send_failure_;
    }
    entries_.push_back({{std::move(message), std::nullopt}, std::move(on_delivery)});
    const size_t index = entries_.size() - 1;
    if (hold_) {
      pending_.push_back(index);
      return absl::OkStatus();
    }
    if (fail_deliveries_ > 0) {
      --fail_deliveries_;
      status = delivery_failure_;
    }
    callback = Complete(index, status);
  }
  if (callback) callback(status);
  return absl::OkStatus();
}

absl::Status FakeProducer::Flush(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  ++flush_calls_;
  auto drained = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return pending_.empty(); };
  if (!mu_.AwaitWithTimeout(absl::Condition(&drained), timeout)) {
    return absl::DeadlineExceededError("fake producer: deliveries still held");
  }
  return absl::OkStatus();
}

}  // namespace leadflow::testing
