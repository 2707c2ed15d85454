#include "common/kafka/handler.h"

#include <algorithm>
#include <optional>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "common/runtime/side_by_side.h"

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

WaveRoute InLanes(int lanes, WaveRoute handle_wave, size_t min_per_lane) {
  return [lanes, handle_wave = std::move(handle_wave),
          min_per_lane](const std::vector<const ConsumedMessage*>& wave) {
    const runtime::Slices slices = runtime::SliceUp(wave.size(), lanes, min_per_lane);
    if (slices.count == 1) return handle_wave(wave);
    std::vector<std::vector<HandleResult>> results(slices.count);
    runtime::RunSideBySide(slices.count, [&](size_t s) {
      results[s] = handle_wave(std::vector<const ConsumedMessage*>(wave.begin() + slices.begin(s),
                                                                   wave.begin() + slices.end(s)));
    });
    std::vector<HandleResult> out;
    out.reserve(wave.size());
    for (size_t s = 0; s < slices.count; ++s) {
      const size_t size = slices.end(s) - slices.begin(s);
      for (size_t k = 0; k < results[s].size() && k < size; ++k) {
        out.push_back(std::move(results[s][k]));
      }
      if (results[s].size() < size) break;  // a short slice ends the results
    }
    return out;
  };
}

}  // namespace leadflow::kafka
