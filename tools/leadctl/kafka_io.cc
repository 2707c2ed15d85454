#include "tools/leadctl/kafka_io.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/events/envelope.h"
#include "common/kafka/rdkafka_consumer.h"
#include "common/kafka/rdkafka_producer.h"

namespace leadflow::leadctl {

absl::StatusOr<std::unique_ptr<TopicReader>> TopicReader::Create(
    const std::string& bootstrap, const std::vector<std::string>& topics) {
  auto reader = std::unique_ptr<TopicReader>(new TopicReader());
  const std::string group =
      absl::StrCat("leadctl-reader-",
                   events::DeriveEventId("reader", absl::StrCat(absl::ToUnixNanos(absl::Now()))));
  absl::StatusOr<std::unique_ptr<kafka::RdKafkaConsumer>> consumer =
      kafka::RdKafkaConsumer::Create({{"bootstrap.servers", bootstrap},
                                      {"group.id", group},
                                      // Positions are committed as read, so a rebalance of
                                      // the reader's own group resumes instead of re-reading.
                                      {"enable.auto.commit", "true"},
                                      {"auto.offset.reset", "earliest"}},
                                     reader->registry_, "leadctl");
  if (!consumer.ok()) return consumer.status();
  reader->consumer_ = *std::move(consumer);
  if (absl::Status s = reader->consumer_->Subscribe(topics, nullptr); !s.ok()) return s;
  return reader;
}

bool TopicReader::ReadUntil(const std::function<void(const kafka::ConsumedMessage&)>& on_message,
                            const std::function<bool()>& done, absl::Duration deadline) {
  const absl::Time until = absl::Now() + deadline;
  while (absl::Now() < until) {
    if (done()) return true;
    absl::StatusOr<std::optional<kafka::ConsumedMessage>> m =
        consumer_->Poll(absl::Milliseconds(200));
    if (m.ok() && m->has_value()) {
      on_message(**m);
      (void)consumer_->StoreOffset((*m)->tp(), (*m)->offset + 1);
    } else if (!m.ok() && absl::Now() - last_error_report_ > absl::Seconds(5)) {
      last_error_report_ = absl::Now();  // the consumer retries by itself; say why it stalls
      std::fprintf(stderr, "leadctl: reading: %s\n", m.status().ToString().c_str());
    }
  }
  return done();
}

absl::StatusOr<std::unique_ptr<kafka::Producer>> MakeProducer(const std::string& bootstrap) {
  absl::StatusOr<std::unique_ptr<kafka::RdKafkaProducer>> p =
      kafka::RdKafkaProducer::Create({{"bootstrap.servers", bootstrap}});
  if (!p.ok()) return p.status();
  return std::unique_ptr<kafka::Producer>(std::move(*p));
}

}  // namespace leadflow::leadctl
