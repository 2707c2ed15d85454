#pragma once

// RunSideBySide: a few coarse pieces of work at once (a scheduler pass's slices, a wave's lanes).
//
// work(0) runs on the calling thread and work(1) … work(n - 1) on threads of their own; the call
// returns when every one has returned. A thread per piece costs tens of microseconds, so each
// piece should be worth milliseconds. The pieces share nothing through this function: what they
// write must be theirs alone (result i into slot i).

#include <cstddef>

#include "absl/functional/function_ref.h"

namespace leadflow::runtime {

void RunSideBySide(size_t n, absl::FunctionRef<void(size_t)> work);

// [0, n) cut into `count` consecutive slices of at least `min_per_slice` items each (sizes
// differ by at most one), as many as `max_slices` allows; one slice when n is smaller than
// 2 × min_per_slice or max_slices <= 1. Slice i is [begin(i), end(i)).
struct Slices {
  size_t count = 1;
  size_t n = 0;
  size_t begin(size_t i) const { return n * i / count; }
  size_t end(size_t i) const { return n * (i + 1) / count; }
};
Slices SliceUp(size_t n, int max_slices, size_t min_per_slice);

}  // namespace leadflow::runtime
