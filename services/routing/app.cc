#include "services/routing/app.h"

#include "common/kafka/topic_router.h"
#include "services/routing/grpc_service.h"
#include "services/routing/handler.h"
#include "services/routing/store.h"

namespace leadflow::routing {

absl::Status RunRouting(runtime::ServiceContext& context) {
  absl::StatusOr<std::unique_ptr<RoutingRulesSource>> rules =
      RoutingRulesSource::Create(context.ConfigPath("routing.yaml"), LoadRoutingRules);
  if (!rules.ok()) return rules.status();
  RoutingStore store(context.redis());
  RoutingOptions options;
  options.dedup_ttl = context.config().dedup_ttl;
  if (context.JsonOutput(kafka::kLeadsRouted)) options.routed_encoding = events::Encoding::kJson;
  RoutingHandler handler(**rules, store, context.topics(), context.clock(), options);
  RoutingGrpcService grpc_service(**rules, store, context.producer(), context.topics(),
                                  context.clock());

  kafka::TopicRouter router;
  router.Add(context.topics().Name(kafka::kLeadsScored),
             [&](const kafka::ConsumedMessage& m) { return handler.HandleScored(m); });
  router.Add(context.topics().Name(kafka::kLeadsOutcomes),
             [&](const kafka::ConsumedMessage& m) { return handler.HandleOutcome(m); });
  router.Add(context.topics().Name(kafka::kLeadsErasure),
             [&](const kafka::ConsumedMessage& m) { return handler.HandleErasure(m); });

  runtime::ServiceContext::RunOptions run;
  run.grpc_services = {&grpc_service};
  run.handler = &router;
  run.topics = router.Topics();
  run.reloadables = {rules->get()};
  return context.Run(std::move(run));
}

}  // namespace leadflow::routing
