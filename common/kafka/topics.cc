#include "common/kafka/topics.h"

namespace leadflow::kafka {

std::vector<std::string> AllTopics() {
  std::vector<std::string> topics;
  for (std::string_view t :
       {kLeadsInbound, kActivitiesInbound, kLeadsCaptured, kLeadsActivity, kLeadsScored,
        kLeadsRouted, kLeadsOutcomes, kNurtureTouches, kNurtureEnrollments, kLeadsErasure}) {
    topics.emplace_back(t);
    // Every topic is consumed by some leadflow service (leads.routed and the nurture topics by
    // verifier tools and downstream consumers), so every one has a DLQ.
    topics.push_back(std::string(t) + std::string(kDlqSuffix));
  }
  return topics;
}

}  // namespace leadflow::kafka
