#include "services/scoring/app.h"

#include "common/kafka/handler.h"
#include "common/kafka/topic_router.h"
#include "services/scoring/grpc_service.h"
#include "services/scoring/handler.h"
#include "services/scoring/store.h"
#include "services/scoring/tasks.h"

namespace leadflow::scoring {

absl::Status RunScoring(runtime::ServiceContext& context) {
  absl::StatusOr<std::unique_ptr<ScoringRulesSource>> rules =
      ScoringRulesSource::Create(context.ConfigPath("scoring.yaml"), LoadScoringRules);
  if (!rules.ok()) return rules.status();
  ScoringStore store(context.redis());
  ModelCache model(store, context.clock());
  ScoringOptions options;
  options.dedup_ttl = context.config().dedup_ttl;
  ScoringHandler handler(**rules, store, model, context.topics(), context.clock(), options);
  ScoringGrpcService grpc_service(**rules, store, model, context.clock());

  // Task settings are read once, at start-up (a reload keeps the running ones).
  const config::v1::ScoringTasks& tasks = (*rules)->Current()->tasks();
  DecaySchedulerOptions decay_options;
  if (tasks.decay_interval_ms() > 0) {
    decay_options.interval = absl::Milliseconds(tasks.decay_interval_ms());
  }
  if (tasks.decay_max_claims_per_pass() > 0) {
    decay_options.max_claims_per_pass = tasks.decay_max_claims_per_pass();
  }
  RescorerOptions rescore_options;
  if (tasks.rescore_leads_per_second() > 0) {
    rescore_options.leads_per_second = tasks.rescore_leads_per_second();
  }
  DecayScheduler decay(handler, store, context.producer(), context.clock(), context.registry(),
                       decay_options);
  Rescorer rescorer(handler, **rules, store, context.producer(), context.clock(),
                    context.registry(), rescore_options);

  kafka::TopicRouter router;
  // The two high-volume topics also take a poll's messages at once, in waves of distinct leads.
  router.Add(
      context.topics().Name(kafka::kLeadsCaptured),
      [&](const kafka::ConsumedMessage& m) { return handler.HandleCaptured(m); },
      kafka::InLanes(context.config().wave_lanes,
                     [&](const std::vector<const kafka::ConsumedMessage*>& wave) {
                       return handler.HandleCapturedBatch(wave);
                     }));
  router.Add(
      context.topics().Name(kafka::kLeadsActivity),
      [&](const kafka::ConsumedMessage& m) { return handler.HandleActivity(m); },
      kafka::InLanes(context.config().wave_lanes,
                     [&](const std::vector<const kafka::ConsumedMessage*>& wave) {
                       return handler.HandleActivityBatch(wave);
                     }));
  router.Add(context.topics().Name(kafka::kLeadsOutcomes),
             [&](const kafka::ConsumedMessage& m) { return handler.HandleOutcome(m); });
  router.Add(context.topics().Name(kafka::kLeadsErasure),
             [&](const kafka::ConsumedMessage& m) { return handler.HandleErasure(m); });

  runtime::ServiceContext::RunOptions run;
  run.grpc_services = {&grpc_service};
  run.handler = &router;
  run.topics = router.Topics();
  run.tasks = {[&decay](const absl::Notification& stop) { decay.Run(stop); },
               [&rescorer](const absl::Notification& stop) { rescorer.Run(stop); }};
  run.reloadables = {rules->get()};
  return context.Run(std::move(run));
}

}  // namespace leadflow::scoring
