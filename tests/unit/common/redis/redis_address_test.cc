// ParseRedisAddress: LEADFLOW_REDIS_ADDR in both its forms. Parsing only: no connection.

#include "common/redis/hiredis_client.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace leadflow::redis {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(RedisAddressTest, HostAndPort) {
  absl::StatusOr<HiredisOptions> o = ParseRedisAddress("redis-capture:6380");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->host, "redis-capture");
  EXPECT_EQ(o->port, 6380);
  EXPECT_EQ(o->user, "");
  EXPECT_EQ(o->password, "");
  EXPECT_EQ(o->db, 0);
}

TEST(RedisAddressTest, AUrlWithAPasswordAndADatabase) {
  absl::StatusOr<HiredisOptions> o = ParseRedisAddress("redis://:s3cret@10.0.0.7:6379/2");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->host, "10.0.0.7");
  EXPECT_EQ(o->port, 6379);
  EXPECT_EQ(o->user, "");
  EXPECT_EQ(o->password, "s3cret");
  EXPECT_EQ(o->db, 2);
}

TEST(RedisAddressTest, AnAclUserIsKept) {
  absl::StatusOr<HiredisOptions> o = ParseRedisAddress("redis://leadflow:pw@cache.internal:6379");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->user, "leadflow");
  EXPECT_EQ(o->password, "pw");
  EXPECT_EQ(o->host, "cache.internal");
}

TEST(RedisAddressTest, ThePasswordAloneBeforeTheAtIsAPassword) {
  // redis-cli -u reads "redis://secret@host" this way.
  absl::StatusOr<HiredisOptions> o = ParseRedisAddress("redis://secret@host:1");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->user, "");
  EXPECT_EQ(o->password, "secret");
}

TEST(RedisAddressTest, CredentialsArePercentDecoded) {
  absl::StatusOr<HiredisOptions> o =
      ParseRedisAddress("redis://svc%2Dcapture:p%40ss%3Aw%2Fo%25rd%20x@host:6379");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->user, "svc-capture");
  EXPECT_EQ(o->password, "p@ss:w/o%rd x");
}

TEST(RedisAddressTest, AnUnencodedAtInThePasswordEndsAtTheLastAt) {
  absl::StatusOr<HiredisOptions> o = ParseRedisAddress("redis://:a@b@host:6379");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->password, "a@b");
  EXPECT_EQ(o->host, "host");
}

TEST(RedisAddressTest, AUrlDefaultsToPort6379AndDatabase0) {
  absl::StatusOr<HiredisOptions> o = ParseRedisAddress("redis://redis-routing");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->host, "redis-routing");
  EXPECT_EQ(o->port, 6379);
  o = ParseRedisAddress("redis://redis-routing/");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->db, 0);
}

TEST(RedisAddressTest, AnIpv6HostIsWrittenInBrackets) {
  absl::StatusOr<HiredisOptions> o = ParseRedisAddress("[::1]:6390");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->host, "::1");
  EXPECT_EQ(o->port, 6390);
  o = ParseRedisAddress("redis://:pw@[fd00::5]/1");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->host, "fd00::5");
  EXPECT_EQ(o->port, 6379);
  EXPECT_EQ(o->db, 1);
}

TEST(RedisAddressTest, MalformedAddressesAreRefusedWithWhatIsWrong) {
  struct Case {
    const char* address;
    const char* says;
  };
  for (const Case& c : {
           Case{"redis-capture", "is not host:port"},
           Case{"host:0", "port '0'"},
           Case{"host:65536", "port '65536'"},
           Case{"host:abc", "port 'abc'"},
           Case{":6379", "host is empty"},
           Case{"redis://:pw@host/x", "database 'x'"},
           Case{"redis://:pw@host/-1", "database '-1'"},
           Case{"redis://:p%zzw@host", "percent escape"},
           Case{"redis://:pw%4@host", "percent escape"},
           Case{"redis://admin:@host", "without a password"},
           Case{"[::1", "without ']'"},
           Case{"[::1]6379", "':port'"},
           Case{"[::1]", "a port is needed"},
       }) {
    absl::StatusOr<HiredisOptions> o = ParseRedisAddress(c.address);
    ASSERT_FALSE(o.ok()) << c.address;
    EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument) << c.address;
    EXPECT_THAT(std::string(o.status().message()), HasSubstr(c.says)) << c.address;
  }
}

TEST(RedisAddressTest, AnErrorNeverQuotesThePassword) {
  for (const char* address : {"redis://u:hunter2@host:99999", "redis://:hunter2@host/db",
                              "redis://u:hunter2%@host", "redis://:hunter2@:6379"}) {
    absl::StatusOr<HiredisOptions> o = ParseRedisAddress(address);
    ASSERT_FALSE(o.ok()) << address;
    EXPECT_THAT(std::string(o.status().message()), Not(HasSubstr("hunter2"))) << address;
  }
}

}  // namespace
}  // namespace leadflow::redis
