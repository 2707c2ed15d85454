#include "tools/leadctl/bus_baseline.h"

#include <atomic>
#include <cstdio>
#include <map>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/kafka/admin.h"
#include "common/kafka/consumer_loop.h"
#include "common/kafka/rdkafka_consumer.h"
#include "common/kafka/rdkafka_producer.h"
#include "prometheus/registry.h"
#include "tools/leadctl/workload.h"

namespace leadflow::leadctl {
namespace {

constexpr int64_t kWarmupMessages = 200;

// Relay k: passes every message of topic k on to topic k + 1 with a body sampled from the
// pipeline's topic k + 1, keeping the key (so partitioning follows the lead, as in the services).
class PassThrough final : public kafka::MessageHandler {
 public:
  PassThrough(std::string next_topic, const std::vector<std::string>& bodies)
      : next_topic_(std::move(next_topic)), bodies_(bodies) {}
  absl::StatusOr<std::vector<kafka::OutboundMessage>> Handle(
      const kafka::ConsumedMessage& m) override {
    std::vector<kafka::OutboundMessage> out;
    out.push_back({next_topic_, m.key, bodies_[next_++ % bodies_.size()], {}});
    return out;
  }

 private:
  const std::string next_topic_;
  const std::vector<std::string>& bodies_;
  size_t next_ = 0;  // loop thread only
};

// The end of the chain: counts what arrives and notes when the last expected message did.
class Sink final : public kafka::MessageHandler {
 public:
  absl::StatusOr<std::vector<kafka::OutboundMessage>> Handle(const kafka::ConsumedMessage&) override
      ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    ++count_;
    last_ = absl::Now();
    return std::vector<kafka::OutboundMessage>();
  }
  // Waits until `n` messages have arrived or `until` passes; the count and the last arrival.
  std::pair<int64_t, absl::Time> WaitFor(int64_t n, absl::Time until) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    auto reached = [this, n]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return count_ >= n; };
    mu_.AwaitWithDeadline(absl::Condition(&reached), until);
    return {count_, last_};
  }

 private:
  absl::Mutex mu_;
  int64_t count_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

// One consumer loop with its own consumer, producer and metrics registry, on its own thread.
struct Stage {
  prometheus::Registry registry;
  std::unique_ptr<kafka::RdKafkaConsumer> consumer;
  std::unique_ptr<kafka::RdKafkaProducer> producer;
  std::unique_ptr<kafka::MessageHandler> handler;
  std::unique_ptr<kafka::ConsumerLoop> loop;
  std::thread thread;
};

absl::Status StartStage(Stage& stage, const BusBaselineOptions& o, const std::string& name,
                        const std::string& topic) {
  // As ServiceContext builds them: the broker, a client id, a group; everything else the
  // consumer's and producer's defaults.
  absl::StatusOr<std::unique_ptr<kafka::RdKafkaConsumer>> consumer =
      kafka::RdKafkaConsumer::Create({{"bootstrap.servers", o.bootstrap},
                                      {"client.id", name},
                                      {"group.id", absl::StrCat("leadctl-bus-", o.run, "-", name)}},
                                     stage.registry, name);
  if (!consumer.ok()) return consumer.status();
  stage.consumer = *std::move(consumer);
  absl::StatusOr<std::unique_ptr<kafka::RdKafkaProducer>> producer =
      kafka::RdKafkaProducer::Create({{"bootstrap.servers", o.bootstrap}, {"client.id", name}});
  if (!producer.ok()) return producer.status();
  stage.producer = *std::move(producer);
  kafka::ConsumerLoopOptions loop_options;
  loop_options.service = name;
  loop_options.topics = {topic};
  stage.loop = std::make_unique<kafka::ConsumerLoop>(*stage.consumer, *stage.producer,
                                                     *stage.handler, loop_options, stage.registry);
  stage.thread = std::thread([&stage] { (void)stage.loop->Run(); });
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<BusBaselineReport> RunBusBaseline(const BusBaselineOptions& o) {
  if (o.hops < 1 || static_cast<int>(o.samples.size()) != o.hops + 1) {
    return absl::InvalidArgumentError("bus baseline: need hops + 1 sample lists");
  }
  for (const std::vector<std::string>& s : o.samples) {
    if (s.empty()) return absl::InvalidArgumentError("bus baseline: an empty sample list");
  }
  std::vector<std::string> topics;
  std::vector<kafka::TopicSpec> specs;
  for (int k = 0; k <= o.hops; ++k) {
    topics.push_back(absl::StrCat(o.topic_prefix, "leadctl.bus.", o.run, ".", k));
    // An hour is plenty for the run; the topics are left behind, their data is not kept.
    specs.push_back({topics.back(), o.partitions, 1, {{"retention.ms", "3600000"}}});
  }
  if (absl::Status s =
          kafka::CreateTopics({{"bootstrap.servers", o.bootstrap}}, specs, absl::Seconds(60));
      !s.ok()) {
    return s;
  }

  std::vector<std::unique_ptr<Stage>> stages;
  Sink* sink = nullptr;
  auto stop_all = [&stages] {
    for (auto& stage : stages) {
      if (stage->loop != nullptr) stage->loop->Stop();
    }
    for (auto& stage : stages) {
      if (stage->thread.joinable()) stage->thread.join();
    }
  };
  for (int k = 0; k <= o.hops; ++k) {
    auto stage = std::make_unique<Stage>();
    if (k < o.hops) {
      stage->handler = std::make_unique<PassThrough>(topics[k + 1], o.samples[k + 1]);
    } else {
      auto s = std::make_unique<Sink>();
      sink = s.get();
      stage->handler = std::move(s);
    }
    const std::string name = k < o.hops ? absl::StrCat("bus-hop", k + 1) : "bus-sink";
    stages.push_back(std::move(stage));
    if (absl::Status s = StartStage(*stages.back(), o, name, topics[k]); !s.ok()) {
      stop_all();
      return s;
    }
  }

  std::map<std::string, std::string> producer_props = {{"bootstrap.servers", o.bootstrap}};
  if (o.producer_queue_messages > 0) {
    producer_props["queue.buffering.max.messages"] = absl::StrCat(o.producer_queue_messages);
  }
  absl::StatusOr<std::unique_ptr<kafka::RdKafkaProducer>> producer =
      kafka::RdKafkaProducer::Create(producer_props);
  if (!producer.ok()) {
    stop_all();
    return producer.status();
  }
  std::atomic<int64_t> failures{0};
  auto on_delivery = [&failures](const absl::Status& s) {
    if (!s.ok()) ++failures;
  };
  int64_t sent = 0;
  // Sends as fast as the producer takes messages: a full local queue (more in flight than
  // queue.buffering.max.messages) is waited out, not dropped.
  auto send = [&](int64_t n) {
    for (int64_t i = 0; i < n; ++i, ++sent) {
      while (!(*producer)
                  ->Send({topics[0],
                          absl::StrCat("bus-", sent),
                          o.samples[0][sent % o.samples[0].size()],
                          {}},
                         on_delivery)
                  .ok()) {
        absl::SleepFor(absl::Milliseconds(1));  // back-pressure: the poller drains the queue
      }
    }
  };
  // Warm-up: every relay has joined its group and passed messages on before the clock starts.
  send(kWarmupMessages);
  if (sink->WaitFor(kWarmupMessages, absl::Now() + absl::Seconds(120)).first < kWarmupMessages) {
    stop_all();
    return absl::DeadlineExceededError("bus baseline: the warm-up did not come through in 120 s");
  }
  const absl::Time start = absl::Now();
  send(o.messages);
  const auto [count, last] =
      sink->WaitFor(kWarmupMessages + o.messages, absl::Now() + absl::Seconds(o.timeout_seconds));
  stop_all();
  BusBaselineReport report;
  report.hops = o.hops;
  report.messages = o.messages;
  report.delivered = count - kWarmupMessages;
  report.seconds = absl::ToDoubleSeconds(last - start);
  if (report.seconds > 0) report.messages_per_second = report.delivered / report.seconds;
  for (const std::vector<std::string>& s : o.samples) {
    double bytes = 0;
    for (const std::string& b : s) bytes += static_cast<double>(b.size());
    report.mean_bytes.push_back(bytes / static_cast<double>(s.size()));
  }
  if (failures > 0) {
    return absl::UnavailableError(absl::StrCat("bus baseline: ", failures.load(), " sends failed"));
  }
  return report;
}

absl::Status RunBusCommand(const std::map<std::string, std::string>& env,
                           BusBaselineOptions options) {
  auto bootstrap = env.find("LEADFLOW_KAFKA_BOOTSTRAP_SERVERS");
  if (bootstrap == env.end() || bootstrap->second.empty()) {
    return absl::NotFoundError("the stack's env file names no LEADFLOW_KAFKA_BOOTSTRAP_SERVERS");
  }
  options.bootstrap = bootstrap->second;
  if (options.run.empty()) {
    options.run = absl::FormatTime("%Y%m%d%H%M%S", absl::Now(), absl::UTCTimeZone());
  }
  // Bodies of the size and shape of activities.inbound: Segment `track` calls of distinct users.
  std::vector<std::string> bodies;
  for (int i = 0; i < 256; ++i) {
    bodies.push_back(SegmentJson("track", absl::StrCat("bus-msg-", i), absl::StrCat("bus-user-", i),
                                 "Demo Requested", "https://example.com/pricing",
                                 absl::FromUnixSeconds(1796000000 + i)));
  }
  options.samples.assign(options.hops + 1, bodies);
  std::fprintf(stderr, "bus: %lld messages through %d pass-through hops, %d partitions\n",
               static_cast<long long>(options.messages), options.hops, options.partitions);
  absl::StatusOr<BusBaselineReport> report = RunBusBaseline(options);
  if (!report.ok()) return report.status();
  std::printf(
      "raw bus: %.0f messages/s through %d hops (%lld of %lld messages in %.2f s, %.0f bytes "
      "each)\n"
      "         %.0f consume -> produce hops per second in all\n",
      report->messages_per_second, report->hops, static_cast<long long>(report->delivered),
      static_cast<long long>(report->messages), report->seconds, report->mean_bytes[0],
      report->messages_per_second * report->hops);
  if (report->delivered < report->messages) {
    return absl::DeadlineExceededError("bus: not every message came through in time");
  }
  return absl::OkStatus();
}

}  // namespace leadflow::leadctl
