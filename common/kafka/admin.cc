#include "common/kafka/admin.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/kafka/rdkafka_util.h"
#include "common/kafka/topics.h"

namespace leadflow::kafka {

absl::Status CreateTopics(const std::map<std::string, std::string>& props,
                          const std::vector<TopicSpec>& topics, absl::Duration timeout) {
  absl::StatusOr<RdPtr<rd_kafka_conf_t>> conf = MakeConf(props);
  if (!conf.ok()) return conf.status();
  char errstr[512];
  RdPtr<rd_kafka_t> rk(rd_kafka_new(RD_KAFKA_PRODUCER, conf->get(), errstr, sizeof(errstr)));
  if (rk == nullptr) return absl::InvalidArgumentError(absl::StrCat("kafka admin: ", errstr));
  (void)conf->release();

  std::vector<RdPtr<rd_kafka_NewTopic_t>> owned;
  std::vector<rd_kafka_NewTopic_t*> raw;
  for (const TopicSpec& spec : topics) {
    RdPtr<rd_kafka_NewTopic_t> t(rd_kafka_NewTopic_new(
        spec.name.c_str(), spec.partitions, spec.replication_factor, errstr, sizeof(errstr)));
    if (t == nullptr) return absl::InvalidArgumentError(absl::StrCat(spec.name, ": ", errstr));
    for (const auto& [k, v] : spec.config) {
      rd_kafka_NewTopic_set_config(t.get(), k.c_str(), v.c_str());
    }
    raw.push_back(t.get());
    owned.push_back(std::move(t));
  }
  RdPtr<rd_kafka_queue_t> queue(rd_kafka_queue_new(rk.get()));
  RdPtr<rd_kafka_AdminOptions_t> options(
      rd_kafka_AdminOptions_new(rk.get(), RD_KAFKA_ADMIN_OP_CREATETOPICS));
  rd_kafka_AdminOptions_set_operation_timeout(options.get(), TimeoutMs(timeout), errstr,
                                              sizeof(errstr));
  rd_kafka_CreateTopics(rk.get(), raw.data(), raw.size(), options.get(), queue.get());
  RdPtr<rd_kafka_event_t> event(
      rd_kafka_queue_poll(queue.get(), TimeoutMs(timeout + absl::Seconds(5))));
  if (event == nullptr) return absl::DeadlineExceededError("create topics: no answer");
  if (rd_kafka_event_error(event.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return ToStatus(rd_kafka_event_error(event.get()), "create topics");
  }
  const rd_kafka_CreateTopics_result_t* result = rd_kafka_event_CreateTopics_result(event.get());
  size_t count = 0;
  const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(result, &count);
  std::vector<std::string> failures;
  for (size_t i = 0; i < count; ++i) {
    rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      failures.push_back(
          absl::StrCat(rd_kafka_topic_result_name(results[i]), ": ", rd_kafka_err2str(err)));
    }
  }
  if (!failures.empty()) {
    return absl::InternalError(absl::StrCat("create topics: ", absl::StrJoin(failures, "; ")));
  }
  // Creation is asynchronous on the broker side: wait until every topic has leaders.
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    const rd_kafka_metadata_t* md = nullptr;
    if (rd_kafka_metadata(rk.get(), 1, nullptr, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      size_t ready = 0;
      for (const TopicSpec& spec : topics) {
        for (int i = 0; i < md->topic_cnt; ++i) {
          const rd_kafka_metadata_topic_t& t = md->topics[i];
          if (spec.name != t.topic || t.err != RD_KAFKA_RESP_ERR_NO_ERROR) continue;
          bool leaders = t.partition_cnt > 0;
          for (int p = 0; p < t.partition_cnt; ++p) leaders &= t.partitions[p].leader >= 0;
          if (leaders) ++ready;
        }
      }
      rd_kafka_metadata_destroy(md);
      if (ready == topics.size()) return absl::OkStatus();
    }
    if (absl::Now() > deadline) return absl::DeadlineExceededError("topics not ready in time");
    absl::SleepFor(absl::Milliseconds(100));  // polling broker metadata, not synchronising
  }
}

absl::Status CreateLeadflowTopics(const std::map<std::string, std::string>& props,
                                  const std::string& prefix, int partitions) {
  std::vector<TopicSpec> specs;
  for (const std::string& t : AllTopics()) {
    TopicSpec spec;
    spec.name = prefix + t;
    spec.partitions = partitions;
    specs.push_back(std::move(spec));
  }
  return CreateTopics(props, specs, absl::Seconds(60));
}

}  // namespace leadflow::kafka
