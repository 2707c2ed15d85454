#include "common/testing/kafka_test_client.h"

#include <librdkafka/rdkafka.h>
// rdkafka_mock.h must come after rdkafka.h.
#include <librdkafka/rdkafka_mock.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/kafka/admin.h"
#include "common/kafka/rdkafka_consumer.h"
#include "common/kafka/rdkafka_producer.h"
#include "common/kafka/rdkafka_util.h"
#include "common/testing/test_env.h"
#include "common/testing/wait.h"

namespace leadflow::testing {
namespace {

int Millis(absl::Duration d) { return static_cast<int>(absl::ToInt64Milliseconds(d)); }

// A bare consumer handle for offset queries (no subscription, no group join).
absl::StatusOr<kafka::RdPtr<rd_kafka_t>> MakeQueryConsumer(KafkaProperties props) {
  props.try_emplace("group.id", TestEnv::UniqueName("leadflow-test-query"));
  props.try_emplace("enable.auto.commit", "false");
  absl::StatusOr<kafka::RdPtr<rd_kafka_conf_t>> conf = kafka::MakeConf(props);
  if (!conf.ok()) return conf.status();
  char errstr[512];
  kafka::RdPtr<rd_kafka_t> rk(rd_kafka_new(RD_KAFKA_CONSUMER, conf->get(), errstr, sizeof(errstr)));
  if (rk == nullptr) return absl::InvalidArgumentError(absl::StrCat("kafka consumer: ", errstr));
  (void)conf->release();
  return rk;
}

}  // namespace

KafkaProperties KafkaProps(const std::string& bootstrap) {
  return {
      {"bootstrap.servers", bootstrap},
      {"reconnect.backoff.ms", "50"},
      {"reconnect.backoff.max.ms", "500"},
      {"topic.metadata.refresh.interval.ms", "1000"},
  };
}

absl::Status WaitForKafka(const KafkaProperties& props, absl::Duration timeout) {
  absl::StatusOr<kafka::RdPtr<rd_kafka_conf_t>> conf = kafka::MakeConf(props);
  if (!conf.ok()) return conf.status();
  char errstr[512];
  kafka::RdPtr<rd_kafka_t> rk(rd_kafka_new(RD_KAFKA_PRODUCER, conf->get(), errstr, sizeof(errstr)));
  if (rk == nullptr) return absl::InvalidArgumentError(absl::StrCat("kafka: ", errstr));
  (void)conf->release();
  const absl::Time deadline = absl::Now() + timeout;
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
  do {
    const rd_kafka_metadata_t* md = nullptr;
    err = rd_kafka_metadata(rk.get(), /*all_topics=*/0, nullptr, &md,
                            std::max(100, Millis(deadline - absl::Now())));
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_metadata_destroy(md);
      return absl::OkStatus();
    }
  } while (absl::Now() < deadline);
  return absl::UnavailableError(
      absl::StrCat("kafka at ", props.at("bootstrap.servers"), " did not answer within ",
                   absl::FormatDuration(timeout), ": ", rd_kafka_err2str(err)));
}

absl::Status CreateTopics(const KafkaProperties& props, const std::string& prefix,
                          const std::vector<std::string>& bases, int partitions,
                          absl::Duration timeout) {
  std::vector<kafka::TopicSpec> specs;
  for (const std::string& base : bases) {
    kafka::TopicSpec spec;
    spec.name = prefix + base;
    spec.partitions = partitions;
    spec.replication_factor = 1;
    specs.push_back(std::move(spec));
  }
  return kafka::CreateTopics(props, specs, timeout);
}

absl::Status DeleteTopics(const KafkaProperties& props, const std::vector<std::string>& names,
                          absl::Duration timeout) {
  absl::StatusOr<kafka::RdPtr<rd_kafka_conf_t>> conf = kafka::MakeConf(props);
  if (!conf.ok()) return conf.status();
  char errstr[512];
  kafka::RdPtr<rd_kafka_t> rk(rd_kafka_new(RD_KAFKA_PRODUCER, conf->get(), errstr, sizeof(errstr)));
  if (rk == nullptr) return absl::InvalidArgumentError(absl::StrCat("kafka admin: ", errstr));
  (void)conf->release();
  std::vector<rd_kafka_DeleteTopic_t*> topics;
  for (const std::string& name : names) topics.push_back(rd_kafka_DeleteTopic_new(name.c_str()));
  kafka::RdPtr<rd_kafka_queue_t> queue(rd_kafka_queue_new(rk.get()));
  rd_kafka_DeleteTopics(rk.get(), topics.data(), topics.size(), nullptr, queue.get());
  rd_kafka_DeleteTopic_destroy_array(topics.data(), topics.size());
  kafka::RdPtr<rd_kafka_event_t> event(rd_kafka_queue_poll(queue.get(), Millis(timeout)));
  if (event == nullptr) return absl::DeadlineExceededError("delete topics: no answer");
  if (rd_kafka_event_error(event.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return kafka::ToStatus(rd_kafka_event_error(event.get()), "delete topics");
  }
  size_t count = 0;
  const rd_kafka_topic_result_t** results =
      rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(event.get()), &count);
  for (size_t i = 0; i < count; ++i) {
    const rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
      return kafka::ToStatus(err, absl::StrCat("delete ", rd_kafka_topic_result_name(results[i])));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<kafka::Producer>> MakeProducer(const KafkaProperties& props) {
  absl::StatusOr<std::unique_ptr<kafka::RdKafkaProducer>> producer =
      kafka::RdKafkaProducer::Create(props);
  if (!producer.ok()) return producer.status();
  return std::unique_ptr<kafka::Producer>(std::move(*producer));
}

absl::Status ProduceAndWait(kafka::Producer& producer, kafka::OutboundMessage message,
                            absl::Duration timeout) {
  return producer.SendAndWait(std::move(message), timeout);
}

absl::Status ProduceAll(kafka::Producer& producer, std::vector<kafka::OutboundMessage> messages,
                        absl::Duration timeout) {
  struct Acks {
    absl::Mutex mu;
    size_t pending = 0;
    absl::Status first_error;
  };
  auto acks = std::make_shared<Acks>();
  acks->pending = messages.size();
  for (kafka::OutboundMessage& m : messages) {
    absl::Status sent = producer.Send(std::move(m), [acks](const absl::Status& s) {
      absl::MutexLock lock(&acks->mu);
      if (!s.ok() && acks->first_error.ok()) acks->first_error = s;
      --acks->pending;
    });
    if (!sent.ok()) {
      absl::MutexLock lock(&acks->mu);
      if (acks->first_error.ok()) acks->first_error = sent;
      --acks->pending;
    }
  }
  absl::MutexLock lock(&acks->mu);
  auto done = [&acks]() ABSL_SHARED_LOCKS_REQUIRED(acks->mu) { return acks->pending == 0; };
  if (!acks->mu.AwaitWithTimeout(absl::Condition(&done), timeout)) {
    return absl::DeadlineExceededError(
        absl::StrCat(acks->pending, " message(s) not acknowledged in time"));
  }
  return acks->first_error;
}

absl::StatusOr<std::map<int32_t, int64_t>> EndOffsets(const KafkaProperties& props,
                                                      const std::string& topic, int partitions,
                                                      absl::Duration timeout) {
  absl::StatusOr<kafka::RdPtr<rd_kafka_t>> rk = MakeQueryConsumer(props);
  if (!rk.ok()) return rk.status();
  std::map<int32_t, int64_t> out;
  for (int32_t p = 0; p < partitions; ++p) {
    int64_t low = 0;
    int64_t high = 0;
    rd_kafka_resp_err_t err =
        rd_kafka_query_watermark_offsets(rk->get(), topic.c_str(), p, &low, &high, Millis(timeout));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return kafka::ToStatus(err, absl::StrCat("watermarks of ", topic, "/", p));
    }
    out[p] = high;
  }
  rd_kafka_consumer_close(rk->get());
  return out;
}

absl::StatusOr<std::map<int32_t, int64_t>> CommittedOffsets(const KafkaProperties& props,
                                                            const std::string& group,
                                                            const std::string& topic,
                                                            int partitions,
                                                            absl::Duration timeout) {
  KafkaProperties with_group = props;
  with_group["group.id"] = group;
  absl::StatusOr<kafka::RdPtr<rd_kafka_t>> rk = MakeQueryConsumer(with_group);
  if (!rk.ok()) return rk.status();
  kafka::RdPtr<rd_kafka_topic_partition_list_t> list(rd_kafka_topic_partition_list_new(partitions));
  for (int32_t p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p);
  }
  rd_kafka_resp_err_t err = rd_kafka_committed(rk->get(), list.get(), Millis(timeout));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return kafka::ToStatus(err, absl::StrCat("committed offsets of ", group));
  }
  std::map<int32_t, int64_t> out;
  for (int i = 0; i < list->cnt; ++i) {
    const rd_kafka_topic_partition_t& tp = list->elems[i];
    if (tp.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return kafka::ToStatus(tp.err,
                             absl::StrCat("committed offset of ", topic, "/", tp.partition));
    }
    out[tp.partition] = tp.offset < 0 ? -1 : tp.offset;  // RD_KAFKA_OFFSET_INVALID: none
  }
  rd_kafka_consumer_close(rk->get());
  return out;
}

// ---------------------------------------------------------------------------------------------
// TopicReader

absl::StatusOr<std::unique_ptr<TopicReader>> TopicReader::Start(KafkaProperties props,
                                                                std::vector<std::string> topics) {
  props.try_emplace("group.id", TestEnv::UniqueName("leadflow-test-reader"));
  props["auto.offset.reset"] = "earliest";
  props["enable.auto.commit"] = "false";
  std::unique_ptr<TopicReader> reader(new TopicReader());
  absl::StatusOr<std::unique_ptr<kafka::RdKafkaConsumer>> consumer =
      kafka::RdKafkaConsumer::Create(std::move(props), reader->registry_, "test-reader");
  if (!consumer.ok()) return consumer.status();
  reader->consumer_ = *std::move(consumer);
  if (absl::Status s = reader->consumer_->Subscribe(topics, reader.get()); !s.ok()) return s;
  reader->topics_ = std::move(topics);
  reader->thread_ = std::thread([r = reader.get()] { r->Run(); });
  return reader;
}

TopicReader::~TopicReader() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void TopicReader::Run() {
  while (!stop_.load()) {
    absl::StatusOr<std::optional<kafka::ConsumedMessage>> polled =
        consumer_->Poll(absl::Milliseconds(50));
    if (!polled.ok()) {
      absl::MutexLock lock(&mu_);
      status_ = polled.status();
      break;
    }
    if (polled->has_value()) {
      absl::MutexLock lock(&mu_);
      messages_.push_back(**std::move(polled));
    }
  }
  consumer_->Close();  // on the polling thread, like every other consumer call
}

void TopicReader::OnAssigned(const std::vector<kafka::TopicPartition>& partitions) {
  if (!partitions.empty()) assigned_.store(true);
}

bool TopicReader::WaitForCount(size_t n, absl::Duration deadline) const {
  absl::MutexLock lock(&mu_);
  auto enough = [this, n]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return messages_.size() >= n || !status_.ok();
  };
  mu_.AwaitWithTimeout(absl::Condition(&enough), deadline);
  return messages_.size() >= n;
}

bool TopicReader::WaitForAssignment(absl::Duration deadline) const {
  return WaitFor([this] { return assigned_.load(); }, deadline);
}

size_t TopicReader::Count() const {
  absl::MutexLock lock(&mu_);
  return messages_.size();
}

std::vector<kafka::ConsumedMessage> TopicReader::Messages() const {
  absl::MutexLock lock(&mu_);
  return messages_;
}

absl::Status TopicReader::status() const {
  absl::MutexLock lock(&mu_);
  return status_;
}

// ---------------------------------------------------------------------------------------------
// MockKafkaCluster

struct MockKafkaCluster::Impl {
  kafka::RdPtr<rd_kafka_t> rk;  // owns the mock cluster (test.mock.num.brokers)
  rd_kafka_mock_cluster_t* cluster = nullptr;
};

MockKafkaCluster::MockKafkaCluster(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {
  bootstrap_ = rd_kafka_mock_cluster_bootstraps(impl_->cluster);
}

MockKafkaCluster::~MockKafkaCluster() = default;

absl::StatusOr<std::unique_ptr<MockKafkaCluster>> MockKafkaCluster::Start(int brokers) {
  absl::StatusOr<kafka::RdPtr<rd_kafka_conf_t>> conf =
      kafka::MakeConf({{"test.mock.num.brokers", absl::StrCat(brokers)}});
  if (!conf.ok()) return conf.status();
  char errstr[512];
  auto impl = std::make_unique<Impl>();
  impl->rk.reset(rd_kafka_new(RD_KAFKA_PRODUCER, conf->get(), errstr, sizeof(errstr)));
  if (impl->rk == nullptr) {
    return absl::InternalError(absl::StrCat("mock cluster: ", errstr));
  }
  (void)conf->release();
  // rd_kafka_handle_mock_cluster: rk → its mock cluster (rd_kafka_mock_cluster_handle is the
  // reverse direction, cluster → rk).
  impl->cluster = rd_kafka_handle_mock_cluster(impl->rk.get());
  if (impl->cluster == nullptr) return absl::InternalError("mock cluster: no handle");
  return std::unique_ptr<MockKafkaCluster>(new MockKafkaCluster(std::move(impl)));
}

absl::Status MockKafkaCluster::CreateTopic(const std::string& topic, int partitions) {
  return kafka::ToStatus(
      rd_kafka_mock_topic_create(impl_->cluster, topic.c_str(), partitions, /*replication=*/1),
      absl::StrCat("mock create ", topic));
}

absl::Status MockKafkaCluster::PushRequestErrors(int16_t api_key, const std::vector<int>& errors) {
  std::vector<rd_kafka_resp_err_t> codes;
  for (int e : errors) codes.push_back(static_cast<rd_kafka_resp_err_t>(e));
  rd_kafka_mock_push_request_errors_array(impl_->cluster, api_key, codes.size(), codes.data());
  return absl::OkStatus();
}

absl::Status MockKafkaCluster::SetBrokerDown(int32_t broker_id) {
  return kafka::ToStatus(rd_kafka_mock_broker_set_down(impl_->cluster, broker_id),
                         absl::StrCat("mock broker ", broker_id, " down"));
}

absl::Status MockKafkaCluster::SetBrokerUp(int32_t broker_id) {
  return kafka::ToStatus(rd_kafka_mock_broker_set_up(impl_->cluster, broker_id),
                         absl::StrCat("mock broker ", broker_id, " up"));
}

}  // namespace leadflow::testing
