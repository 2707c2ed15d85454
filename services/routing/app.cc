#include "services/routing/app.h"

#include "common/kafka/topic_router.h"
#include "services/routing/effective_rules.h"
#include "services/routing/grpc_service.h"
#include "services/routing/handler.h"
#include "services/routing/scheduler.h"
#include "services/routing/store.h"

namespace leadflow::routing {

absl::Status RunRouting(runtime::ServiceContext& context) {
  absl::StatusOr<std::unique_ptr<RoutingRulesSource>> yaml =
      RoutingRulesSource::Create(context.ConfigPath("routing.yaml"), LoadRoutingRules);
  if (!yaml.ok()) return yaml.status();
  RoutingStore store(context.redis());
  EffectiveRules rules(**yaml, store, context.clock());
  RoutingOptions options;
  options.dedup_ttl = context.config().dedup_ttl;
  options.wave_lanes = context.config().wave_lanes;
  if (context.JsonOutput(kafka::kLeadsRouted)) options.routed_encoding = events::Encoding::kJson;
  RoutingHandler handler(rules, store, context.topics(), context.clock(), context.registry(),
                         options);
  RoutingSchedulerOptions scheduler_options;
  scheduler_options.interval = context.config().routing_pass_interval;
  RoutingScheduler scheduler(handler, rules, store, context.producer(), context.clock(),
                             context.registry(), scheduler_options);
  RoutingGrpcService grpc_service(rules, store, context.producer(), context.topics(),
                                  context.clock(), &scheduler);

  kafka::TopicRouter router;
  // A poll's scored leads go in waves of distinct leads, each wave's decisions planned on
  // chained team records and applied in one pipeline (HandleScoredBatch).
  router.Add(
      context.topics().Name(kafka::kLeadsScored),
      [&](const kafka::ConsumedMessage& m) { return handler.HandleScored(m); },
      [&](const std::vector<const kafka::ConsumedMessage*>& wave) {
        return handler.HandleScoredBatch(wave);
      });
  router.Add(context.topics().Name(kafka::kLeadsOutcomes),
             [&](const kafka::ConsumedMessage& m) { return handler.HandleOutcome(m); });
  router.Add(context.topics().Name(kafka::kLeadsErasure),
             [&](const kafka::ConsumedMessage& m) { return handler.HandleErasure(m); });

  runtime::ServiceContext::RunOptions run;
  run.grpc_services = {&grpc_service};
  run.handler = &router;
  run.topics = router.Topics();
  run.tasks = {[&scheduler](const absl::Notification& stop) { scheduler.Run(stop); }};
  run.reloadables = {yaml->get()};
  return context.Run(std::move(run));
}

}  // namespace leadflow::routing
