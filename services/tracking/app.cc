#include "services/tracking/app.h"

#include "common/config/yaml_proto.h"
#include "common/kafka/handler.h"
#include "common/kafka/topic_router.h"
#include "services/tracking/grpc_service.h"
#include "services/tracking/handler.h"
#include "services/tracking/store.h"

namespace leadflow::tracking {

absl::Status RunTracking(runtime::ServiceContext& context) {
  config::v1::TrackingConfig tracking_config;
  if (absl::Status s = config::LoadYamlProto(context.ConfigPath("tracking.yaml"), &tracking_config);
      !s.ok()) {
    return s;
  }
  absl::StatusOr<ActivityNormalizer> normalizer = ActivityNormalizer::Create(tracking_config);
  if (!normalizer.ok()) return normalizer.status();
  TrackingOptions options;
  if (tracking_config.dedup_window_hours() > 0) {
    options.dedup_window = absl::Hours(tracking_config.dedup_window_hours());
  }
  if (tracking_config.anonymous_cap() > 0) options.anonymous_cap = tracking_config.anonymous_cap();
  TrackingStore store(context.redis());
  TrackingHandler handler(*normalizer, store, context.topics(), context.clock(), options);
  TrackingGrpcService grpc_service(handler, store, context.producer(), context.clock(),
                                   context.registry());

  kafka::TopicRouter router;
  router.Add(
      context.topics().Name(kafka::kActivitiesInbound),
      [&](const kafka::ConsumedMessage& m) { return handler.HandleInbound(m); },
      kafka::InLanes(context.config().wave_lanes,
                     [&](const std::vector<const kafka::ConsumedMessage*>& wave) {
                       return handler.HandleInboundBatch(wave);
                     }));
  router.Add(context.topics().Name(kafka::kLeadsCaptured),
             [&](const kafka::ConsumedMessage& m) { return handler.HandleCaptured(m); });
  router.Add(context.topics().Name(kafka::kLeadsErasure),
             [&](const kafka::ConsumedMessage& m) { return handler.HandleErasure(m); });

  runtime::ServiceContext::RunOptions run;
  run.grpc_services = {&grpc_service};
  run.tasks = {[&grpc_service](const absl::Notification& stop) { grpc_service.RunOutbox(stop); }};
  run.handler = &router;
  run.topics = router.Topics();
  return context.Run(std::move(run));
}

}  // namespace leadflow::tracking
