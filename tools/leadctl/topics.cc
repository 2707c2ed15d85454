#include "tools/leadctl/topics.h"

#include "common/kafka/admin.h"
#include "common/kafka/topics.h"

namespace leadflow::leadctl {

absl::Status CreateAllTopics(const std::string& bootstrap, const std::string& prefix,
                             int partitions) {
  std::vector<kafka::TopicSpec> specs;
  for (const std::string& t : kafka::AllTopics()) {
    kafka::TopicSpec spec;
    spec.name = prefix + t;
    spec.partitions = partitions;
    specs.push_back(std::move(spec));
  }
  return kafka::CreateTopics({{"bootstrap.servers", bootstrap}}, specs, absl::Seconds(60));
}

}  // namespace leadflow::leadctl
