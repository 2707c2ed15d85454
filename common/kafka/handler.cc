#include "common/kafka/handler.h"

#include <optional>
#include <string_view>

#include "absl/container/flat_hash_map.h"

namespace leadflow::kafka {

std::vector<HandleResult> MessageHandler::HandleBatch(
    const std::vector<const ConsumedMessage*>& batch) {
  std::vector<HandleResult> results;
  results.reserve(batch.size());
  for (const ConsumedMessage* message : batch) {
    results.push_back(Handle(*message));
    if (IsTransient(results.back().status())) break;
  }
  return results;
}

std::vector<HandleResult> ResultsInBatchOrder(std::vector<std::optional<HandleResult>> by_input) {
  std::vector<HandleResult> out;
  out.reserve(by_input.size());
  for (std::optional<HandleResult>& result : by_input) {
    if (!result.has_value() || IsTransient(result->status())) break;
    out.push_back(*std::move(result));
  }
  return out;
}

std::vector<HandleResult> HandleInKeyWaves(
    const std::vector<const ConsumedMessage*>& batch,
    const std::function<std::vector<HandleResult>(const std::vector<const ConsumedMessage*>&)>&
        handle_wave) {
  // wave_of[i]: how many earlier inputs share input i's key.
  std::vector<size_t> wave_of(batch.size());
  std::vector<std::vector<size_t>> waves;
  absl::flat_hash_map<std::string_view, size_t> seen;
  for (size_t i = 0; i < batch.size(); ++i) {
    size_t& count = seen[batch[i]->key];
    wave_of[i] = count++;
    if (wave_of[i] == waves.size()) waves.emplace_back();
    waves[wave_of[i]].push_back(i);
  }
  std::vector<std::optional<HandleResult>> by_input(batch.size());
  for (const std::vector<size_t>& wave : waves) {
    std::vector<const ConsumedMessage*> inputs;
    inputs.reserve(wave.size());
    for (size_t i : wave) inputs.push_back(batch[i]);
    std::vector<HandleResult> results = handle_wave(inputs);
    bool transient = results.size() < wave.size();
    for (size_t k = 0; k < results.size(); ++k) {
      transient = transient || IsTransient(results[k].status());
      by_input[wave[k]] = std::move(results[k]);
    }
    // Later waves hold later inputs of the same keys: they wait for the loop's one-by-one pass.
    if (transient) break;
  }
  return ResultsInBatchOrder(std::move(by_input));
}

}  // namespace leadflow::kafka
