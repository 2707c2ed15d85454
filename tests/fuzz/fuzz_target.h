#pragma once

// The libFuzzer entry point every target in tests/fuzz defines. Built two ways:
// - with clang and -fsanitize=fuzzer (scripts/fuzz.sh, -DLEADFLOW_FUZZERS=ON): a fuzzer that
//   explores new inputs;
// - with the normal build, linked to fuzz_regression_main.cc: a unit test that replays the
//   target's seed corpus (tests/fuzz/corpus/<target>/), so every input that once mattered keeps
//   being run in CI.
// A target must never crash, hang or leak on any input; rejecting it is the expected outcome.

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
