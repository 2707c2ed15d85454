#include "common/kafka/topic_router.h"

#include <optional>

namespace leadflow::kafka {

std::vector<HandleResult> TopicRouter::HandleBatch(
    const std::vector<const ConsumedMessage*>& batch) {
  // Topics are different partitions, so their inputs keep no order between them: each topic's
  // inputs go to its route together, and the results are put back in the batch's order.
  std::vector<std::optional<HandleResult>> by_input(batch.size());
  absl::flat_hash_map<std::string_view, std::vector<size_t>> by_topic;
  for (size_t i = 0; i < batch.size(); ++i) by_topic[batch[i]->topic].push_back(i);
  for (const auto& [topic, indices] : by_topic) {
    auto batched = batch_routes_.find(std::string(topic));
    if (batched == batch_routes_.end()) {
      for (size_t i : indices) {
        by_input[i] = Handle(*batch[i]);
        if (IsTransient(by_input[i]->status())) break;
      }
      continue;
    }
    std::vector<const ConsumedMessage*> inputs;
    inputs.reserve(indices.size());
    for (size_t i : indices) inputs.push_back(batch[i]);
    std::vector<HandleResult> results = batched->second(inputs);
    for (size_t k = 0; k < results.size() && k < indices.size(); ++k) {
      by_input[indices[k]] = std::move(results[k]);
    }
  }
  return ResultsInBatchOrder(std::move(by_input));
}

}  // namespace leadflow::kafka
