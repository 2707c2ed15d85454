#include "services/capture/app.h"

#include "common/config/yaml_proto.h"
#include "common/kafka/handler.h"
#include "common/kafka/topic_router.h"
#include "services/capture/grpc_service.h"
#include "services/capture/handler.h"
#include "services/capture/store.h"

namespace leadflow::capture {

absl::Status RunCapture(runtime::ServiceContext& context) {
  config::v1::CaptureConfig capture_config;
  if (absl::Status s = config::LoadYamlProto(context.ConfigPath("capture.yaml"), &capture_config);
      !s.ok()) {
    return s;
  }
  const Normalizer normalizer(capture_config);
  CaptureStore store(context.redis());
  CaptureOptions options;
  if (capture_config.request_id_retention_hours() > 0) {
    options.request_retention = absl::Hours(capture_config.request_id_retention_hours());
  }
  absl::StatusOr<double> fuzzy_threshold = FuzzyThresholdOf(capture_config);
  if (!fuzzy_threshold.ok()) return fuzzy_threshold.status();
  options.fuzzy_threshold = *fuzzy_threshold;
  CaptureHandler handler(normalizer, store, context.topics(), context.clock(), context.registry(),
                         options);
  CaptureGrpcService grpc_service(handler, store, normalizer, context.producer(),
                                  context.registry());

  kafka::TopicRouter router;
  router.Add(
      context.topics().Name(kafka::kLeadsInbound),
      [&](const kafka::ConsumedMessage& m) { return handler.HandleInbound(m); },
      kafka::InLanes(context.config().wave_lanes,
                     [&](const std::vector<const kafka::ConsumedMessage*>& wave) {
                       return handler.HandleInboundBatch(wave);
                     }));
  router.Add(context.topics().Name(kafka::kLeadsOutcomes),
             [&](const kafka::ConsumedMessage& m) { return handler.HandleOutcome(m); });
  router.Add(context.topics().Name(kafka::kLeadsErasure),
             [&](const kafka::ConsumedMessage& m) { return handler.HandleErasure(m); });

  runtime::ServiceContext::RunOptions run;
  run.grpc_services = {&grpc_service};
  run.tasks = {[&grpc_service](const absl::Notification& stop) { grpc_service.RunOutbox(stop); }};
  run.handler = &router;
  run.topics = router.Topics();
  return context.Run(std::move(run));
}

}  // namespace leadflow::capture
