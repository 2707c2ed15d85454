#include "common/kafka/handler.h"

#include <algorithm>
#include <optional>
#include <string_view>
#include <thread>

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

WaveRoute InLanes(int lanes, WaveRoute handle_wave, size_t min_per_lane) {
  min_per_lane = std::max<size_t>(1, min_per_lane);
  return [lanes, handle_wave = std::move(handle_wave),
          min_per_lane](const std::vector<const ConsumedMessage*>& wave) {
    const size_t n = wave.size();
    const size_t slices = std::min<size_t>(std::max(1, lanes), n / min_per_lane);
    if (slices <= 1) return handle_wave(wave);
    std::vector<std::vector<HandleResult>> results(slices);
    auto run = [&](size_t s) {
      const std::vector<const ConsumedMessage*> slice(wave.begin() + n * s / slices,
                                                      wave.begin() + n * (s + 1) / slices);
      results[s] = handle_wave(slice);
    };
    std::vector<std::thread> others;
    others.reserve(slices - 1);
    for (size_t s = 1; s < slices; ++s) others.emplace_back(run, s);
    run(0);
    for (std::thread& t : others) t.join();
    std::vector<HandleResult> out;
    out.reserve(n);
    for (size_t s = 0; s < slices; ++s) {
      const size_t size = n * (s + 1) / slices - n * s / slices;
      const bool short_slice = results[s].size() < size;
      for (size_t k = 0; k < results[s].size() && k < size; ++k) {
        out.push_back(std::move(results[s][k]));
      }
      if (short_slice) break;
    }
    return out;
  };
}

}  // namespace leadflow::kafka
