#pragma once

// The one way a test fixture gets its private redis-server (RedisServer): started, or the test
// fails saying why.
//
//   void SetUp() override {
//     server_ = testing::StartRedisForTest();
//     ASSERT_NE(server_, nullptr);
//   }
//
// Header-only: it reports through GoogleTest, which leadflow_testing does not link.

#include <memory>

#include "common/testing/redis_server.h"
#include "gtest/gtest.h"

namespace leadflow::testing {

// A started server, or nullptr after adding a failure with the reason (no redis-server, no
// answer in time).
inline std::unique_ptr<RedisServer> StartRedisForTest() {
  absl::StatusOr<std::unique_ptr<RedisServer>> server = RedisServer::Start();
  if (!server.ok()) {
    ADD_FAILURE() << "redis-server did not start: " << server.status();
    return nullptr;
  }
  return *std::move(server);
}

}  // namespace leadflow::testing
