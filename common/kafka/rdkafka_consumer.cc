#include "common/kafka/rdkafka_consumer.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace leadflow::kafka {
namespace {

std::vector<TopicPartition> ToVector(const rd_kafka_topic_partition_list_t* list) {
  std::vector<TopicPartition> out;
  for (int i = 0; i < list->cnt; ++i) {
    out.push_back({list->elems[i].topic, list->elems[i].partition});
  }
  return out;
}

}  // namespace

RdKafkaConsumer::RdKafkaConsumer(std::map<std::string, std::string> props,
                                 prometheus::Registry& registry, std::string service)
    : props_(std::move(props)),
      service_(std::move(service)),
      lag_(prometheus::BuildGauge()
               .Name("leadflow_kafka_consumer_lag")
               .Help("Messages between the committed offset and the partition end")
               .Register(registry)),
      rejoins_(prometheus::BuildCounter()
                   .Name("leadflow_kafka_consumer_rejoins_total")
                   .Help("Fenced group memberships replaced by a new consumer handle")
                   .Register(registry)
                   .Add({{"service", service_}})) {}

absl::StatusOr<std::unique_ptr<RdKafkaConsumer>> RdKafkaConsumer::Create(
    std::map<std::string, std::string> props, prometheus::Registry& registry, std::string service) {
  props.try_emplace("enable.auto.offset.store", "false");
  props.try_emplace("enable.auto.commit", "true");
  props.try_emplace("auto.commit.interval.ms", "1000");
  props.try_emplace("auto.offset.reset", "earliest");
  props.try_emplace("statistics.interval.ms", "5000");
  props.try_emplace("enable.partition.eof", "false");
  // Recovery in seconds (measured by scripts/fault.sh, docs/BENCHMARKS.md): a member that dies
  // without leaving is noticed after 10 s instead of librdkafka's 45 s (a restarted member
  // with the same LEADFLOW_INSTANCE_ID — static membership — takes its partitions back at
  // once), and a restarted broker is reconnected to within a second instead of up to 10 s.
  props.try_emplace("session.timeout.ms", "10000");
  props.try_emplace("heartbeat.interval.ms", "1000");
  props.try_emplace("reconnect.backoff.max.ms", "1000");
  std::unique_ptr<RdKafkaConsumer> consumer(
      new RdKafkaConsumer(std::move(props), registry, std::move(service)));
  if (absl::Status s = consumer->Open(); !s.ok()) return s;
  return consumer;
}

absl::Status RdKafkaConsumer::Open() {
  absl::StatusOr<RdPtr<rd_kafka_conf_t>> conf = MakeConf(props_);
  if (!conf.ok()) return conf.status();
  rd_kafka_conf_set_opaque(conf->get(), this);
  rd_kafka_conf_set_rebalance_cb(conf->get(), &RdKafkaConsumer::OnRebalance);
  rd_kafka_conf_set_stats_cb(conf->get(), &RdKafkaConsumer::OnStats);
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf->get(), errstr, sizeof(errstr));
  if (rk == nullptr) return absl::InvalidArgumentError(absl::StrCat("kafka consumer: ", errstr));
  (void)conf->release();
  rk_.reset(rk);
  rd_kafka_poll_set_consumer(rk);
  return absl::OkStatus();
}

RdKafkaConsumer::~RdKafkaConsumer() { Close(); }

absl::Status RdKafkaConsumer::Subscribe(const std::vector<std::string>& topics,
                                        RebalanceListener* listener) {
  listener_ = listener;
  topics_ = topics;
  RdPtr<rd_kafka_topic_partition_list_t> list(
      rd_kafka_topic_partition_list_new(static_cast<int>(topics.size())));
  for (const std::string& t : topics) {
    rd_kafka_topic_partition_list_add(list.get(), t.c_str(), RD_KAFKA_PARTITION_UA);
  }
  return ToStatus(rd_kafka_subscribe(rk_.get(), list.get()), "subscribe");
}

absl::StatusOr<std::optional<ConsumedMessage>> RdKafkaConsumer::Poll(absl::Duration timeout) {
  // Never a negative timeout (TimeoutMs): with every partition paused (a retry's backoff) such a
  // poll never returned, and the service stopped consuming without a word.
  RdPtr<rd_kafka_message_t> msg(rd_kafka_consumer_poll(rk_.get(), TimeoutMs(timeout)));
  if (msg == nullptr) return std::nullopt;
  if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (msg->err == RD_KAFKA_RESP_ERR__FATAL) {
      char reason[512];
      rd_kafka_resp_err_t fatal = rd_kafka_fatal_error(rk_.get(), reason, sizeof(reason));
      absl::Status error = absl::InternalError(
          absl::StrCat("fatal kafka error ", rd_kafka_err2name(fatal), ": ", reason));
      if (fatal != RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID) return error;
      if (!rejoin_budget_.TryAcquire(absl::Now())) {
        return absl::InternalError(absl::StrCat(
            error.message(), " (fenced ", kMaxRejoins + 1, " times within ",
            absl::FormatDuration(kRejoinWindow),
            ": does another running consumer use group.instance.id ",
            props_.contains("group.instance.id") ? props_.at("group.instance.id") : "?", "?)"));
      }
      if (absl::Status s = Rejoin(error); !s.ok()) return s;
      return std::nullopt;
    }
    // Informational (partition EOF, transient broker trouble that librdkafka retries, topics
    // not yet created): keep polling.
    if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      spdlog::warn("kafka consumer: {}", rd_kafka_message_errstr(msg.get()));
    }
    return std::nullopt;
  }
  ConsumedMessage out;
  out.topic = rd_kafka_topic_name(msg->rkt);
  out.partition = msg->partition;
  out.offset = msg->offset;
  if (msg->key != nullptr) out.key.assign(static_cast<const char*>(msg->key), msg->key_len);
  if (msg->payload != nullptr) {
    out.value.assign(static_cast<const char*>(msg->payload), msg->len);
  }
  rd_kafka_timestamp_type_t ts_type;
  const int64_t ts = rd_kafka_message_timestamp(msg.get(), &ts_type);
  if (ts >= 0) out.timestamp = absl::FromUnixMillis(ts);
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(msg.get(), &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const char* name;
    const void* value;
    size_t size;
    for (size_t i = 0;
         rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
         ++i) {
      out.headers.push_back({name, value == nullptr
                                       ? std::string()
                                       : std::string(static_cast<const char*>(value), size)});
    }
  }
  return out;
}

absl::Status RdKafkaConsumer::StoreOffset(const TopicPartition& tp, int64_t next_offset) {
  RdPtr<rd_kafka_topic_partition_list_t> list(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition)->offset =
      next_offset;
  return ToStatus(rd_kafka_offsets_store(rk_.get(), list.get()), "store offset");
}

absl::Status RdKafkaConsumer::Seek(const TopicPartition& tp, int64_t offset) {
  RdPtr<rd_kafka_topic_partition_list_t> list(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition)->offset = offset;
  RdPtr<rd_kafka_error_t> error(rd_kafka_seek_partitions(rk_.get(), list.get(), 5000));
  if (error != nullptr) return ToStatus(rd_kafka_error_code(error.get()), "seek");
  return ToStatus(list->elems[0].err, "seek");
}

absl::Status RdKafkaConsumer::PauseAll() {
  rd_kafka_topic_partition_list_t* raw = nullptr;
  if (auto err = rd_kafka_assignment(rk_.get(), &raw); err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return ToStatus(err, "assignment");
  }
  RdPtr<rd_kafka_topic_partition_list_t> list(raw);
  return ToStatus(rd_kafka_pause_partitions(rk_.get(), list.get()), "pause");
}

absl::Status RdKafkaConsumer::ResumeAll() {
  rd_kafka_topic_partition_list_t* raw = nullptr;
  if (auto err = rd_kafka_assignment(rk_.get(), &raw); err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return ToStatus(err, "assignment");
  }
  RdPtr<rd_kafka_topic_partition_list_t> list(raw);
  return ToStatus(rd_kafka_resume_partitions(rk_.get(), list.get()), "resume");
}

absl::Status RdKafkaConsumer::Commit() {
  rd_kafka_resp_err_t err = rd_kafka_commit(rk_.get(), nullptr, /*async=*/0);
  if (err == RD_KAFKA_RESP_ERR__NO_OFFSET) return absl::OkStatus();  // nothing new to commit
  return ToStatus(err, "commit");
}

absl::Status RdKafkaConsumer::Rejoin(const absl::Status& fenced) {
  spdlog::warn("kafka consumer fenced, rejoining the group with a new handle: {}",
               std::string(fenced.message()));
  // Work of the partitions held is finished or dropped now; their stored offsets cannot be
  // committed by a fenced member, so the inputs after the last commit are redone.
  if (!assigned_.empty() && listener_ != nullptr) {
    const std::vector<TopicPartition> revoked = assigned_;
    listener_->OnRevoked(revoked);
  }
  RemoveLag(assigned_);
  assigned_.clear();
  rejoining_ = true;
  rd_kafka_consumer_close(rk_.get());
  rk_.reset();
  rejoining_ = false;
  if (absl::Status s = Open(); !s.ok()) return s;
  rejoins_.Increment();
  return Subscribe(topics_, listener_);
}

void RdKafkaConsumer::RemoveLag(const std::vector<TopicPartition>& partitions) {
  for (const TopicPartition& tp : partitions) {
    lag_.Remove(&lag_.Add(
        {{"service", service_}, {"topic", tp.topic}, {"partition", absl::StrCat(tp.partition)}}));
  }
}

void RdKafkaConsumer::Close() {
  if (closed_ || rk_ == nullptr) return;
  closed_ = true;
  // rd_kafka_consumer_close commits stored offsets (auto-commit) and leaves the group,
  // running the revoke callback on this thread.
  rd_kafka_consumer_close(rk_.get());
}

void RdKafkaConsumer::OnRebalance(rd_kafka_t*, rd_kafka_resp_err_t err,
                                  rd_kafka_topic_partition_list_t* partitions, void* opaque) {
  static_cast<RdKafkaConsumer*>(opaque)->HandleRebalance(err, partitions);
}

void RdKafkaConsumer::HandleRebalance(rd_kafka_resp_err_t err,
                                      rd_kafka_topic_partition_list_t* partitions) {
  const bool cooperative = std::strcmp(rd_kafka_rebalance_protocol(rk_.get()), "COOPERATIVE") == 0;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    if (cooperative) {
      RdPtr<rd_kafka_error_t> e(rd_kafka_incremental_assign(rk_.get(), partitions));
    } else {
      rd_kafka_assign(rk_.get(), partitions);
    }
    const std::vector<TopicPartition> added = ToVector(partitions);
    assigned_.insert(assigned_.end(), added.begin(), added.end());
    if (listener_ != nullptr) listener_->OnAssigned(added);
    return;
  }
  // Revoked or lost: let the listener finish and commit work before the partitions go.
  const std::vector<TopicPartition> revoked = ToVector(partitions);
  std::erase_if(assigned_, [&](const TopicPartition& tp) {
    return std::find(revoked.begin(), revoked.end(), tp) != revoked.end();
  });
  if (listener_ != nullptr && !rejoining_) listener_->OnRevoked(revoked);
  RemoveLag(revoked);
  if (cooperative) {
    RdPtr<rd_kafka_error_t> e(rd_kafka_incremental_unassign(rk_.get(), partitions));
  } else {
    rd_kafka_assign(rk_.get(), nullptr);
  }
}

int RdKafkaConsumer::OnStats(rd_kafka_t*, char* json, size_t json_len, void* opaque) {
  static_cast<RdKafkaConsumer*>(opaque)->HandleStats(json, json_len);
  return 0;  // librdkafka frees the buffer
}

void RdKafkaConsumer::HandleStats(const char* json, size_t len) {
  nlohmann::json stats = nlohmann::json::parse(json, json + len, nullptr, /*exceptions=*/false);
  if (stats.is_discarded() || !stats.contains("topics")) return;
  for (const auto& [topic, t] : stats["topics"].items()) {
    if (!t.contains("partitions")) continue;
    for (const auto& [partition, p] : t["partitions"].items()) {
      if (partition == "-1") continue;  // librdkafka's internal UA partition
      const int64_t lag = p.value("consumer_lag", int64_t{-1});
      if (lag < 0) continue;  // not assigned to us or not yet known
      lag_.Add({{"service", service_}, {"topic", topic}, {"partition", partition}})
          .Set(static_cast<double>(lag));
    }
  }
}

}  // namespace leadflow::kafka
