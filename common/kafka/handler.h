#pragma once

// MessageHandler: what a service does with one consumed message.
//
// The handler performs its state effects (idempotently, e.g. with redis::ApplyOnce) and returns
// the messages to publish; the consumer loop publishes them and stores the input's offset only
// when every one is acknowledged. A re-delivered input must return the same output messages
// (same event ids), which apply-once memoisation provides.
//
// How the returned status is treated by the loop:
// - OK: publish the outputs, then mark the input done.
// - INVALID_ARGUMENT, DATA_LOSS, OUT_OF_RANGE, FAILED_PRECONDITION, NOT_FOUND, UNIMPLEMENTED,
//   ALREADY_EXISTS: poison input. The original bytes go to `<topic>.dlq` with the reason;
//   the input is then marked done. (See IsPoison().)
// - Anything else (UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED, RESOURCE_EXHAUSTED, INTERNAL...):
//   transient. The same message is retried with backoff and never skipped.
//
// Batches: the loop hands over every message one poll returned (up to a bound) at once, through
// HandleBatch(), so that a handler can share Redis round trips between them (one pipelined read,
// one apply-once transaction, see redis::ApplyOnce::RunBatch). Result i belongs to input
// i, and each must be what Handle() would have returned for it. The loop takes the results in
// order up to the first transient one; that input and every input after it are then handled
// one by one with Handle() and its retries. Inputs of the batch that were already applied return
// their memoised outputs then, so nothing is applied twice, but a transient failure of one input
// does not hold back the effects of later ones in the same batch. A handler may return fewer
// results than inputs: the rest are handled one by one the same way.
//
// Thread safety: called from the consumer loop thread only.

#include <functional>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/kafka/message.h"

namespace leadflow::kafka {

using HandleResult = absl::StatusOr<std::vector<OutboundMessage>>;

class MessageHandler {
 public:
  virtual ~MessageHandler() = default;
  virtual HandleResult Handle(const ConsumedMessage& message) = 0;
  // The default handles each input with Handle() and stops after the first transient failure.
  virtual std::vector<HandleResult> HandleBatch(const std::vector<const ConsumedMessage*>& batch);
};

// True when a handler status means "this input can never be processed".
inline bool IsPoison(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kUnimplemented:
    case absl::StatusCode::kAlreadyExists:
      return true;
    default:
      return false;
  }
}

// True when a handler status means "try again later" (see the contract above).
inline bool IsTransient(const absl::Status& status) { return !status.ok() && !IsPoison(status); }

// The inputs of a batch that go on to a shared step (those that decoded and validated), so that
// each result goes back to its input's place: input i's result is the one given to Settle() when
// it was settled early (an error, or nothing to do), otherwise the shared step's result for it.
template <typename Result>
class BatchSubset {
 public:
  explicit BatchSubset(size_t size) : results_(size, absl::UnknownError("not handled")) {}

  void Settle(size_t i, Result result) { results_[i] = std::move(result); }
  void Keep(size_t i) { kept_.push_back(i); }
  // The batch indices of the kept inputs, in batch order.
  const std::vector<size_t>& kept() const { return kept_; }

  // `kept_results[k]` is the result of kept()[k], turned into a Result by `convert`.
  template <typename KeptResult, typename Convert>
  std::vector<Result> Merge(std::vector<KeptResult> kept_results, Convert convert) && {
    for (size_t k = 0; k < kept_.size() && k < kept_results.size(); ++k) {
      results_[kept_[k]] = convert(std::move(kept_results[k]));
    }
    return std::move(results_);
  }
  std::vector<Result> Merge(std::vector<Result> kept_results) && {
    return std::move(*this).Merge(std::move(kept_results), [](Result r) { return r; });
  }

 private:
  std::vector<Result> results_;
  std::vector<size_t> kept_;
};

// The results of a batch handled out of order (by topic, by wave), put back in the batch's order
// for HandleBatch(): those before the first missing or transient one.
std::vector<HandleResult> ResultsInBatchOrder(std::vector<std::optional<HandleResult>> by_input);

// HandleBatch() for handlers whose effects on one key (a lead) must follow each other: splits
// `batch` into waves whose inputs have distinct Kafka keys, the k-th input of every key in
// wave k, and calls `handle_wave` on each wave in turn (so the inputs of a wave can share round
// trips). Returns the results in the batch's order; stops after a wave with a transient failure,
// returning the results before the first one in batch order (the rest are left to the loop).
std::vector<HandleResult> HandleInKeyWaves(
    const std::vector<const ConsumedMessage*>& batch,
    const std::function<std::vector<HandleResult>(const std::vector<const ConsumedMessage*>&)>&
        handle_wave);

// A wave route (what HandleInKeyWaves calls).
using WaveRoute =
    std::function<std::vector<HandleResult>(const std::vector<const ConsumedMessage*>&)>;

// `handle_wave` with each wave split over up to `lanes` threads: consecutive slices of at least
// `min_per_lane` inputs, handled side by side (the first on the caller's thread), so that one
// consumer loop keeps both Redis and the cores busy. The results are in the wave's order; a
// slice that returns fewer results than inputs ends them there (what follows is handled one by
// one by the loop, and its applied effects are memoised). A wave's inputs have distinct keys, so
// the inputs of one key still follow each other (waves do). Only for handlers whose inputs of
// different keys may run concurrently, as two replicas' may: their races are settled by the
// store's version checks, never by the order of the inputs. A wave smaller than
// 2 × min_per_lane, or lanes <= 1, stays on the caller's thread.
WaveRoute InLanes(int lanes, WaveRoute handle_wave, size_t min_per_lane = 16);

}  // namespace leadflow::kafka
