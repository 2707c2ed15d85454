// Replays a fuzz target's seed corpus as a unit test (see fuzz_target.h). The corpus directory
// comes from the build (LEADFLOW_FUZZ_CORPUS).
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

TEST(FuzzCorpusRegression, EverySeedRunsWithoutCrashing) {
  std::vector<std::filesystem::path> seeds;
  for (const auto& entry : std::filesystem::directory_iterator(LEADFLOW_FUZZ_CORPUS)) {
    if (entry.is_regular_file()) seeds.push_back(entry.path());
  }
  ASSERT_FALSE(seeds.empty()) << "no seeds in " << LEADFLOW_FUZZ_CORPUS;
  for (const std::filesystem::path& seed : seeds) {
    SCOPED_TRACE(seed.string());
    std::ifstream in(seed, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()),
              0);
  }
}

// Inputs a fuzzer reaches first: nothing, and one byte of each value.
TEST(FuzzCorpusRegression, TinyInputs) {
  EXPECT_EQ(LLVMFuzzerTestOneInput(nullptr, 0), 0);
  for (int b = 0; b < 256; ++b) {
    const uint8_t byte = static_cast<uint8_t>(b);
    EXPECT_EQ(LLVMFuzzerTestOneInput(&byte, 1), 0);
  }
}

}  // namespace
