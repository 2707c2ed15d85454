#include "common/kafka/rdkafka_producer.h"

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace leadflow::kafka {

absl::StatusOr<std::unique_ptr<RdKafkaProducer>> RdKafkaProducer::Create(
    std::map<std::string, std::string> props) {
  // Defaults of the processing contract; explicit properties win.
  props.try_emplace("enable.idempotence", "true");
  props.try_emplace("acks", "all");
  props.try_emplace("linger.ms", "5");
  props.try_emplace("compression.type", "lz4");
  // Back on a restarted broker within a second (librdkafka's default backs off up to 10 s).
  props.try_emplace("reconnect.backoff.max.ms", "1000");
  absl::StatusOr<RdPtr<rd_kafka_conf_t>> conf = MakeConf(props);
  if (!conf.ok()) return conf.status();
  rd_kafka_conf_set_dr_msg_cb(conf->get(), &RdKafkaProducer::OnDelivery);
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf->get(), errstr, sizeof(errstr));
  if (rk == nullptr) return absl::InvalidArgumentError(absl::StrCat("kafka producer: ", errstr));
  (void)conf->release();  // owned by rk now
  return std::unique_ptr<RdKafkaProducer>(new RdKafkaProducer(RdPtr<rd_kafka_t>(rk)));
}

RdKafkaProducer::RdKafkaProducer(RdPtr<rd_kafka_t> rk) : rk_(std::move(rk)) {
  poller_ = std::thread([this] {
    while (!stop_.load()) rd_kafka_poll(rk_.get(), 100);
  });
}

RdKafkaProducer::~RdKafkaProducer() {
  (void)Flush(absl::Seconds(10));
  stop_.store(true);
  poller_.join();
  // Whatever is still queued fails now, so every callback runs exactly once.
  rd_kafka_purge(rk_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  rd_kafka_poll(rk_.get(), 0);
}

void RdKafkaProducer::OnDelivery(rd_kafka_t*, const rd_kafka_message_t* msg, void*) {
  auto* callback = static_cast<DeliveryCallback*>(msg->_private);
  if (callback == nullptr) return;
  (*callback)(ToStatus(msg->err, absl::StrCat("deliver to ", rd_kafka_topic_name(msg->rkt))));
  delete callback;
}

absl::Status RdKafkaProducer::Send(OutboundMessage message, DeliveryCallback on_delivery) {
  rd_kafka_headers_t* headers = rd_kafka_headers_new(message.headers.size());
  for (const Header& h : message.headers) {
    rd_kafka_header_add(headers, h.key.data(), h.key.size(), h.value.data(), h.value.size());
  }
  auto* callback = new DeliveryCallback(std::move(on_delivery));
  rd_kafka_resp_err_t err =
      rd_kafka_producev(rk_.get(), RD_KAFKA_V_TOPIC(message.topic.c_str()),
                        RD_KAFKA_V_KEY(message.key.data(), message.key.size()),
                        RD_KAFKA_V_VALUE(message.value.data(), message.value.size()),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(headers),
                        RD_KAFKA_V_OPAQUE(callback), RD_KAFKA_V_END);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    // On failure nothing was taken over: free what we allocated.
    rd_kafka_headers_destroy(headers);
    delete callback;
    return ToStatus(err, absl::StrCat("produce to ", message.topic));
  }
  return absl::OkStatus();
}

absl::Status RdKafkaProducer::Flush(absl::Duration timeout) {
  return ToStatus(rd_kafka_flush(rk_.get(), TimeoutMs(timeout)), "flush");
}

}  // namespace leadflow::kafka
