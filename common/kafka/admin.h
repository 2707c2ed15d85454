#pragma once

// Topic administration (creation), used by `leadctl topics create`, the stack scripts and the
// integration tests.

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace leadflow::kafka {

struct TopicSpec {
  std::string name;
  int partitions = 3;
  int replication_factor = 1;
  std::map<std::string, std::string> config;
};

// Creates the topics that do not exist yet (existing ones are left as they are) and waits until
// they are visible in metadata. `props` are librdkafka properties (bootstrap.servers, ...).
absl::Status CreateTopics(const std::map<std::string, std::string>& props,
                          const std::vector<TopicSpec>& topics, absl::Duration timeout);

// Creates every leadflow topic of ARCHITECTURE.md §3 and its DLQ (AllTopics()) under `prefix`.
absl::Status CreateLeadflowTopics(const std::map<std::string, std::string>& props,
                                  const std::string& prefix, int partitions);

}  // namespace leadflow::kafka
