#include "services/nurturing/app.h"

#include "absl/strings/str_cat.h"
#include "common/config/yaml_proto.h"
#include "common/kafka/handler.h"
#include "common/kafka/topic_router.h"
#include "services/nurturing/grpc_service.h"
#include "services/nurturing/handler.h"
#include "services/nurturing/scheduler.h"
#include "services/nurturing/store.h"

namespace leadflow::nurturing {

absl::StatusOr<std::shared_ptr<const CompiledNurtureTracks>> LoadNurtureTracks(
    const std::string& path) {
  return config::LoadRules<config::v1::NurtureTracks, CompiledNurtureTracks>(
      path, [](const config::v1::NurtureTracks& tracks) { return CompileNurtureTracks(tracks); });
}

absl::Status RunNurturing(runtime::ServiceContext& context) {
  absl::StatusOr<std::unique_ptr<config::Reloadable<CompiledNurtureTracks>>> rules =
      config::Reloadable<CompiledNurtureTracks>::Create(context.ConfigPath("nurture.yaml"),
                                                        LoadNurtureTracks);
  if (!rules.ok()) return rules.status();
  config::Reloadable<CompiledNurtureTracks>& reloadable = **rules;
  const TracksSource tracks = [&reloadable] { return reloadable.Current(); };

  // Delivery rules (quiet hours, frequency cap, cooldown) are read once, at start-up.
  config::v1::NurtureTracks file;
  if (absl::Status s = config::LoadYamlProto(context.ConfigPath("nurture.yaml"), &file); !s.ok()) {
    return s;
  }
  absl::StatusOr<NurturingPolicy> policy = PolicyFromConfig(file.delivery());
  if (!policy.ok()) return policy.status();
  NurturingOptions options;
  options.policy = *policy;
  options.dedup_ttl = context.config().dedup_ttl;
  options.enrollments_topic = context.topics().Name(kafka::kNurtureEnrollments);
  if (context.JsonOutput(kafka::kNurtureEnrollments)) {
    options.enrollments_encoding = events::Encoding::kJson;
  }
  // The drain rate and lease, like the delivery rules, are read once, at start-up.
  absl::StatusOr<SchedulerOptions> scheduler_options = SchedulerOptionsFrom(file.scheduling());
  if (!scheduler_options.ok()) return scheduler_options.status();
  if (context.JsonOutput(kafka::kNurtureTouches)) {
    scheduler_options->encoding = events::Encoding::kJson;
  }

  NurturingStore store(context.redis());
  NurturingHandler handler(store, tracks, context.clock(), options);
  NurtureScheduler scheduler(store, tracks, context.producer(), context.topics(), context.clock(),
                             context.registry(), options, *scheduler_options);
  NurturingGrpcService grpc_service(handler, tracks, context.producer());

  kafka::TopicRouter router;
  // A poll's batch goes in waves of distinct leads (one lead's events stay in order), each wave
  // one pipelined apply-once round (ApplyOnce::RunBatch).
  router.Add(
      context.topics().Name(kafka::kLeadsScored),
      [&](const kafka::ConsumedMessage& m) { return handler.HandleScored(m); },
      kafka::InLanes(context.config().wave_lanes,
                     [&](const std::vector<const kafka::ConsumedMessage*>& wave) {
                       return handler.HandleScoredBatch(wave);
                     }));
  router.Add(context.topics().Name(kafka::kLeadsOutcomes),
             [&](const kafka::ConsumedMessage& m) { return handler.HandleOutcome(m); });
  router.Add(context.topics().Name(kafka::kLeadsRouted),
             [&](const kafka::ConsumedMessage& m) { return handler.HandleRouted(m); });
  router.Add(
      context.topics().Name(kafka::kLeadsActivity),
      [&](const kafka::ConsumedMessage& m) { return handler.HandleActivity(m); },
      kafka::InLanes(context.config().wave_lanes,
                     [&](const std::vector<const kafka::ConsumedMessage*>& wave) {
                       return handler.HandleActivityBatch(wave);
                     }));
  router.Add(context.topics().Name(kafka::kLeadsCaptured),
             [&](const kafka::ConsumedMessage& m) { return handler.HandleCaptured(m); });
  router.Add(context.topics().Name(kafka::kLeadsErasure),
             [&](const kafka::ConsumedMessage& m) { return handler.HandleErasure(m); });

  runtime::ServiceContext::RunOptions run;
  run.grpc_services = {&grpc_service};
  run.handler = &router;
  run.topics = router.Topics();
  run.tasks = {[&scheduler](const absl::Notification& stop) { scheduler.Run(stop); }};
  run.reloadables = {&reloadable};
  return context.Run(std::move(run));
}

}  // namespace leadflow::nurturing
