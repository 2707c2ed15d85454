#pragma once

// Topic names of ARCHITECTURE.md §3, in one place. Deployments may prefix every name
// (LEADFLOW_TOPIC_PREFIX), which is also how tests isolate themselves on a shared broker.

#include <string>
#include <string_view>
#include <vector>

namespace leadflow::kafka {

inline constexpr std::string_view kLeadsInbound = "leads.inbound";
inline constexpr std::string_view kActivitiesInbound = "activities.inbound";
inline constexpr std::string_view kLeadsCaptured = "leads.captured";
inline constexpr std::string_view kLeadsActivity = "leads.activity";
inline constexpr std::string_view kLeadsScored = "leads.scored";
inline constexpr std::string_view kLeadsRouted = "leads.routed";
inline constexpr std::string_view kLeadsOutcomes = "leads.outcomes";
inline constexpr std::string_view kNurtureTouches = "nurture.touches";
// Nurturing's enrolment changes (enrolled, exited, exhausted, paused, resumed), keyed by lead.
inline constexpr std::string_view kNurtureEnrollments = "nurture.enrollments";
inline constexpr std::string_view kLeadsErasure = "leads.erasure";
inline constexpr std::string_view kDlqSuffix = ".dlq";

// Every topic a leadflow deployment needs, DLQs of consumed topics included, unprefixed.
std::vector<std::string> AllTopics();

// Resolves names against a prefix.
class Topics {
 public:
  explicit Topics(std::string prefix = "") : prefix_(std::move(prefix)) {}
  std::string Name(std::string_view base) const { return prefix_ + std::string(base); }
  std::string Dlq(std::string_view base) const { return Name(base) + std::string(kDlqSuffix); }
  const std::string& prefix() const { return prefix_; }

 private:
  std::string prefix_;
};

}  // namespace leadflow::kafka
