#pragma once

// Shared by the consumer-loop integration tests: a deterministic handler and a runner that wires
// the production adapters (RdKafkaConsumer, RdKafkaProducer) into a ConsumerLoop on a thread.

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/kafka/consumer_loop.h"
#include "common/kafka/rdkafka_consumer.h"
#include "common/kafka/rdkafka_producer.h"
#include "common/testing/kafka_test_client.h"
#include "common/testing/metrics.h"
#include "prometheus/registry.h"

namespace leadflow::kafka::loop_test {

inline constexpr char kInputIdHeader[] = "input-id";

// Input i (value "i") becomes one output keyed by the input's key, with value "out-i" and a header
// naming the input; inputs listed as poison fail with INVALID_ARGUMENT. A pure function of the
// input, like a handler with apply-once memos: a redo produces the same output.
class EchoHandler final : public MessageHandler {
 public:
  // `work`: time each input takes, like a handler's Redis round trips (so that a test can have
  // work in progress when a rebalance arrives).
  EchoHandler(std::string output_topic, std::set<std::string> poison = {},
              absl::Duration work = absl::ZeroDuration())
      : output_topic_(std::move(output_topic)), poison_(std::move(poison)), work_(work) {}

  absl::StatusOr<std::vector<OutboundMessage>> Handle(const ConsumedMessage& m) override {
    {
      absl::MutexLock lock(&mu_);
      ++handled_[m.value];
    }
    if (work_ > absl::ZeroDuration()) absl::SleepFor(work_);  // simulated work, not a wait
    if (poison_.contains(m.value)) {
      return absl::InvalidArgumentError(absl::StrCat("poison input ", m.value));
    }
    OutboundMessage out;
    out.topic = output_topic_;
    out.key = m.key;
    out.value = absl::StrCat("out-", m.value);
    out.headers = {{kInputIdHeader, m.value}, {"content-type", "text/plain"}};
    return std::vector<OutboundMessage>{std::move(out)};
  }

  size_t distinct_handled() const {
    absl::MutexLock lock(&mu_);
    return handled_.size();
  }
  size_t total_handled() const {
    absl::MutexLock lock(&mu_);
    size_t n = 0;
    for (const auto& [k, v] : handled_) n += v;
    return n;
  }

 private:
  const std::string output_topic_;
  const std::set<std::string> poison_;
  const absl::Duration work_;
  mutable absl::Mutex mu_;
  std::map<std::string, int> handled_ ABSL_GUARDED_BY(mu_);
};

// A Consumer decorator that records the partitions currently assigned, for tests that must know
// when a rebalance has happened. Forwards everything, rebalance callbacks included.
class AssignmentRecorder final : public Consumer, private RebalanceListener {
 public:
  explicit AssignmentRecorder(std::unique_ptr<Consumer> inner) : inner_(std::move(inner)) {}

  size_t assigned() const { return assigned_.load(); }
  int rebalances() const { return rebalances_.load(); }

  absl::Status Subscribe(const std::vector<std::string>& topics,
                         RebalanceListener* listener) override {
    listener_ = listener;
    return inner_->Subscribe(topics, this);
  }
  absl::StatusOr<std::optional<ConsumedMessage>> Poll(absl::Duration timeout) override {
    return inner_->Poll(timeout);
  }
  absl::Status StoreOffset(const TopicPartition& tp, int64_t next_offset) override {
    return inner_->StoreOffset(tp, next_offset);
  }
  absl::Status Seek(const TopicPartition& tp, int64_t offset) override {
    return inner_->Seek(tp, offset);
  }
  absl::Status PauseAll() override { return inner_->PauseAll(); }
  absl::Status ResumeAll() override { return inner_->ResumeAll(); }
  absl::Status Commit() override { return inner_->Commit(); }
  void Close() override { inner_->Close(); }

 private:
  void OnAssigned(const std::vector<TopicPartition>& partitions) override {
    if (listener_ != nullptr) listener_->OnAssigned(partitions);
    assigned_.fetch_add(partitions.size());
    rebalances_.fetch_add(1);
  }
  void OnRevoked(const std::vector<TopicPartition>& partitions) override {
    if (listener_ != nullptr) listener_->OnRevoked(partitions);
    assigned_.fetch_sub(std::min(assigned_.load(), partitions.size()));
    rebalances_.fetch_add(1);
  }

  std::unique_ptr<Consumer> inner_;
  RebalanceListener* listener_ = nullptr;
  std::atomic<size_t> assigned_{0};
  std::atomic<int> rebalances_{0};
};

// A ConsumerLoop over real adapters, running on its own thread until Stop() or destruction.
class LoopRunner {
 public:
  static absl::StatusOr<std::unique_ptr<LoopRunner>> Start(
      const testing::KafkaProperties& props, const std::string& group,
      std::vector<std::string> topics, MessageHandler& handler,
      const testing::KafkaProperties& producer_overrides = {},
      const testing::KafkaProperties& consumer_overrides = {}) {
    auto runner = std::unique_ptr<LoopRunner>(new LoopRunner());
    testing::KafkaProperties producer_props = props;
    for (const auto& [k, v] : producer_overrides) producer_props[k] = v;
    absl::StatusOr<std::unique_ptr<RdKafkaProducer>> producer =
        RdKafkaProducer::Create(producer_props);
    if (!producer.ok()) return producer.status();
    runner->producer_ = *std::move(producer);
    testing::KafkaProperties consumer_props = props;
    consumer_props["group.id"] = group;
    consumer_props["session.timeout.ms"] = "10000";
    consumer_props["heartbeat.interval.ms"] = "500";
    for (const auto& [k, v] : consumer_overrides) consumer_props[k] = v;
    absl::StatusOr<std::unique_ptr<RdKafkaConsumer>> consumer =
        RdKafkaConsumer::Create(consumer_props, runner->registry_, "loop-test");
    if (!consumer.ok()) return consumer.status();
    runner->consumer_ = std::make_unique<AssignmentRecorder>(*std::move(consumer));
    ConsumerLoopOptions options;
    options.service = "loop-test";
    options.topics = std::move(topics);
    options.poll_timeout = absl::Milliseconds(50);
    options.initial_backoff = absl::Milliseconds(10);
    options.max_backoff = absl::Milliseconds(200);
    options.flush_timeout = absl::Seconds(30);
    // The tests' handlers take up to 10 ms per input on purpose; small batches keep a member
    // polling (and so taking part in a rebalance) every 100 ms or so, as services with ~1 ms
    // handlers do with the default batch.
    options.max_batch = 10;
    runner->loop_ = std::make_unique<ConsumerLoop>(*runner->consumer_, *runner->producer_, handler,
                                                   std::move(options), runner->registry_);
    runner->thread_ = std::thread([r = runner.get()] {
      r->status_ = r->loop_->Run();
      r->finished_ = true;
    });
    return runner;
  }

  ~LoopRunner() { (void)Stop(); }

  // Graceful stop: finishes in-flight work, commits, leaves the group. Run()'s result.
  absl::Status Stop() {
    if (thread_.joinable()) {
      loop_->Stop();
      thread_.join();
    }
    return status_;
  }

  ConsumerLoop& loop() { return *loop_; }
  // True once Run() has returned (after Stop(), or on its own after a fatal error).
  bool finished() const { return finished_.load(); }
  // Partitions currently assigned to this instance.
  size_t assigned() const { return consumer_->assigned(); }

  // Value of one of the loop's counters (labels: service only), -1 if absent.
  double Counter(const std::string& name) { return testing::MetricValue(registry_, name); }

 private:
  LoopRunner() = default;

  prometheus::Registry registry_;
  std::unique_ptr<Producer> producer_;
  std::unique_ptr<AssignmentRecorder> consumer_;
  std::unique_ptr<ConsumerLoop> loop_;
  std::thread thread_;
  std::atomic<bool> finished_{false};
  absl::Status status_;
};

// Inputs 0..n-1 for `topic`: key "lead-<i % keys>", value "<i>".
inline std::vector<OutboundMessage> Inputs(const std::string& topic, int from, int to,
                                           int keys = 17) {
  std::vector<OutboundMessage> out;
  for (int i = from; i < to; ++i) {
    out.push_back({topic,
                   absl::StrCat("lead-", i % keys),
                   absl::StrCat(i),
                   {{"content-type", "text/plain"}}});
  }
  return out;
}

inline std::optional<std::string> Header(const ConsumedMessage& m, std::string_view key) {
  std::optional<std::string_view> v = m.HeaderValue(key);
  if (!v.has_value()) return std::nullopt;
  return std::string(*v);
}

// Input ids of the outputs read, as a multiset count.
inline std::map<std::string, int> CountByInput(const std::vector<ConsumedMessage>& outputs) {
  std::map<std::string, int> counts;
  for (const ConsumedMessage& m : outputs) ++counts[Header(m, kInputIdHeader).value_or("?")];
  return counts;
}

}  // namespace leadflow::kafka::loop_test
