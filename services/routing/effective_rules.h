#pragma once

// EffectiveRules: the routing rules in force = routing.yaml (hot-reloaded) with the teams stored
// by UpsertTeam / UpsertRep (RoutingStore::OverridesKey) laid over it.
//
// Precedence: a stored team replaces the YAML team of the same id, whole (reps, strategy, SLA,
// caps), and survives YAML reloads: overrides are operator decisions made at run time and only
// another UpsertTeam / UpsertRep changes them. Teams only the overrides know are added. Rules
// and default_team always come from the YAML. If a YAML reload makes the overlay invalid (e.g.
// an override escalates to a team the new file removed), the YAML alone is used and the error
// is logged until the file or the overrides are fixed; a gRPC upsert is validated against the
// YAML in force and refused instead.
//
// Replicas: each replica re-reads the overrides record at most every `refresh` (one Redis read)
// and recompiles only when the YAML or the record's version changed. A replica that made the
// change itself sees it at once (Invalidate).
//
// Thread safety: all methods may be called concurrently.

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/config/yaml_proto.h"
#include "common/runtime/clock.h"
#include "leadflow/internal/v1/routing_state.pb.h"
#include "services/routing/engine.h"
#include "services/routing/store.h"

namespace leadflow::routing {

// The routing rules file, reloaded when config/routing.yaml changes.
using RoutingRulesSource = config::Reloadable<CompiledRoutingRules>;

// The YAML rule file with `overrides` laid over it (WithTeams; teams new to the YAML are
// appended in id order, so every replica builds the same file).
config::v1::RoutingRules WithOverrides(const CompiledRoutingRules& yaml,
                                       const internal::v1::RoutingOverrides& overrides);
// WithOverrides, compiled (and so validated exactly like routing.yaml).
absl::StatusOr<std::shared_ptr<const CompiledRoutingRules>> CompileWithOverrides(
    const CompiledRoutingRules& yaml, const internal::v1::RoutingOverrides& overrides);

class EffectiveRules {
 public:
  // Borrows everything; all must outlive this. `refresh` zero re-reads on every call.
  EffectiveRules(const RoutingRulesSource& yaml, RoutingStore& store, const runtime::Clock& clock,
                 absl::Duration refresh = absl::Seconds(1));

  // The rules in force. UNAVAILABLE only when the overrides were never read and Redis cannot be
  // reached; afterwards a failed refresh keeps the last known overrides.
  absl::StatusOr<std::shared_ptr<const CompiledRoutingRules>> Current();
  // The YAML rules alone (what upserts are validated against).
  std::shared_ptr<const CompiledRoutingRules> Yaml() const { return yaml_.Current(); }
  // Makes the next Current() re-read the overrides (after this replica changed them).
  void Invalidate();

 private:
  const RoutingRulesSource& yaml_;
  RoutingStore& store_;
  const runtime::Clock& clock_;
  const absl::Duration refresh_;

  absl::Mutex mu_;
  absl::Time next_read_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  bool read_once_ ABSL_GUARDED_BY(mu_) = false;
  int64_t overrides_version_ ABSL_GUARDED_BY(mu_) = -1;
  internal::v1::RoutingOverrides overrides_ ABSL_GUARDED_BY(mu_);
  // The compiled overlay and what it was built from.
  std::shared_ptr<const CompiledRoutingRules> built_from_yaml_ ABSL_GUARDED_BY(mu_);
  int64_t built_from_version_ ABSL_GUARDED_BY(mu_) = -1;
  std::shared_ptr<const CompiledRoutingRules> effective_ ABSL_GUARDED_BY(mu_);
};

}  // namespace leadflow::routing
