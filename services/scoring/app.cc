#include "services/scoring/app.h"

#include "common/kafka/topic_router.h"
#include "services/scoring/grpc_service.h"
#include "services/scoring/handler.h"
#include "services/scoring/store.h"

namespace leadflow::scoring {

absl::Status RunScoring(runtime::ServiceContext& context) {
  absl::StatusOr<std::unique_ptr<ScoringRulesSource>> rules =
      ScoringRulesSource::Create(context.ConfigPath("scoring.yaml"), LoadScoringRules);
  if (!rules.ok()) return rules.status();
  ScoringStore store(context.redis());
  ScoringOptions options;
  options.dedup_ttl = context.config().dedup_ttl;
  ScoringHandler handler(**rules, store, context.topics(), context.clock(), options);
  ScoringGrpcService grpc_service(**rules, store, context.clock());

  kafka::TopicRouter router;
  router.Add(context.topics().Name(kafka::kLeadsCaptured),
             [&](const kafka::ConsumedMessage& m) { return handler.HandleCaptured(m); });
  router.Add(context.topics().Name(kafka::kLeadsActivity),
             [&](const kafka::ConsumedMessage& m) { return handler.HandleActivity(m); });
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

}  // namespace leadflow::scoring
