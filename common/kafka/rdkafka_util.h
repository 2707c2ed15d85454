#pragma once

// librdkafka plumbing shared by the adapters: RAII for its handles, the one mapping of its error
// codes to absl::Status, and configuration from a property map. Only adapter files include this.

#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "librdkafka/rdkafka.h"

namespace leadflow::kafka {

struct RdKafkaDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
  void operator()(rd_kafka_conf_t* conf) const { rd_kafka_conf_destroy(conf); }
  void operator()(rd_kafka_message_t* m) const { rd_kafka_message_destroy(m); }
  void operator()(rd_kafka_topic_partition_list_t* l) const {
    rd_kafka_topic_partition_list_destroy(l);
  }
  void operator()(rd_kafka_headers_t* h) const { rd_kafka_headers_destroy(h); }
  void operator()(rd_kafka_error_t* e) const { rd_kafka_error_destroy(e); }
  void operator()(rd_kafka_queue_t* q) const { rd_kafka_queue_destroy(q); }
  void operator()(rd_kafka_event_t* e) const { rd_kafka_event_destroy(e); }
  void operator()(rd_kafka_AdminOptions_t* o) const { rd_kafka_AdminOptions_destroy(o); }
  void operator()(rd_kafka_NewTopic_t* t) const { rd_kafka_NewTopic_destroy(t); }
};
template <typename T>
using RdPtr = std::unique_ptr<T, RdKafkaDeleter>;

// The one place librdkafka error codes become statuses. Errors librdkafka retries by itself
// (transport, leader changes, timeouts) map to UNAVAILABLE; errors about the request itself to
// INVALID_ARGUMENT; the rest to INTERNAL.
absl::Status ToStatus(rd_kafka_resp_err_t err, const std::string& context);

// A timeout in librdkafka's milliseconds: at least 0. librdkafka waits for ever on a negative one
// (rd_kafka_consumer_poll, rd_kafka_flush, rd_kafka_queue_poll), and a deadline computed as
// `until - Now()` can come out negative.
int TimeoutMs(absl::Duration timeout);

// Builds a configuration from librdkafka properties ("bootstrap.servers" → value). Errors name
// the offending property.
absl::StatusOr<RdPtr<rd_kafka_conf_t>> MakeConf(const std::map<std::string, std::string>& props);

}  // namespace leadflow::kafka
