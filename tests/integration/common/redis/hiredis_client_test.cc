// HiredisClient against a private redis-server (never the one on 6379): commands are encoded
// by the client itself (RESP, hiredis_client.cc), so every byte of every argument must reach
// Redis as given, in pipelines of any size.

#include "common/redis/hiredis_client.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/kafka/handler.h"
#include "common/testing/redis_for_test.h"
#include "common/testing/redis_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace leadflow::redis {
namespace {

using ::leadflow::testing::RedisServer;

class HiredisClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = testing::StartRedisForTest();
    ASSERT_NE(server_, nullptr);
    // The 1 MB value and the 20,000-command pipeline get more time than a test's usual 2 s.
    client_ = server_->MakeClient(/*pool_size=*/2, /*command_timeout=*/absl::Seconds(5));
  }

  std::unique_ptr<RedisServer> server_;
  std::unique_ptr<HiredisClient> client_;
};

TEST_F(HiredisClientTest, ArgumentsOfAnyBytesArriveAsGiven) {
  const std::vector<std::string> values = {
      "",
      std::string("nul\0inside", 10),
      "crlf\r\nin the middle\r\n",
      "$5\r\nfake\r\n*2\r\n",  // RESP-looking text is data, not protocol
      "\xc3\xa9t\xc3\xa9 \xf0\x9f\x9a\x80",
      std::string(1 << 20, 'x'),  // larger than hiredis's read and write chunks
  };
  std::vector<Args> sets;
  std::vector<Args> gets;
  for (size_t i = 0; i < values.size(); ++i) {
    const std::string key = absl::StrCat("key\r\n", i, std::string("\0", 1));
    sets.push_back({"SET", key, values[i]});
    gets.push_back({"GET", key});
  }
  absl::StatusOr<std::vector<Reply>> set = client_->Pipeline(sets);
  ASSERT_TRUE(set.ok()) << set.status();
  absl::StatusOr<std::vector<Reply>> got = client_->Pipeline(gets);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ((*set)[i].type, Reply::Type::kStatus) << i;
    EXPECT_EQ((*got)[i].type, Reply::Type::kString) << i;
    EXPECT_EQ((*got)[i].str, values[i]) << "value " << i;
  }
}

TEST_F(HiredisClientTest, ALongPipelineGetsOneReplyPerCommandInOrder) {
  constexpr int kCommands = 20000;
  std::vector<Args> commands;
  for (int i = 0; i < kCommands; ++i) commands.push_back({"INCRBY", "counter", absl::StrCat(i)});
  absl::StatusOr<std::vector<Reply>> replies = client_->Pipeline(commands);
  ASSERT_TRUE(replies.ok()) << replies.status();
  ASSERT_EQ(replies->size(), static_cast<size_t>(kCommands));
  int64_t sum = 0;
  for (int i = 0; i < kCommands; ++i) {
    sum += i;
    ASSERT_EQ((*replies)[i].type, Reply::Type::kInteger) << i;
    ASSERT_EQ((*replies)[i].integer, sum) << i;
  }
}

TEST_F(HiredisClientTest, AnErrorReplyInAPipelineLeavesTheOthersInPlace) {
  absl::StatusOr<std::vector<Reply>> replies = client_->Pipeline(
      {{"SET", "a", "1"}, {"NOSUCHCOMMAND", "x"}, {"INCR", "a"}, {"HGET", "a", "f"}, {"GET", "a"}});
  ASSERT_TRUE(replies.ok()) << replies.status();
  ASSERT_EQ(replies->size(), 5u);
  EXPECT_EQ((*replies)[0].str, "OK");
  EXPECT_TRUE((*replies)[1].is_error());
  EXPECT_EQ((*replies)[2].integer, 2);
  EXPECT_TRUE((*replies)[3].is_error()) << "WRONGTYPE";
  EXPECT_EQ((*replies)[4].str, "2");
  // The connection is still in step: the next call reads its own replies.
  absl::StatusOr<Reply> ping = client_->Command({"PING"});
  ASSERT_TRUE(ping.ok()) << ping.status();
  EXPECT_EQ(ping->str, "PONG");
}

// Replies are read straight into Reply (hiredis_client.cc, kReplyFunctions): every RESP shape,
// nested arrays with their own nils and integers, a nil array, and a transaction's EXEC.
TEST_F(HiredisClientTest, EveryReplyShapeIsReadIntoItsReply) {
  absl::StatusOr<std::vector<Reply>> replies = client_->Pipeline({
      {"HSET", "h", "v", "7", "d", std::string("da\0ta", 5)},
      {"HMGET", "h", "v", "missing", "d"},
      {"HMGET", "no-such-hash", "v", "i"},
      {"ZADD", "z", "1", "a", "2", "b"},
      {"ZRANGE", "z", "0", "-1", "WITHSCORES"},
      {"ZRANGE", "z", "5", "9"},
      {"BLPOP", "no-such-list", "0.01"},
      {"MULTI"},
      {"INCR", "n"},
      {"HMGET", "h", "v"},
      {"GET", "no-such-key"},
      {"EXEC"},
      {"TIME"},
      {"PING"},
  });
  ASSERT_TRUE(replies.ok()) << replies.status();
  ASSERT_EQ(replies->size(), 14u);
  const std::vector<Reply>& r = *replies;
  EXPECT_EQ(r[0].type, Reply::Type::kInteger);
  EXPECT_EQ(r[0].integer, 2);
  ASSERT_EQ(r[1].type, Reply::Type::kArray);
  ASSERT_EQ(r[1].elements.size(), 3u);
  EXPECT_EQ(r[1].elements[0].str, "7");
  EXPECT_TRUE(r[1].elements[1].is_nil());
  EXPECT_EQ(r[1].elements[2].str, std::string("da\0ta", 5));
  ASSERT_EQ(r[2].elements.size(), 2u);
  EXPECT_TRUE(r[2].elements[0].is_nil() && r[2].elements[1].is_nil());
  ASSERT_EQ(r[4].elements.size(), 4u);
  EXPECT_EQ(r[4].elements[2].str, "b");
  EXPECT_EQ(r[4].elements[3].str, "2");
  EXPECT_EQ(r[5].type, Reply::Type::kArray);
  EXPECT_TRUE(r[5].elements.empty());
  EXPECT_TRUE(r[6].is_nil()) << "a nil array";
  EXPECT_EQ(r[7].type, Reply::Type::kStatus);
  EXPECT_EQ(r[8].str, "QUEUED");
  ASSERT_EQ(r[11].type, Reply::Type::kArray);
  ASSERT_EQ(r[11].elements.size(), 3u) << "EXEC: one reply per queued command";
  EXPECT_EQ(r[11].elements[0].integer, 1);
  ASSERT_EQ(r[11].elements[1].elements.size(), 1u) << "an array inside an array";
  EXPECT_EQ(r[11].elements[1].elements[0].str, "7");
  EXPECT_TRUE(r[11].elements[2].is_nil());
  EXPECT_EQ(r[12].elements.size(), 2u);
  EXPECT_EQ(r[13].str, "PONG");
}

// An ACL user (Redis 6+; managed Redis with RBAC) authenticates with its name and password from
// the URL, percent-decoded; a wrong password is UNAUTHENTICATED, naming the user, not the password.
TEST_F(HiredisClientTest, AnAclUserAuthenticatesWithItsNameAndPassword) {
  ASSERT_TRUE(
      client_->Command({"ACL", "SETUSER", "svc-capture", "on", ">p@ss:w/rd%", "~*", "+@all"}).ok());
  const std::string at = absl::StrCat("@127.0.0.1:", server_->port());
  absl::StatusOr<HiredisOptions> options =
      ParseRedisAddress(absl::StrCat("redis://svc-capture:p%40ss%3Aw%2Frd%25", at));
  ASSERT_TRUE(options.ok()) << options.status();
  HiredisClient as_user(*options);
  absl::StatusOr<Reply> whoami = as_user.Command({"ACL", "WHOAMI"});
  ASSERT_TRUE(whoami.ok()) << whoami.status();
  EXPECT_EQ(whoami->str, "svc-capture");

  HiredisClient wrong(*ParseRedisAddress(absl::StrCat("redis://svc-capture:hunter2", at)));
  absl::StatusOr<Reply> refused = wrong.Command({"PING"});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnauthenticated) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()), ::testing::HasSubstr("svc-capture"));
  EXPECT_THAT(std::string(refused.status().message()),
              ::testing::Not(::testing::HasSubstr("hunter2")));
}

// A server with requirepass: the password alone authenticates the default user; without it
// every command is refused (and retried by the services, never taken for poison input).
TEST_F(HiredisClientTest, ThePasswordAloneAuthenticatesTheDefaultUser) {
  const std::string at = absl::StrCat("@127.0.0.1:", server_->port());
  HiredisClient with_password(*ParseRedisAddress(absl::StrCat("redis://:s%20cret", at)));
  HiredisClient without(*ParseRedisAddress(absl::StrCat("127.0.0.1:", server_->port())));
  ASSERT_TRUE(client_->Command({"CONFIG", "SET", "requirepass", "s cret"}).ok());

  absl::StatusOr<Reply> whoami = with_password.Command({"ACL", "WHOAMI"});
  ASSERT_TRUE(whoami.ok()) << whoami.status();
  EXPECT_EQ(whoami->str, "default");
  absl::StatusOr<Reply> reply = without.Command({"PING"});
  ASSERT_TRUE(reply.ok()) << reply.status();
  const absl::Status refused = ErrorReplyToStatus(*reply);
  EXPECT_THAT(std::string(refused.message()), ::testing::HasSubstr("NOAUTH"));
  EXPECT_TRUE(kafka::IsTransient(refused)) << refused;
  // Leave the server as the fixture found it (its own client authenticated before the change).
  ASSERT_TRUE(with_password.Command({"CONFIG", "SET", "requirepass", ""}).ok());
}

}  // namespace
}  // namespace leadflow::redis
