#include "services/routing/effective_rules.h"

#include <algorithm>
#include <utility>

#include "spdlog/spdlog.h"

namespace leadflow::routing {

config::v1::RoutingRules WithOverrides(const CompiledRoutingRules& yaml,
                                       const internal::v1::RoutingOverrides& overrides) {
  std::vector<config::v1::Team> teams;
  teams.reserve(overrides.teams_size());
  for (const auto& [id, team] : overrides.teams()) teams.push_back(team);
  // proto maps have no order; new teams must land in the same place on every replica.
  std::sort(teams.begin(), teams.end(),
            [](const config::v1::Team& a, const config::v1::Team& b) { return a.id() < b.id(); });
  return WithTeams(yaml.source(), teams);
}

absl::StatusOr<std::shared_ptr<const CompiledRoutingRules>> CompileWithOverrides(
    const CompiledRoutingRules& yaml, const internal::v1::RoutingOverrides& overrides) {
  return CompileRoutingRules(WithOverrides(yaml, overrides));
}

EffectiveRules::EffectiveRules(const RoutingRulesSource& yaml, RoutingStore& store,
                               const runtime::Clock& clock, absl::Duration refresh)
    : yaml_(yaml), store_(store), clock_(clock), refresh_(refresh) {}

void EffectiveRules::Invalidate() {
  absl::MutexLock lock(&mu_);
  next_read_ = absl::InfinitePast();
}

absl::StatusOr<std::shared_ptr<const CompiledRoutingRules>> EffectiveRules::Current() {
  const std::shared_ptr<const CompiledRoutingRules> yaml = yaml_.Current();
  const absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  if (refresh_ <= absl::ZeroDuration() || now >= next_read_) {
    absl::StatusOr<std::pair<int64_t, internal::v1::RoutingOverrides>> loaded =
        store_.LoadOverrides();
    if (loaded.ok()) {
      read_once_ = true;
      next_read_ = now + refresh_;
      if (loaded->first != overrides_version_) {
        overrides_version_ = loaded->first;
        overrides_ = std::move(loaded->second);
      }
    } else if (!read_once_) {
      return loaded.status();
    } else {
      // Keep routing on the last known overrides; try again after `refresh`, not on every call.
      next_read_ = now + refresh_;
      spdlog::warn("routing: reading team overrides failed, using the last known ones: {}",
                   loaded.status().ToString());
    }
  }
  if (overrides_.teams().empty()) return yaml;
  if (effective_ != nullptr && built_from_yaml_ == yaml &&
      built_from_version_ == overrides_version_) {
    return effective_;
  }
  absl::StatusOr<std::shared_ptr<const CompiledRoutingRules>> compiled =
      CompileWithOverrides(*yaml, overrides_);
  built_from_yaml_ = yaml;
  built_from_version_ = overrides_version_;
  if (!compiled.ok()) {
    spdlog::error(
        "routing: the stored team overrides do not fit routing.yaml {} ({}); routing with the "
        "YAML teams alone until the file or the overrides are fixed",
        yaml->version(), compiled.status().ToString());
    effective_ = yaml;
  } else {
    effective_ = *std::move(compiled);
  }
  return effective_;
}

}  // namespace leadflow::routing
