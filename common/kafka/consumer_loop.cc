#include "common/kafka/consumer_loop.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/metrics/metrics.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "spdlog/spdlog.h"

namespace leadflow::kafka {

struct ConsumerLoop::Metrics {
  explicit Metrics(prometheus::Registry& registry, const std::string& service)
      : consumed(prometheus::BuildCounter()
                     .Name("leadflow_messages_consumed_total")
                     .Help("Input messages taken from Kafka, by topic")
                     .Register(registry)),
        produced(prometheus::BuildCounter()
                     .Name("leadflow_messages_produced_total")
                     .Help("Output messages acknowledged by the broker")
                     .Register(registry)
                     .Add({{"service", service}})),
        dead_lettered(prometheus::BuildCounter()
                          .Name("leadflow_messages_dead_lettered_total")
                          .Help("Poison inputs sent to a DLQ, by topic and error class")
                          .Register(registry)),
        retries(prometheus::BuildCounter()
                    .Name("leadflow_handler_retries_total")
                    .Help("Transient handler failures retried")
                    .Register(registry)
                    .Add({{"service", service}})),
        rewinds(prometheus::BuildCounter()
                    .Name("leadflow_partition_rewinds_total")
                    .Help("Partitions rewound after a failed output delivery")
                    .Register(registry)
                    .Add({{"service", service}})),
        in_flight(prometheus::BuildGauge()
                      .Name("leadflow_inputs_in_flight")
                      .Help("Inputs whose outputs await broker acknowledgement")
                      .Register(registry)
                      .Add({{"service", service}})),
        batch_size(prometheus::BuildHistogram()
                       .Name("leadflow_consumer_batch_size")
                       .Help("Inputs handed to the handler at once")
                       .Register(registry)
                       .Add({{"service", service}},
                            prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128,
                                                                    256, 512})),
        handle_seconds(prometheus::BuildHistogram()
                           .Name("leadflow_handle_seconds")
                           .Help("Time spent in the handler per input, including retries")
                           .Register(registry)
                           .Add({{"service", service}}, metrics::LatencyBuckets())),
        service(service) {}

  prometheus::Family<prometheus::Counter>& consumed;
  prometheus::Counter& produced;
  prometheus::Family<prometheus::Counter>& dead_lettered;
  prometheus::Counter& retries;
  prometheus::Counter& rewinds;
  prometheus::Gauge& in_flight;
  prometheus::Histogram& batch_size;
  prometheus::Histogram& handle_seconds;
  std::string service;
};

ConsumerLoop::ConsumerLoop(Consumer& consumer, Producer& producer, MessageHandler& handler,
                           ConsumerLoopOptions options, prometheus::Registry& registry)
    : consumer_(consumer),
      producer_(producer),
      handler_(handler),
      options_(std::move(options)),
      metrics_(std::make_unique<Metrics>(registry, options_.service)) {}

ConsumerLoop::~ConsumerLoop() = default;

void ConsumerLoop::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
}

void ConsumerLoop::SetServing(bool serving) {
  if (serving_.exchange(serving) != serving) {
    if (serving) {
      spdlog::info("consumer loop healthy again");
    } else {
      spdlog::warn("consumer loop not serving: dependency failing");
    }
  }
}

absl::Status ConsumerLoop::Run() {
  if (absl::Status s = consumer_.Subscribe(options_.topics, this); !s.ok()) return s;
  spdlog::info("consuming {} topic(s)", options_.topics.size());
  absl::Status result = absl::OkStatus();
  while (!stop_.HasBeenNotified()) {
    DrainCompletions();
    if (tracker_.InFlight() >= options_.max_in_flight) {
      WaitForCompletions(options_.poll_timeout);
      continue;
    }
    absl::StatusOr<std::optional<ConsumedMessage>> polled = consumer_.Poll(options_.poll_timeout);
    if (!polled.ok()) {
      result = polled.status();
      spdlog::error("fatal consumer error: {}", result.ToString());
      break;
    }
    if (!polled->has_value()) continue;
    ProcessBatch(CollectBatch(**std::move(polled), &result));
    if (!result.ok()) {
      spdlog::error("fatal consumer error: {}", result.ToString());
      break;
    }
  }
  FlushAndDrain();
  consumer_.Close();
  spdlog::info("consumer loop stopped");
  return result;
}

std::vector<ConsumedMessage> ConsumerLoop::CollectBatch(ConsumedMessage first,
                                                        absl::Status* fatal) {
  std::vector<ConsumedMessage> batch;
  batch.push_back(std::move(first));
  collected_ = batch.size();
  collecting_ = true;
  revoked_while_collecting_.clear();
  while (batch.size() < options_.max_batch &&
         tracker_.InFlight() + batch.size() < options_.max_in_flight) {
    absl::StatusOr<std::optional<ConsumedMessage>> polled = consumer_.Poll(absl::ZeroDuration());
    if (!polled.ok()) {
      *fatal = polled.status();
      break;
    }
    if (!polled->has_value()) break;
    batch.push_back(**std::move(polled));
    collected_ = batch.size();
  }
  collecting_ = false;
  if (revoked_while_collecting_.empty()) return batch;
  // An input polled before its partition was revoked belongs to the next owner now; one polled
  // after it (the partition came back) is kept.
  std::vector<ConsumedMessage> kept;
  for (size_t i = 0; i < batch.size(); ++i) {
    const bool revoked =
        std::any_of(revoked_while_collecting_.begin(), revoked_while_collecting_.end(),
                    [&](const auto& revocation) {
                      return revocation.first > i && revocation.second == batch[i].tp();
                    });
    if (!revoked) kept.push_back(std::move(batch[i]));
  }
  return kept;
}

void ConsumerLoop::ProcessBatch(const std::vector<ConsumedMessage>& batch) {
  if (batch.empty()) return;
  std::vector<uint64_t> generations;
  std::vector<const ConsumedMessage*> inputs;
  generations.reserve(batch.size());
  inputs.reserve(batch.size());
  for (const ConsumedMessage& message : batch) {
    metrics_->consumed.Add({{"service", options_.service}, {"topic", message.topic}}).Increment();
    generations.push_back(tracker_.Begin(message.tp(), message.offset));
    inputs.push_back(&message);
  }
  metrics_->batch_size.Observe(static_cast<double>(batch.size()));
  const absl::Time start = absl::Now();
  std::vector<HandleResult> results = handler_.HandleBatch(inputs);
  const double per_input =
      absl::ToDoubleSeconds(absl::Now() - start) / static_cast<double>(batch.size());
  size_t i = 0;
  for (; i < results.size() && i < batch.size(); ++i) {
    if (IsTransient(results[i].status())) break;
    metrics_->handle_seconds.Observe(per_input);
    Finish(batch[i], generations[i], std::move(results[i]));
  }
  if (i > 0) {
    consecutive_failures_ = 0;
    SetServing(true);
  }
  // From the first transient result on: one by one, with retries.
  for (; i < batch.size(); ++i) {
    // A rewind or revocation while handling earlier inputs: this one will come again.
    if (!tracker_.IsCurrent(batch[i].tp(), generations[i])) continue;
    unsent_ = batch.size() - i;
    const absl::Time one = absl::Now();
    const absl::Status failed_in_batch =
        i < results.size() ? results[i].status() : absl::OkStatus();
    absl::StatusOr<std::vector<OutboundMessage>> outputs =
        HandleWithRetry(batch[i], generations[i], failed_in_batch);
    metrics_->handle_seconds.Observe(absl::ToDoubleSeconds(absl::Now() - one));
    unsent_ = 0;
    Finish(batch[i], generations[i], std::move(outputs));
  }
}

void ConsumerLoop::Finish(const ConsumedMessage& message, uint64_t generation,
                          absl::StatusOr<std::vector<OutboundMessage>> outputs) {
  // Rewound or revoked since it began: the input is redone, and its outputs would be dropped.
  if (!tracker_.IsCurrent(message.tp(), generation)) return;
  if (outputs.ok()) {
    SendAll(message, generation, *std::move(outputs));
  } else if (IsPoison(outputs.status())) {
    metrics_->dead_lettered
        .Add({{"service", options_.service},
              {"topic", message.topic},
              {"class", std::string(absl::StatusCodeToString(outputs.status().code()))}})
        .Increment();
    spdlog::warn("poison input {}/{}@{} to DLQ: {}", message.topic, message.partition,
                 message.offset, std::string(outputs.status().message()));
    std::vector<OutboundMessage> dlq;
    dlq.push_back(DlqMessageFor(message, outputs.status()));
    SendAll(message, generation, std::move(dlq));
  }
  // Otherwise cancelled (stopping or revoked): the input stays unfinished and is redelivered.
}

absl::StatusOr<std::vector<OutboundMessage>> ConsumerLoop::HandleWithRetry(
    const ConsumedMessage& message, uint64_t generation, absl::Status failed_in_batch) {
  absl::Duration backoff = options_.initial_backoff;
  bool paused = false;
  // A transient failure in the batch counts as the first attempt: back off before the next.
  absl::StatusOr<std::vector<OutboundMessage>> result =
      failed_in_batch.ok() ? handler_.Handle(message) : failed_in_batch;
  for (;;) {
    if (result.ok() || IsPoison(result.status())) {
      if (paused) (void)consumer_.ResumeAll();
      consecutive_failures_ = 0;
      SetServing(true);
      return result;
    }
    metrics_->retries.Increment();
    if (++consecutive_failures_ >= options_.failures_before_unhealthy) SetServing(false);
    spdlog::warn("transient failure on {}/{}@{}, retry in {}: {}", message.topic, message.partition,
                 message.offset, absl::FormatDuration(backoff), result.status().ToString());
    // Keep polling (paused) instead of sleeping: heartbeats and rebalances continue, and
    // deliveries of earlier inputs still complete.
    if (!paused) paused = consumer_.PauseAll().ok();
    retrying_ = true;  // a revocation during these polls must not wait for this input
    const absl::Time until = absl::Now() + backoff;
    while (!stop_.HasBeenNotified()) {
      // Read the clock once: checked and subtracted separately, the wait could come out negative.
      const absl::Duration left = until - absl::Now();
      if (left <= absl::ZeroDuration()) break;
      absl::StatusOr<std::optional<ConsumedMessage>> polled =
          consumer_.Poll(std::min(options_.poll_timeout, left));
      if (polled.ok() && polled->has_value()) {
        // A message fetched before the pause took effect: it must be seen again later.
        (void)consumer_.Seek((*polled)->tp(), (*polled)->offset);
      }
      DrainCompletions();
    }
    retrying_ = false;
    if (stop_.HasBeenNotified() || !tracker_.IsCurrent(message.tp(), generation)) {
      if (paused) (void)consumer_.ResumeAll();
      if (tracker_.IsCurrent(message.tp(), generation)) {
        // Stopping: forget the input so shutdown does not wait for it; it is not committed.
        tracker_.Reset(message.tp());
      }
      return absl::CancelledError("stopping or partition revoked");
    }
    backoff = std::min(backoff * 2, options_.max_backoff);
    result = handler_.Handle(message);
  }
}

void ConsumerLoop::SendAll(const ConsumedMessage& message, uint64_t generation,
                           std::vector<OutboundMessage> outputs, bool is_dlq) {
  const TopicPartition tp = message.tp();
  if (outputs.empty()) {
    absl::MutexLock lock(&mu_);
    completions_.push_back({tp, message.offset, generation, absl::OkStatus(), nullptr, is_dlq});
    return;
  }
  auto input = std::make_shared<const ConsumedMessage>(message);
  // One shared countdown per input: the last acknowledgement completes the input.
  struct Pending {
    absl::Mutex mu;
    size_t remaining;
    absl::Status first_error;
  };
  auto pending = std::make_shared<Pending>();
  pending->remaining = outputs.size();
  const int64_t offset = message.offset;
  auto on_delivery = [this, pending, tp, offset, generation, input,
                      is_dlq](const absl::Status& status) {
    bool last = false;
    absl::Status result;
    {
      absl::MutexLock lock(&pending->mu);
      if (!status.ok() && pending->first_error.ok()) pending->first_error = status;
      last = --pending->remaining == 0;
      result = pending->first_error;
    }
    if (status.ok()) metrics_->produced.Increment();
    if (last) {
      absl::MutexLock lock(&mu_);
      completions_.push_back({tp, offset, generation, result, input, is_dlq});
    }
  };
  for (OutboundMessage& out : outputs) {
    absl::Status sent;
    // A full local queue is backpressure, not failure: wait for deliveries and try again.
    while (true) {
      sent = producer_.Send(out, on_delivery);
      if (!absl::IsUnavailable(sent) || stop_.HasBeenNotified()) break;
      WaitForCompletions(absl::Milliseconds(10));
    }
    if (!sent.ok()) on_delivery(sent);  // counts as this output's (failed) delivery
  }
}

OutboundMessage ConsumerLoop::DlqMessageFor(const ConsumedMessage& message,
                                            const absl::Status& reason) const {
  OutboundMessage dlq;
  dlq.topic = message.topic + options_.dlq_suffix;
  dlq.key = message.key;
  // An input larger than the producer may send (message.max.bytes, 1 MB by default; the
  // broker took it compressed) would never be accepted on the DLQ either and stall its
  // partition: its DLQ copy keeps the first part and says how large the original was.
  if (message.value.size() > kMaxDlqValueBytes) {
    dlq.value = message.value.substr(0, kMaxDlqValueBytes);
  } else {
    dlq.value = message.value;
  }
  dlq.headers = message.headers;
  if (message.value.size() > kMaxDlqValueBytes) {
    dlq.headers.push_back({kDlqTruncatedHeader, absl::StrCat(message.value.size())});
  }
  dlq.headers.push_back({kDlqTopicHeader, message.topic});
  dlq.headers.push_back({kDlqPartitionHeader, absl::StrCat(message.partition)});
  dlq.headers.push_back({kDlqOffsetHeader, absl::StrCat(message.offset)});
  dlq.headers.push_back(
      {kDlqErrorClassHeader, std::string(absl::StatusCodeToString(reason.code()))});
  dlq.headers.push_back({kDlqErrorMessageHeader, std::string(reason.message())});
  dlq.headers.push_back({kDlqServiceHeader, options_.service});
  return dlq;
}

void ConsumerLoop::DrainCompletions() {
  std::vector<Completion> done;
  {
    absl::MutexLock lock(&mu_);
    done.swap(completions_);
  }
  size_t store_failures = 0;
  std::string first_store_failure;
  for (const Completion& c : done) {
    if (!tracker_.IsCurrent(c.tp, c.generation)) continue;
    if (!c.status.ok() && IsPoison(c.status) && !c.was_dlq && c.input != nullptr) {
      // The broker can never take this output (too large, invalid): the input goes to the DLQ
      // with the reason instead of being redone forever.
      spdlog::error("output of {}/{}@{} rejected permanently: {}; input to DLQ", c.tp.topic,
                    c.tp.partition, c.offset, c.status.ToString());
      metrics_->dead_lettered
          .Add({{"service", options_.service},
                {"topic", c.tp.topic},
                {"class", std::string(absl::StatusCodeToString(c.status.code()))}})
          .Increment();
      const absl::Status reason(
          c.status.code(), absl::StrCat("output rejected by the broker: ", c.status.message()));
      std::vector<OutboundMessage> dlq;
      dlq.push_back(DlqMessageFor(*c.input, reason));
      SendAll(*c.input, c.generation, std::move(dlq), /*is_dlq=*/true);
      continue;
    }
    if (!c.status.ok()) {
      // The output could not be delivered: redo the input. Everything after it in the partition
      // is redone too; apply-once makes that harmless.
      spdlog::error("delivery failed for effects of {}/{}@{}: {}; rewinding", c.tp.topic,
                    c.tp.partition, c.offset, c.status.ToString());
      metrics_->rewinds.Increment();
      SetServing(false);
      // Reset abandons every unfinished input of the partition, so rewind to the oldest of them,
      // not to the one whose delivery happened to fail first.
      const int64_t rewind_to =
          std::min(c.offset, tracker_.OldestInFlight(c.tp).value_or(c.offset));
      tracker_.Reset(c.tp);
      if (absl::Status s = consumer_.Seek(c.tp, rewind_to); !s.ok()) {
        spdlog::error("seek failed: {}", s.ToString());
      }
      continue;
    }
    if (std::optional<int64_t> commit = tracker_.Complete(c.tp, c.offset, c.generation)) {
      if (absl::Status s = consumer_.StoreOffset(c.tp, *commit); !s.ok()) {
        // Not committed: the inputs are redone by the partition's next owner. One line per
        // drain, not per input (a fenced consumer refuses every offset of its last batches).
        if (store_failures++ == 0) {
          first_store_failure =
              absl::StrCat(c.tp.topic, "/", c.tp.partition, "=", *commit, ": ", s.ToString());
        }
      }
    }
  }
  if (store_failures > 0) {
    spdlog::warn("store offset failed for {} completion(s), first {}", store_failures,
                 first_store_failure);
  }
  metrics_->in_flight.Set(static_cast<double>(tracker_.InFlight()));
}

void ConsumerLoop::WaitForCompletions(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto has_completions = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return !completions_.empty(); };
  mu_.AwaitWithTimeout(absl::Condition(&has_completions), timeout);
}

void ConsumerLoop::FlushAndDrain() {
  // The inputs of the batch in hand not sent yet (the one being retried and those after it) have
  // no outputs in flight: there is nothing to wait for.
  const size_t keep = retrying_ ? unsent_ : 0;
  const absl::Time deadline = absl::Now() + options_.flush_timeout;
  while (tracker_.InFlight() > keep && absl::Now() < deadline) {
    DrainCompletions();
    if (tracker_.InFlight() <= keep) break;
    WaitForCompletions(absl::Milliseconds(50));
  }
  DrainCompletions();
  if (tracker_.InFlight() > keep) {
    spdlog::warn("{} input(s) unfinished at flush deadline; they will be redelivered",
                 tracker_.InFlight());
  }
}

void ConsumerLoop::OnAssigned(const std::vector<TopicPartition>& partitions) {
  spdlog::info("assigned {} partition(s)", partitions.size());
}

void ConsumerLoop::OnRevoked(const std::vector<TopicPartition>& partitions) {
  spdlog::info("revoking {} partition(s): finishing in-flight work", partitions.size());
  if (collecting_) {
    // The batch being collected has begun nothing yet; CollectBatch drops these inputs.
    for (const TopicPartition& tp : partitions) {
      revoked_while_collecting_.push_back({collected_, tp});
    }
  }
  FlushAndDrain();
  if (absl::Status s = consumer_.Commit(); !s.ok()) {
    spdlog::warn("commit on revoke failed: {}", s.ToString());
  }
  for (const TopicPartition& tp : partitions) tracker_.Reset(tp);
}

}  // namespace leadflow::kafka
