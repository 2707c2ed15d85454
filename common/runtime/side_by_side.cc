#include "common/runtime/side_by_side.h"

#include <algorithm>
#include <thread>
#include <vector>

namespace leadflow::runtime {

void RunSideBySide(size_t n, absl::FunctionRef<void(size_t)> work) {
  if (n == 0) return;
  std::vector<std::thread> others;
  others.reserve(n - 1);
  for (size_t i = 1; i < n; ++i) others.emplace_back([&work, i] { work(i); });
  work(0);
  for (std::thread& t : others) t.join();
}

Slices SliceUp(size_t n, int max_slices, size_t min_per_slice) {
  Slices slices;
  slices.n = n;
  slices.count = std::clamp<size_t>(n / std::max<size_t>(1, min_per_slice), 1,
                                    static_cast<size_t>(std::max(1, max_slices)));
  return slices;
}

}  // namespace leadflow::runtime
