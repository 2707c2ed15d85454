#include "common/redis/apply_once.h"

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "common/redis/hiredis_client.h"
#include "common/redis/keys.h"
#include "common/redis/lua_script.h"
#include "common/testing/redis_for_test.h"
#include "common/testing/redis_server.h"
#include "common/testing/wait.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace leadflow::redis {
namespace {

using ::leadflow::testing::RedisServer;
using ::leadflow::testing::WaitFor;
using ::testing::HasSubstr;
using ::testing::SizeIs;

constexpr char kService[] = "test";
constexpr char kLead[] = "lead-1";

std::string CounterKey(const std::string& lead = kLead) {
  return LeadKey(kService, lead, "counter");
}

ApplyOnceRequest Request(const std::string& event_id, const std::string& lead = kLead) {
  ApplyOnceRequest r;
  r.dedup_key = AppliedKey(kService, lead, event_id);
  r.state_keys = {CounterKey(lead)};
  r.registry_key = RegistryKey(kService, lead);
  r.tombstone_key = TombstoneKey(kService, lead);
  return r;
}

int64_t CounterOf(const std::vector<Versioned>& state) {
  int64_t n = 0;
  if (state[0].data.has_value()) {
    EXPECT_TRUE(absl::SimpleAtoi(*state[0].data, &n));
  }
  return n;
}

// The planner every counting test uses: a pure function of the state it is given.
absl::StatusOr<Plan> Increment(const std::string& event_id, const std::vector<Versioned>& state) {
  const int64_t next = CounterOf(state) + 1;
  Plan plan;
  plan.writes.push_back({state[0].key, absl::StrCat(next)});
  plan.memo = absl::StrCat(event_id, "->", next);
  return plan;
}

class ApplyOnceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = testing::StartRedisForTest();
    ASSERT_NE(server_, nullptr);
    client_ = MakeClient();
  }

  std::unique_ptr<HiredisClient> MakeClient(int pool_size = 4) const {
    return server_->MakeClient(pool_size);
  }

  absl::StatusOr<ApplyResult> Apply(ApplyOnce& apply, const std::string& event_id,
                                    const std::string& lead = kLead) {
    return apply.Run(Request(event_id, lead),
                     [&](const std::vector<Versioned>& s) { return Increment(event_id, s); });
  }

  // Erases `lead` (its registry, plus `extra_keys`) and leaves a tombstone for an hour.
  static absl::Status EraseLead(ApplyOnce& apply, const std::string& lead = kLead,
                                const std::vector<std::string>& extra_keys = {}) {
    return apply.Erase(RegistryKey(kService, lead), TombstoneKey(kService, lead), absl::Hours(1),
                       extra_keys);
  }

  // Direct Redis access for setting up and checking, bypassing ApplyOnce.
  Reply Cmd(const Args& args) {
    absl::StatusOr<Reply> r = client_->Command(args);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : Reply{};
  }
  bool Exists(const std::string& key) { return Cmd({"EXISTS", key}).integer == 1; }
  int64_t ConnectedClients() {
    for (absl::string_view line : absl::StrSplit(Cmd({"INFO", "clients"}).str, "\r\n")) {
      int64_t n;
      if (absl::ConsumePrefix(&line, "connected_clients:") && absl::SimpleAtoi(line, &n)) {
        return n;
      }
    }
    return -1;
  }
  // How many times Redis ran `command` since the last CONFIG RESETSTAT.
  int64_t Calls(const std::string& command) {
    const std::string prefix = absl::StrCat("cmdstat_", command, ":calls=");
    for (absl::string_view line : absl::StrSplit(Cmd({"INFO", "commandstats"}).str, "\r\n")) {
      int64_t n;
      if (absl::ConsumePrefix(&line, prefix) &&
          absl::SimpleAtoi(line.substr(0, line.find(',')), &n)) {
        return n;
      }
    }
    return 0;
  }
  int64_t Counter(const std::string& lead = kLead) {
    Reply r = Cmd({"HGET", CounterKey(lead), "d"});
    int64_t n = 0;
    if (!r.is_nil()) {
      EXPECT_TRUE(absl::SimpleAtoi(r.str, &n));
    }
    return n;
  }

  std::unique_ptr<RedisServer> server_;
  std::unique_ptr<HiredisClient> client_;
};

// Counts the calls (each one round trip) made through it.
class CountingClient final : public RedisClient {
 public:
  explicit CountingClient(RedisClient& inner) : inner_(inner) {}
  absl::StatusOr<Reply> Command(const Args& args) override {
    ++calls;
    return inner_.Command(args);
  }
  absl::StatusOr<std::vector<Reply>> Pipeline(const std::vector<Args>& commands) override {
    ++calls;
    return inner_.Pipeline(commands);
  }
  absl::Status WithSession(absl::FunctionRef<absl::Status(RedisSession&)> body) override {
    return inner_.WithSession([&](RedisSession& session) {
      Session counting(session, calls);
      return body(counting);
    });
  }
  std::atomic<int> calls{0};

 private:
  class Session final : public RedisSession {
   public:
    Session(RedisSession& inner, std::atomic<int>& calls) : inner_(inner), calls_(calls) {}
    absl::StatusOr<std::vector<Reply>> Pipeline(const std::vector<Args>& commands) override {
      ++calls_;
      return inner_.Pipeline(commands);
    }

   private:
    RedisSession& inner_;
    std::atomic<int>& calls_;
  };
  RedisClient& inner_;
};

TEST_F(ApplyOnceTest, AppliesOnceThenReturnsTheSameMemoForADuplicate) {
  ApplyOnce apply(*client_);
  int plans = 0;
  auto planner = [&](const std::vector<Versioned>& s) {
    ++plans;
    return Increment("e1", s);
  };
  absl::StatusOr<ApplyResult> first = apply.Run(Request("e1"), planner);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->outcome, ApplyOutcome::kApplied);
  EXPECT_EQ(first->memo, "e1->1");

  absl::StatusOr<ApplyResult> again = apply.Run(Request("e1"), planner);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->outcome, ApplyOutcome::kDuplicate);
  EXPECT_EQ(again->memo, "e1->1");
  EXPECT_EQ(plans, 1) << "a duplicate must not be planned again";
  EXPECT_EQ(Counter(), 1);

  absl::StatusOr<std::vector<Versioned>> state = apply.Read({CounterKey()});
  ASSERT_TRUE(state.ok());
  EXPECT_EQ((*state)[0].version, 1);
  // The dedup key remembers the input for the configured TTL and is registered for erasure, in
  // the expiry-ordered part of the registry.
  const int64_t ttl = Cmd({"PTTL", Request("e1").dedup_key}).integer;
  EXPECT_GT(ttl, 0);
  EXPECT_LE(ttl, absl::ToInt64Milliseconds(Request("e1").dedup_ttl));
  EXPECT_FALSE(Cmd({"ZSCORE", RegistryKey(kService, kLead) + ":expiring", Request("e1").dedup_key})
                   .is_nil());
}

// Recorded answers what an applied input gave without applying anything: nothing for an input
// never applied (and nothing is written), the memo once it was.
TEST_F(ApplyOnceTest, RecordedAnswersAnAppliedInputsMemoAndAppliesNothing) {
  ApplyOnce apply(*client_);
  absl::StatusOr<std::optional<ApplyResult>> none = apply.Recorded(Request("e1"));
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->has_value());
  EXPECT_EQ(Cmd({"EXISTS", Request("e1").dedup_key}).integer, 0);
  EXPECT_EQ(Counter(), 0);

  ASSERT_TRUE(
      apply.Run(Request("e1"), [&](const std::vector<Versioned>& s) { return Increment("e1", s); })
          .ok());
  absl::StatusOr<std::optional<ApplyResult>> recorded = apply.Recorded(Request("e1"));
  ASSERT_TRUE(recorded.ok()) << recorded.status();
  ASSERT_TRUE(recorded->has_value());
  EXPECT_EQ((*recorded)->outcome, ApplyOutcome::kDuplicate);
  EXPECT_EQ((*recorded)->memo, "e1->1");
  EXPECT_EQ(Counter(), 1);
}

TEST_F(ApplyOnceTest, ConcurrentAppliersOnOneRecordLoseNoUpdate) {
  constexpr int kThreads = 8;
  constexpr int kOwnEvents = 20;
  constexpr int kSharedEvents = 10;  // every thread applies these: only one may win each
  std::unique_ptr<HiredisClient> client = MakeClient(kThreads);
  ApplyOnce apply(*client);
  absl::Mutex mu;
  int applied = 0;
  int duplicates = 0;
  std::map<std::string, std::set<std::string>> memos_by_event;
  std::vector<std::string> errors;

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::string> events;
      for (int i = 0; i < kOwnEvents; ++i) events.push_back(absl::StrCat("t", t, "-", i));
      for (int i = 0; i < kSharedEvents; ++i) events.push_back(absl::StrCat("shared-", i));
      for (const std::string& e : events) {
        absl::StatusOr<ApplyResult> r;
        // ABORTED (too much contention) is transient: a consumer would retry, so do we.
        for (int attempt = 0; attempt < 50; ++attempt) {
          r = apply.Run(Request(e),
                        [&](const std::vector<Versioned>& s) { return Increment(e, s); });
          if (!absl::IsAborted(r.status())) break;
        }
        absl::MutexLock lock(&mu);
        if (!r.ok()) {
          errors.push_back(r.status().ToString());
          continue;
        }
        (r->outcome == ApplyOutcome::kApplied ? applied : duplicates)++;
        memos_by_event[e].insert(r->memo);
      }
    });
  }
  for (std::thread& th : threads) th.join();

  EXPECT_THAT(errors, ::testing::IsEmpty());
  constexpr int kDistinct = kThreads * kOwnEvents + kSharedEvents;
  EXPECT_EQ(Counter(), kDistinct) << "lost or doubled updates";
  EXPECT_EQ(applied, kDistinct);
  EXPECT_EQ(duplicates, (kThreads - 1) * kSharedEvents);
  ASSERT_EQ(memos_by_event.size(), static_cast<size_t>(kDistinct));
  std::set<std::string> counts_seen;
  for (const auto& [event, memos] : memos_by_event) {
    EXPECT_EQ(memos.size(), 1u) << event << " answered with different memos";
    const std::vector<std::string> parts = absl::StrSplit(*memos.begin(), "->");
    counts_seen.insert(parts.back());
  }
  // Every applied input saw a distinct counter value: the updates were serialised.
  EXPECT_EQ(counts_seen.size(), static_cast<size_t>(kDistinct));
}

// Batches racing each other on shared records (several replicas taking one lead's inputs at
// once): transactions abort and are tried again, requests fall back to one by one, and still
// every event counts exactly once on its lead and every one applied reports the same memo.
TEST_F(ApplyOnceTest, ConcurrentBatchesOnSharedRecordsLoseNoUpdateAndApplyEachEventOnce) {
  constexpr int kThreads = 4;
  constexpr int kLeads = 5;
  constexpr int kEventsPerLead = 60;  // each thread takes every event: one may win each
  std::unique_ptr<HiredisClient> client = MakeClient(kThreads);
  ApplyOnce apply(*client);
  absl::Mutex mu;
  std::map<std::string, std::set<std::string>> applied_memos;
  std::map<std::string, std::set<std::string>> all_memos;
  std::vector<std::string> errors;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Each thread's batches list the events in its own order, 3 leads' events interleaved.
      std::vector<std::pair<std::string, std::string>> events;  // (event, lead)
      for (int i = 0; i < kEventsPerLead; ++i) {
        for (int l = 0; l < kLeads; ++l) {
          const int k = (i * kLeads + l + t * 37) % (kEventsPerLead * kLeads);
          events.emplace_back(absl::StrCat("e", k), absl::StrCat("lead-", k % kLeads));
        }
      }
      for (size_t from = 0; from < events.size(); from += 50) {
        std::vector<ApplyOnceRequest> requests;
        std::vector<std::string> ids;
        for (size_t i = from; i < std::min(events.size(), from + 50); ++i) {
          requests.push_back(Request(events[i].first, events[i].second));
          ids.push_back(events[i].first);
        }
        std::vector<absl::StatusOr<ApplyResult>> results = apply.RunBatch(
            requests,
            [&](size_t i, const std::vector<Versioned>& s) { return Increment(ids[i], s); });
        for (size_t i = 0; i < results.size(); ++i) {
          // ABORTED (too much contention) is transient: a consumer would retry, so do we.
          for (int attempt = 0; attempt < 50 && absl::IsAborted(results[i].status()); ++attempt) {
            results[i] = apply.Run(
                requests[i], [&](const std::vector<Versioned>& s) { return Increment(ids[i], s); });
          }
          absl::MutexLock lock(&mu);
          if (!results[i].ok()) {
            errors.push_back(results[i].status().ToString());
            continue;
          }
          all_memos[ids[i]].insert(results[i]->memo);
          if (results[i]->outcome == ApplyOutcome::kApplied) {
            applied_memos[ids[i]].insert(results[i]->memo);
          }
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();

  EXPECT_THAT(errors, ::testing::IsEmpty());
  ASSERT_EQ(all_memos.size(), static_cast<size_t>(kLeads * kEventsPerLead));
  size_t applied = 0;
  for (const auto& [event, memos] : all_memos) {
    EXPECT_EQ(memos.size(), 1u) << event << ": every delivery reports the one apply's memo";
    applied += applied_memos[event].size();
  }
  EXPECT_EQ(applied, static_cast<size_t>(kLeads * kEventsPerLead)) << "each event applied once";
  for (int l = 0; l < kLeads; ++l) {
    EXPECT_EQ(Counter(absl::StrCat("lead-", l)), kEventsPerLead) << "lost or doubled updates";
  }
}

TEST_F(ApplyOnceTest, VersionConflictRereadsAndReplans) {
  ApplyOnce apply(*client_);
  std::unique_ptr<HiredisClient> other_client = MakeClient();
  ApplyOnce other(*other_client);
  int plans = 0;
  std::vector<int64_t> seen;
  absl::StatusOr<ApplyResult> r = apply.Run(Request("a"), [&](const std::vector<Versioned>& s) {
    ++plans;
    seen.push_back(CounterOf(s));
    if (plans == 1) {
      // Another replica applies a different input to the same record meanwhile.
      absl::StatusOr<ApplyResult> b = Apply(other, "b");
      EXPECT_TRUE(b.ok() && b->outcome == ApplyOutcome::kApplied);
    }
    return Increment("a", s);
  });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->outcome, ApplyOutcome::kApplied);
  EXPECT_EQ(plans, 2);
  EXPECT_THAT(seen, ::testing::ElementsAre(0, 1));
  EXPECT_EQ(r->memo, "a->2");
  EXPECT_EQ(Counter(), 2);
}

TEST_F(ApplyOnceTest, RunBatchAppliesEachRequestOnceAndAConflictTriesTheBatchAgain) {
  ApplyOnce apply(*client_);
  std::unique_ptr<HiredisClient> other_client = MakeClient();
  ApplyOnce other(*other_client);
  // lead-0 was applied before (a duplicate), lead-3 is erased, lead-2 is changed by another
  // replica between the batch's read and its apply: the transaction applies nothing, and the
  // batch is read and planned again (the duplicate and the erasure need no plan).
  ASSERT_TRUE(Apply(apply, "e", "lead-0").ok());
  ASSERT_TRUE(EraseLead(apply, "lead-3").ok());
  std::vector<ApplyOnceRequest> requests;
  for (int i = 0; i < 4; ++i) requests.push_back(Request("e", absl::StrCat("lead-", i)));
  std::map<size_t, int> plans;
  const std::vector<absl::StatusOr<ApplyResult>> results =
      apply.RunBatch(requests, [&](size_t i, const std::vector<Versioned>& s) {
        if (i == 1 && plans[i] == 0) {
          // Planning lead-1 while another replica writes lead-2's record.
          EXPECT_TRUE(Apply(other, "other", "lead-2").ok());
        }
        ++plans[i];
        return Increment("e", s);
      });
  ASSERT_EQ(results.size(), 4u);
  for (const auto& r : results) ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(results[0]->outcome, ApplyOutcome::kDuplicate);
  EXPECT_EQ(results[0]->memo, "e->1");
  EXPECT_EQ(results[1]->outcome, ApplyOutcome::kApplied);
  EXPECT_EQ(results[1]->memo, "e->1");
  EXPECT_EQ(results[2]->outcome, ApplyOutcome::kApplied);
  EXPECT_EQ(results[2]->memo, "e->2");  // re-planned on the other replica's write
  EXPECT_EQ(results[3]->outcome, ApplyOutcome::kErased);
  EXPECT_EQ(plans[0], 0);
  EXPECT_EQ(plans[1], 2);
  EXPECT_EQ(plans[2], 2);
  EXPECT_EQ(plans[3], 0);
  EXPECT_EQ(Counter("lead-1"), 1);
  EXPECT_EQ(Counter("lead-2"), 2);
  EXPECT_FALSE(Exists(CounterKey("lead-3")));
  // The same batch again changes nothing.
  const auto again = apply.RunBatch(requests, [&](size_t i, const std::vector<Versioned>& s) {
    ++plans[i];
    return Increment("e", s);
  });
  for (const auto& r : again) ASSERT_TRUE(r.ok());
  EXPECT_EQ(again[1]->outcome, ApplyOutcome::kDuplicate);
  EXPECT_EQ(again[2]->memo, "e->2");
  EXPECT_EQ(Counter("lead-2"), 2);
}

// Requests of one batch on one record (two inputs of a lead in one transaction): the second is
// planned on the first's write, as if they ran one after the other.
TEST_F(ApplyOnceTest, ABatchOfRequestsOnOneRecordAppliesThemInOrderInOneTransaction) {
  CountingClient counting(*client_);
  ApplyOnce apply(counting);
  std::vector<ApplyOnceRequest> requests = {Request("a"), Request("b"), Request("c")};
  const std::vector<absl::StatusOr<ApplyResult>> results =
      apply.RunBatch(requests, [&](size_t i, const std::vector<Versioned>& s) {
        return Increment(requests[i].dedup_key, s);
      });
  EXPECT_EQ(counting.calls, 2) << "one transaction";
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(results[i].ok()) << results[i].status();
    EXPECT_EQ(results[i]->memo, absl::StrCat(requests[i].dedup_key, "->", i + 1));
  }
  EXPECT_EQ(Counter(), 3);
  absl::StatusOr<std::vector<Versioned>> state = apply.Read({CounterKey()});
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ((*state)[0].version, 3);
}

// Where requests of one transaction write the same record, only the last write goes to Redis;
// the record ends as if each had been applied: its version, data, incarnation and expiry.
TEST_F(ApplyOnceTest, ATransactionSendsOnlyTheLastOfARecordsWrites) {
  ApplyOnce apply(*client_);
  auto increment = [](const std::vector<ApplyOnceRequest>& requests) {
    return [&requests](size_t i, const std::vector<Versioned>& s) {
      return Increment(requests[i].dedup_key, s);
    };
  };
  std::vector<ApplyOnceRequest> requests = {Request("a"), Request("b"), Request("c")};
  Cmd({"CONFIG", "RESETSTAT"});
  std::vector<absl::StatusOr<ApplyResult>> results = apply.RunBatch(requests, increment(requests));
  for (const auto& r : results) ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Calls("hset"), 1);
  EXPECT_EQ(Counter(), 3);
  absl::StatusOr<std::vector<Versioned>> state = apply.Read({CounterKey()});
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ((*state)[0].version, 3);
  const std::string incarnation = (*state)[0].incarnation;
  EXPECT_THAT(incarnation, SizeIs(16)) << "the creating write's incarnation was lost";
  EXPECT_TRUE(Cmd({"SISMEMBER", RegistryKey(kService, kLead), CounterKey()}).integer == 1);

  // On a record that has an expiry, the writes (none with a TTL) leave it without one.
  Cmd({"PEXPIRE", CounterKey(), "600000"});
  requests = {Request("d"), Request("e")};
  results = apply.RunBatch(requests, increment(requests));
  for (const auto& r : results) ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Calls("hset"), 2);
  EXPECT_EQ(Cmd({"PTTL", CounterKey()}).integer, -1);
  state = apply.Read({CounterKey()});
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ((*state)[0].version, 5);
  EXPECT_EQ((*state)[0].incarnation, incarnation);
  EXPECT_EQ(Counter(), 5);

  // A record deleted in between keeps every write: the recreation is a new record.
  requests = {Request("f"), Request("g"), Request("h")};
  results = apply.RunBatch(requests, [&](size_t i, const std::vector<Versioned>& s) {
    if (i != 1) return Increment(requests[i].dedup_key, s);
    Plan plan;
    plan.writes.push_back({s[0].key, std::nullopt});
    plan.memo = "deleted";
    return absl::StatusOr<Plan>(plan);
  });
  for (const auto& r : results) ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Calls("hset"), 4);
  EXPECT_EQ(Calls("del"), 1);
  EXPECT_EQ(Counter(), 1);
  state = apply.Read({CounterKey()});
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ((*state)[0].version, 1);
  EXPECT_THAT((*state)[0].incarnation, SizeIs(16));
  EXPECT_NE((*state)[0].incarnation, incarnation);
}

// A batch with more keys than one transaction watches goes in several, each reading what the
// ones before it wrote, and their round trips overlap (one carries a transaction's EXEC and the
// next one's reads).
TEST_F(ApplyOnceTest, ABatchLargerThanOneTransactionAppliesEveryRequestInOrder) {
  CountingClient counting(*client_);
  ApplyOnce apply(counting);
  std::vector<ApplyOnceRequest> requests;
  for (int i = 0; i < 100; ++i) requests.push_back(Request(absl::StrCat("e", i)));
  const std::vector<absl::StatusOr<ApplyResult>> results =
      apply.RunBatch(requests, [&](size_t i, const std::vector<Versioned>& s) {
        return Increment(absl::StrCat("e", i), s);
      });
  for (size_t i = 0; i < requests.size(); ++i) {
    ASSERT_TRUE(results[i].ok()) << results[i].status();
    EXPECT_EQ(results[i]->memo, absl::StrCat("e", i, "->", i + 1));
  }
  EXPECT_EQ(Counter(), 100);
  EXPECT_GT(counting.calls, 2) << "one transaction watched all 102 keys";
  EXPECT_LT(counting.calls, 10);
}

// A record that an earlier plan of the batch writes with an extra command (as scoring writes
// its shared model) is not known to the transaction: the request that reads it is finished
// alone, on a fresh read, and no update is lost.
TEST_F(ApplyOnceTest, ARequestOnARecordAnEarlierPlansCommandWritesIsFinishedAlone) {
  ApplyOnce apply(*client_);
  const std::string shared = LeadKey(kService, "shared", "model");
  std::vector<ApplyOnceRequest> requests = {Request("e", "lead-1"), Request("e", "lead-2")};
  for (ApplyOnceRequest& r : requests) r.state_keys.push_back(shared);
  std::map<size_t, int> plans;
  const std::vector<absl::StatusOr<ApplyResult>> results =
      apply.RunBatch(requests, [&](size_t i, const std::vector<Versioned>& s) {
        ++plans[i];
        absl::StatusOr<Plan> plan = Increment("e", s);
        int64_t model = 0;
        if (s[1].data.has_value()) {
          EXPECT_TRUE(absl::SimpleAtoi(*s[1].data, &model));
        }
        plan->extra_commands.push_back(
            {"HSET", shared, "v", absl::StrCat(s[1].version + 1), "d", absl::StrCat(model + 1)});
        return plan;
      });
  for (const auto& r : results) ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(plans[0], 1);
  EXPECT_EQ(plans[1], 1) << "not planned on the stale model in the transaction";
  EXPECT_EQ(Cmd({"HGET", shared, "d"}).str, "2") << "both updates of the model kept";
  EXPECT_EQ(Cmd({"HGET", shared, "v"}).str, "2");
}

// A command Redis refuses as it is queued (here a malformed one) fails the transaction as a
// whole (EXECABORT): its request reports the error, the others are applied without it. A
// command that fails as it runs (WRONGTYPE) fails its request only.
TEST_F(ApplyOnceTest, ARefusedOrFailingCommandFailsItsRequestAndTheOthersApply) {
  ApplyOnce apply(*client_);
  Cmd({"SET", "a-string", "x"});
  std::vector<ApplyOnceRequest> requests;
  for (int i = 0; i < 4; ++i) requests.push_back(Request("e", absl::StrCat("lead-", i)));
  const std::vector<absl::StatusOr<ApplyResult>> results =
      apply.RunBatch(requests, [&](size_t i, const std::vector<Versioned>& s) {
        absl::StatusOr<Plan> plan = Increment("e", s);
        if (i == 1) plan->extra_commands.push_back({"SET", "only-a-key"});
        if (i == 2) plan->extra_commands.push_back({"SADD", "a-string", "member"});
        return plan;
      });
  ASSERT_EQ(results.size(), 4u);
  EXPECT_EQ(results[1].status().code(), absl::StatusCode::kInternal) << results[1].status();
  EXPECT_THAT(std::string(results[1].status().message()), HasSubstr("wrong number of arguments"));
  EXPECT_FALSE(Exists(CounterKey("lead-1")));
  EXPECT_FALSE(Exists(requests[1].dedup_key));
  EXPECT_EQ(results[2].status().code(), absl::StatusCode::kInternal) << results[2].status();
  EXPECT_THAT(std::string(results[2].status().message()), HasSubstr("WRONGTYPE"));
  for (size_t i : {0, 3}) {
    ASSERT_TRUE(results[i].ok()) << results[i].status();
    EXPECT_EQ(results[i]->outcome, ApplyOutcome::kApplied);
    EXPECT_EQ(Counter(absl::StrCat("lead-", i)), 1);
  }
}

// Without a dedup key a request is a checked write: applied if its records are as planned
// on, re-planned if they moved, and nothing is remembered (no apply-once record, nothing in
// the registry's expiring part); the memo returned is the plan's.
TEST_F(ApplyOnceTest, ARequestWithoutADedupKeyIsACheckedWriteThatLeavesNoRecord) {
  ApplyOnce apply(*client_);
  ApplyOnceRequest request = Request("unused");
  request.dedup_key.clear();
  int plans = 0;
  absl::StatusOr<ApplyResult> r = apply.Run(request, [&](const std::vector<Versioned>& s) {
    if (++plans == 1) Cmd({"HSET", CounterKey(), "v", "1", "d", "10"});  // moves under it
    return Increment("checked", s);
  });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->outcome, ApplyOutcome::kApplied);
  EXPECT_EQ(r->memo, "checked->11");
  EXPECT_EQ(plans, 2);
  EXPECT_EQ(Counter(), 11);
  EXPECT_EQ(Cmd({"EXISTS", RegistryKey(kService, kLead) + ":expiring"}).integer, 0);
  ASSERT_TRUE(
      apply.Run(request, [&](const std::vector<Versioned>& s) { return Increment("checked", s); })
          .ok());
  EXPECT_EQ(Counter(), 12) << "not a duplicate: nothing remembers the first";
}

TEST_F(ApplyOnceTest, ACheckOnlyRecordIsReadWithoutItsDataAndStillWatched) {
  const std::string gate = "test:{lead-1}:gate";
  const std::string incarnation = "0123456789abcdef";
  Cmd({"HSET", gate, "v", "3", "i", incarnation, "d", std::string(4096, 'x')});
  ApplyOnce apply(*client_);
  ApplyOnceRequest request = Request("gated");
  request.state_keys = {gate, CounterKey()};
  request.check_only_keys = {gate};
  int plans = 0;
  absl::StatusOr<ApplyResult> r = apply.Run(request, [&](const std::vector<Versioned>& s) {
    EXPECT_EQ(s[0].data, std::nullopt) << "a check-only record comes without its data";
    EXPECT_EQ(s[0].version, 3 + (plans > 0 ? 1 : 0));
    EXPECT_EQ(s[0].incarnation, incarnation);
    if (++plans == 1) Cmd({"HSET", gate, "v", "4"});  // moves under it: still a conflict
    Plan plan;
    plan.writes.push_back({s[1].key, absl::StrCat(CounterOf({s[1]}) + 1)});
    plan.memo = "gated";
    return absl::StatusOr<Plan>(plan);
  });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(plans, 2);
  EXPECT_EQ(Counter(), 1);

  // In one transaction with a request that needs the same record's data, that one gets it (the
  // record is read once for both).
  ApplyOnceRequest reader = Request("reads-the-gate");
  reader.state_keys = {gate, CounterKey()};
  ApplyOnceRequest checker = Request("checks-the-gate");
  checker.state_keys = {gate, CounterKey()};
  checker.check_only_keys = {gate};
  std::vector<absl::StatusOr<ApplyResult>> batch = apply.RunBatch(
      {checker, reader}, [&](size_t i, const std::vector<Versioned>& s) -> absl::StatusOr<Plan> {
        if (i == 1) {
          EXPECT_TRUE(s[0].data.has_value());
        }
        return Increment(i == 0 ? "checks-the-gate" : "reads-the-gate", {s[1]});
      });
  ASSERT_THAT(batch, SizeIs(2));
  EXPECT_TRUE(batch[0].ok() && batch[1].ok());
  EXPECT_EQ(Counter(), 3);

  // A plan may not write what it only checked.
  ApplyOnceRequest writer = Request("writes-the-gate");
  writer.state_keys = {gate};
  writer.check_only_keys = {gate};
  r = apply.Run(writer, [&](const std::vector<Versioned>&) {
    Plan plan;
    plan.writes.push_back({gate, std::string("overwritten")});
    return absl::StatusOr<Plan>(plan);
  });
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("check-only"));
  EXPECT_EQ(Cmd({"HGET", gate, "d"}).str, std::string(4096, 'x'));
  EXPECT_FALSE(Exists(writer.dedup_key));
}

// A guarded record is read like any other but not watched: its writers move the guard, which is.
TEST_F(ApplyOnceTest, AGuardedRecordIsWatchedThroughItsGuard) {
  const std::string shared = "test:shared:presence";
  const std::string guard = "test:shared:changes";
  Cmd({"HSET", shared, "v", "1", "i", "0123456789abcdef", "d", "away"});
  ApplyOnce apply(*client_);
  ApplyOnceRequest request = Request("guarded-1");
  request.state_keys = {CounterKey(), shared};
  request.guarded_keys = {shared};
  request.guard_key = guard;

  // A writer that moves the guard with the record: the apply re-reads and plans on the new value.
  int plans = 0;
  absl::StatusOr<ApplyResult> r = apply.Run(request, [&](const std::vector<Versioned>& s) {
    EXPECT_EQ(s[1].data.value_or(""), plans == 0 ? "away" : "back");
    if (++plans == 1) {
      Cmd({"HSET", shared, "v", "2", "d", "back"});
      Cmd({"INCR", guard});
    }
    return Increment("guarded-1", s);
  });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(plans, 2) << "a guarded change between read and apply was not a conflict";
  EXPECT_EQ(Counter(), 1);

  // A write that leaves the guard alone is not seen: the record itself is not watched (this is
  // why every writer of a guarded record must move its guard).
  Cmd({"HSET", shared, "v", "3", "d", "away"});
  plans = 0;
  request.dedup_key = AppliedKey(kService, kLead, "guarded-2");
  r = apply.Run(request, [&](const std::vector<Versioned>& s) {
    if (++plans == 1) Cmd({"HSET", shared, "v", "4", "d", "back"});
    return Increment("guarded-2", s);
  });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(plans, 1) << "the guarded record was watched itself";
  EXPECT_EQ(Counter(), 2);

  // In a chunk with a request that does not leave it to the guard, the record is watched.
  ApplyOnceRequest unguarded = Request("unguarded", "lead-2");
  unguarded.state_keys = {CounterKey("lead-2"), shared};
  request.dedup_key = AppliedKey(kService, kLead, "guarded-3");
  plans = 0;
  std::vector<absl::StatusOr<ApplyResult>> batch = apply.RunBatch(
      {request, unguarded}, [&](size_t i, const std::vector<Versioned>& s) -> absl::StatusOr<Plan> {
        if (++plans == 1) Cmd({"HSET", shared, "v", "5", "d", "away"});
        return Increment(i == 0 ? "guarded-3" : "unguarded", s);
      });
  ASSERT_THAT(batch, SizeIs(2));
  ASSERT_TRUE(batch[0].ok() && batch[1].ok());
  EXPECT_GT(plans, 2) << "a write between read and apply went unseen";
  EXPECT_EQ(Counter(), 3);
  EXPECT_EQ(Counter("lead-2"), 1);
}

// RunBatchOnRead of one request on the records as read now; `meanwhile` runs once, between the
// transaction's WATCH and its EXEC (inside the first plan). Counts the plans made.
struct OnReadRun {
  absl::StatusOr<ApplyResult> result = absl::UnknownError("not run");
  int plans = 0;
};

TEST_F(ApplyOnceTest, AnAnchorRecordStandsInForTheDedupKeyAndTheTombstone) {
  ApplyOnce apply(*client_);
  auto run = [&](ApplyOnceRequest request, const std::string& event_id, bool write_anchor,
                 const std::function<void()>& meanwhile) {
    OnReadRun out;
    absl::StatusOr<std::vector<Versioned>> read = apply.Read(request.state_keys);
    EXPECT_TRUE(read.ok()) << read.status();
    std::vector<absl::StatusOr<ApplyResult>> results = apply.RunBatchOnRead(
        {request}, {*read}, [&](size_t, const std::vector<Versioned>& s) -> absl::StatusOr<Plan> {
          if (++out.plans == 1) meanwhile();
          if (write_anchor) return Increment(event_id, s);
          Plan memo_only;
          memo_only.memo = absl::StrCat(event_id, "->nothing");
          return memo_only;
        });
    out.result = results.at(0);
    return out;
  };
  auto anchored = [](const std::string& event_id, const std::string& lead) {
    ApplyOnceRequest r = Request(event_id, lead);
    r.anchor_key = r.state_keys[0];
    return r;
  };
  auto tombstone_set_by_hand = [&](const std::string& lead) {
    return [this, lead] { Cmd({"SET", TombstoneKey(kService, lead), "1", "PX", "60000"}); };
  };
  for (const std::string lead : {"present", "control", "erased", "raced", "memo-only"}) {
    ASSERT_TRUE(Apply(apply, "seed", lead).ok()) << lead;  // the anchor exists
  }

  // The tombstone and the dedup key are read, not watched: a write to them alone (no erasure
  // or applier would make one) goes unseen. Without an anchor both are watched.
  OnReadRun r = run(anchored("e", "present"), "e", true, [&] {
    tombstone_set_by_hand("present")();
    Cmd({"SET", AppliedKey(kService, "present", "e"), "someone else's memo"});
  });
  ASSERT_TRUE(r.result.ok()) << r.result.status();
  EXPECT_EQ(r.result->outcome, ApplyOutcome::kApplied);
  EXPECT_EQ(r.plans, 1) << "the tombstone or the dedup key was watched";
  EXPECT_EQ(Counter("present"), 2);
  r = run(Request("e", "control"), "e", true, tombstone_set_by_hand("control"));
  ASSERT_TRUE(r.result.ok()) << r.result.status();
  EXPECT_EQ(r.result->outcome, ApplyOutcome::kErased) << "without an anchor the tombstone counts";
  EXPECT_EQ(Counter("control"), 1);

  // What does move them moves the anchor too. An erasure deletes it:
  r = run(anchored("e", "erased"), "e", true,
          [&] { ASSERT_TRUE(EraseLead(apply, "erased").ok()); });
  ASSERT_TRUE(r.result.ok()) << r.result.status();
  EXPECT_EQ(r.result->outcome, ApplyOutcome::kErased);
  EXPECT_FALSE(Exists(CounterKey("erased")));
  EXPECT_FALSE(Exists(AppliedKey(kService, "erased", "e")));
  // and another applier of the same input writes it:
  std::unique_ptr<HiredisClient> other_client = MakeClient();
  ApplyOnce other(*other_client);
  r = run(anchored("e", "raced"), "e", true, [&] { ASSERT_TRUE(Apply(other, "e", "raced").ok()); });
  ASSERT_TRUE(r.result.ok()) << r.result.status();
  EXPECT_EQ(r.result->outcome, ApplyOutcome::kDuplicate);
  EXPECT_EQ(r.result->memo, "e->2") << "the other applier's memo";
  EXPECT_EQ(Counter("raced"), 2) << "applied twice";

  // A plan that leaves the anchor alone is finished alone, with every key watched.
  r = run(anchored("e", "memo-only"), "e", false, tombstone_set_by_hand("memo-only"));
  ASSERT_TRUE(r.result.ok()) << r.result.status();
  EXPECT_EQ(r.result->outcome, ApplyOutcome::kErased);
  EXPECT_FALSE(Exists(AppliedKey(kService, "memo-only", "e")));

  // An absent anchor stands in for the dedup key only: an erasure deletes nothing it watches.
  r = run(anchored("e", "new"), "e", true, tombstone_set_by_hand("new"));
  ASSERT_TRUE(r.result.ok()) << r.result.status();
  EXPECT_EQ(r.result->outcome, ApplyOutcome::kErased);
  EXPECT_FALSE(Exists(CounterKey("new")));
  r = run(anchored("e", "new-raced"), "e", true,
          [&] { ASSERT_TRUE(Apply(other, "e", "new-raced").ok()); });
  ASSERT_TRUE(r.result.ok()) << r.result.status();
  EXPECT_EQ(r.result->outcome, ApplyOutcome::kDuplicate);
  EXPECT_EQ(Counter("new-raced"), 1);
}

TEST_F(ApplyOnceTest, RecordsLeftOutOfTheRegistryStayOutAndSurviveErasureUnlessNamed) {
  ApplyOnce apply(*client_);
  const std::string shared = "test:team:{t}:state";  // every lead of a team writes it
  ApplyOnceRequest request = Request("e1");
  request.state_keys = {CounterKey(), shared};
  request.register_records = false;
  absl::StatusOr<ApplyResult> r = apply.Run(request, [&](const std::vector<Versioned>& s) {
    absl::StatusOr<Plan> plan = Increment("e1", s);
    plan->writes.push_back({shared, "team counters"});
    return plan;
  });
  ASSERT_TRUE(r.ok()) << r.status();
  const std::string registry = RegistryKey(kService, kLead);
  EXPECT_EQ(Cmd({"SCARD", registry}).integer, 0) << "a record joined the registry";
  EXPECT_EQ(Cmd({"ZCARD", ExpiringRegistryKey(registry)}).integer, 1) << "the apply-once record";
  // Erasure deletes the lead's own record by name, and its apply-once record through the
  // registry; the shared record stays.
  ASSERT_TRUE(EraseLead(apply, kLead, {CounterKey()}).ok());
  EXPECT_FALSE(Exists(CounterKey()));
  EXPECT_FALSE(Exists(request.dedup_key));
  EXPECT_TRUE(Exists(shared));
}

// A call to the client from inside a session (a planner that reads, say) gets a connection of
// its own rather than waiting for the one its own thread holds; the extra one is closed after.
TEST_F(ApplyOnceTest, ACallInsideASessionOfAOneConnectionPoolDoesNotWaitForIt) {
  std::unique_ptr<HiredisClient> one_connection = MakeClient(/*pool_size=*/1);
  ApplyOnce apply(*one_connection);
  absl::StatusOr<ApplyResult> r =
      apply.Run(Request("e1"), [&](const std::vector<Versioned>& s) -> absl::StatusOr<Plan> {
        absl::StatusOr<std::vector<Versioned>> again = apply.Read({CounterKey()});
        if (!again.ok()) return again.status();
        return Increment("e1", s);
      });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Counter(), 1);
  const int64_t clients_before = ConnectedClients();
  ASSERT_TRUE(Apply(apply, "e2").ok());
  EXPECT_EQ(ConnectedClients(), clients_before) << "the pool kept its one connection";
}

// An apply that finds its input applied returns without EXEC; the client drops the WATCH, so
// a later transaction on the same connection is not refused for the keys it watched.
TEST_F(ApplyOnceTest, AConnectionIsNotLeftWatchingAfterADuplicate) {
  std::unique_ptr<HiredisClient> one_connection = MakeClient(/*pool_size=*/1);
  ApplyOnce apply(*one_connection);
  ASSERT_TRUE(Apply(apply, "e1").ok());
  absl::StatusOr<ApplyResult> again = Apply(apply, "e1");
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_EQ(again->outcome, ApplyOutcome::kDuplicate);
  Cmd({"SET", Request("e1").dedup_key, "moved", "PX", "60000"});  // moves a watched key
  absl::StatusOr<std::vector<Reply>> exec =
      one_connection->Pipeline({{"MULTI"}, {"SET", "k", "v"}, {"EXEC"}});
  ASSERT_TRUE(exec.ok()) << exec.status();
  EXPECT_FALSE(exec->back().is_nil()) << "EXEC refused: the connection was still watching";
  EXPECT_EQ(Cmd({"GET", "k"}).str, "v");
}

TEST_F(ApplyOnceTest, GivesUpWithAbortedWhenTheRecordKeepsChanging) {
  ApplyOnce apply(*client_, /*max_attempts=*/3);
  int plans = 0;
  absl::StatusOr<ApplyResult> r = apply.Run(Request("a"), [&](const std::vector<Versioned>& s) {
    ++plans;
    Cmd({"HINCRBY", CounterKey(), "v", "1"});  // a writer that never stops
    return Increment("a", s);
  });
  EXPECT_EQ(r.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(plans, 3);
  EXPECT_FALSE(Exists(Request("a").dedup_key)) << "an aborted input must not count as applied";
  EXPECT_TRUE(Cmd({"HGET", CounterKey(), "d"}).is_nil());
}

// A record deleted and created again between our read and our apply is a different record:
// its version must not look unchanged, or our plan, made from the old record, overwrites the new
// one (a lost update).
TEST_F(ApplyOnceTest, DeleteAndRecreateBetweenReadAndApplyIsAConflict) {
  ApplyOnce apply(*client_);
  std::unique_ptr<HiredisClient> other_client = MakeClient();
  ApplyOnce other(*other_client);
  auto set_to = [&](const std::string& event, std::optional<std::string> data) {
    absl::StatusOr<ApplyResult> r = other.Run(Request(event), [&](const std::vector<Versioned>& s) {
      Plan plan;
      plan.writes.push_back({s[0].key, data});
      return absl::StatusOr<Plan>(plan);
    });
    ASSERT_TRUE(r.ok() && r->outcome == ApplyOutcome::kApplied) << r.status();
  };
  set_to("create", "10");

  int plans = 0;
  absl::StatusOr<ApplyResult> r = apply.Run(Request("add"), [&](const std::vector<Versioned>& s) {
    if (++plans == 1) {
      set_to("delete", std::nullopt);
      set_to("recreate", "100");
    }
    return Increment("add", s);
  });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(plans, 2) << "the plan made from the deleted record was applied";
  EXPECT_EQ(Counter(), 101) << "the recreated record's value was overwritten";
}

TEST_F(ApplyOnceTest, ARecordKeepsItsIncarnationAcrossUpdatesAndARecreatedOneGetsANewOne) {
  ApplyOnce apply(*client_);
  ASSERT_TRUE(Apply(apply, "e1").ok());
  const std::string first = Cmd({"HGET", CounterKey(), "i"}).str;
  EXPECT_EQ(first.size(), 16u) << "64 random bits in hex";
  ASSERT_TRUE(Apply(apply, "e2").ok());
  EXPECT_EQ(Cmd({"HGET", CounterKey(), "i"}).str, first) << "an update keeps the incarnation";
  Cmd({"DEL", CounterKey()});
  ASSERT_TRUE(Apply(apply, "e3").ok());
  EXPECT_NE(Cmd({"HGET", CounterKey(), "i"}).str, first);
  EXPECT_EQ(Counter(), 1);
}

TEST_F(ApplyOnceTest, AWriteCanGiveTheRecordAnIncarnationAndALaterRequestCanPlanOnIt) {
  ApplyOnce apply(*client_);
  ASSERT_TRUE(Apply(apply, "e0").ok());
  const std::string kept = Cmd({"HGET", CounterKey(), "i"}).str;

  // Chained records (RunBatchOnRead): request b is planned on the record as a's write leaves
  // it, with the fresh incarnation a's write gives it.
  auto chain = [&](const std::string& a, const std::string& b) {
    absl::StatusOr<std::vector<Versioned>> read = apply.Read({CounterKey()});
    EXPECT_TRUE(read.ok()) << read.status();
    absl::StatusOr<Plan> plan_a = Increment(a, *read);
    plan_a->incarnations = {{CounterKey(), NewIncarnation()}};
    const std::vector<Versioned> after_a = {{CounterKey(), (*read)[0].version + 1,
                                             plan_a->writes[0].data,
                                             plan_a->incarnations[0].second}};
    const std::vector<std::vector<Versioned>> given = {*read, after_a};
    const std::vector<std::string> ids = {a, b};
    // Another writer lands between the read and the scripts: it moves the version by one and
    // keeps the incarnation, which is just what b expects of a's write but for the incarnation.
    EXPECT_TRUE(Apply(apply, "other-" + a).ok());
    return apply.RunBatchOnRead(
        {Request(a), Request(b)}, given,
        [&](size_t i, const std::vector<Versioned>& state) -> absl::StatusOr<Plan> {
          if (i == 0 && state[0].version == given[0][0].version) return plan_a;
          return Increment(ids[i], state);
        });
  };
  std::vector<absl::StatusOr<ApplyResult>> results = chain("a", "b");
  ASSERT_TRUE(results[0].ok() && results[1].ok());
  // a conflicted (the other writer), so b's check failed too and both were re-planned in order.
  EXPECT_EQ(results[0]->memo, "a->3");
  EXPECT_EQ(results[1]->memo, "b->4");
  EXPECT_EQ(Counter(), 4) << "b's plan on a's unapplied write was applied";
  EXPECT_EQ(Cmd({"HGET", CounterKey(), "i"}).str, kept) << "a fresh plan keeps the incarnation";

  // Without a writer in between, the script applies and the record takes the given
  // incarnation.
  absl::StatusOr<std::vector<Versioned>> read = apply.Read({CounterKey()});
  ASSERT_TRUE(read.ok());
  absl::StatusOr<Plan> plan_c = Increment("c", *read);
  plan_c->incarnations = {{CounterKey(), NewIncarnation()}};
  ASSERT_TRUE(apply
                  .RunBatchOnRead({Request("c")}, {*read},
                                  [&](size_t, const std::vector<Versioned>&) { return plan_c; })[0]
                  .ok());
  EXPECT_EQ(Cmd({"HGET", CounterKey(), "i"}).str, plan_c->incarnations[0].second);
  EXPECT_EQ(Counter(), 5);
}

TEST_F(ApplyOnceTest, ARecordWrittenBeforeIncarnationsIsCheckedByItsData) {
  // A record as the previous release wrote it: {v, d} and no incarnation.
  Cmd({"HSET", CounterKey(), "v", "1", "d", "10"});
  ApplyOnce apply(*client_);
  int plans = 0;
  absl::StatusOr<ApplyResult> r = apply.Run(Request("add"), [&](const std::vector<Versioned>& s) {
    EXPECT_TRUE(s[0].incarnation.empty());
    if (++plans == 1) {
      // Deleted and recreated at the same version, the old way, with other data.
      Cmd({"DEL", CounterKey()});
      Cmd({"HSET", CounterKey(), "v", "1", "d", "100"});
    }
    return Increment("add", s);
  });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(plans, 2) << "the plan made from the replaced record was applied";
  EXPECT_EQ(Counter(), 101);
  EXPECT_FALSE(Cmd({"HGET", CounterKey(), "i"}).is_nil()) << "its first update gives it one";
  ASSERT_TRUE(Apply(apply, "add-2").ok());
  EXPECT_EQ(Counter(), 102);
}

TEST_F(ApplyOnceTest, AFreshApplyTakesTwoRoundTripsAndADuplicateOne) {
  CountingClient counting(*client_);
  ApplyOnce apply(counting);
  ASSERT_TRUE(Apply(apply, "warm-up").ok());
  counting.calls = 0;
  ApplyOnceRequest request = Request("e1");
  // Records that do not exist yet are read and checked too.
  request.state_keys.push_back(LeadKey(kService, kLead, "absent-1"));
  request.state_keys.push_back(LeadKey(kService, kLead, "absent-2"));
  absl::StatusOr<ApplyResult> r =
      apply.Run(request, [&](const std::vector<Versioned>& s) { return Increment("e1", s); });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->outcome, ApplyOutcome::kApplied);
  EXPECT_EQ(counting.calls, 2) << "WATCH + reads in one pipeline, then MULTI ... EXEC";
  counting.calls = 0;
  r = apply.Run(request, [&](const std::vector<Versioned>& s) { return Increment("e1", s); });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->outcome, ApplyOutcome::kDuplicate);
  // The read finds the memo; the client drops the WATCH before it pools the connection again.
  EXPECT_EQ(counting.calls, 1);
  EXPECT_EQ(Counter(), 2);
}

// A batch on records the caller read: one transaction finds the duplicate and the erasure and
// applies the others.
TEST_F(ApplyOnceTest, ABatchOnReadRecordsFindsDuplicatesAndErasuresInOneTransaction) {
  CountingClient counting(*client_);
  ApplyOnce apply(counting);
  ASSERT_TRUE(Apply(apply, "e", "lead-0").ok());  // a duplicate
  ASSERT_TRUE(Apply(apply, "before", "lead-1").ok());
  ASSERT_TRUE(EraseLead(apply, "lead-2").ok());
  std::vector<ApplyOnceRequest> requests;
  std::vector<std::vector<Versioned>> read;
  for (int i = 0; i < 4; ++i) {
    requests.push_back(Request("e", absl::StrCat("lead-", i)));
    absl::StatusOr<std::vector<Versioned>> records = apply.Read(requests.back().state_keys);
    ASSERT_TRUE(records.ok()) << records.status();
    read.push_back(*records);
  }
  counting.calls = 0;
  const std::vector<absl::StatusOr<ApplyResult>> results = apply.RunBatchOnRead(
      requests, read, [&](size_t, const std::vector<Versioned>& s) { return Increment("e", s); });
  EXPECT_EQ(counting.calls, 2) << "WATCH + reads, then MULTI ... EXEC";
  ASSERT_EQ(results.size(), 4u);
  for (const auto& r : results) ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(results[0]->outcome, ApplyOutcome::kDuplicate);
  EXPECT_EQ(results[0]->memo, "e->1") << "the first apply's memo, not this plan's";
  EXPECT_EQ(results[1]->outcome, ApplyOutcome::kApplied);
  EXPECT_EQ(results[1]->memo, "e->2");
  EXPECT_EQ(results[2]->outcome, ApplyOutcome::kErased);
  EXPECT_EQ(results[3]->outcome, ApplyOutcome::kApplied);
  EXPECT_EQ(Counter("lead-0"), 1);
  EXPECT_EQ(Counter("lead-1"), 2);
  EXPECT_FALSE(Exists(CounterKey("lead-2")));
  EXPECT_FALSE(Exists(requests[2].dedup_key));
  // Records are registered when created, and an update leaves them registered: erasing a lead
  // still finds every record.
  for (const std::string lead : {"lead-1", "lead-3"}) {
    EXPECT_EQ(Cmd({"SISMEMBER", RegistryKey(kService, lead), CounterKey(lead)}).integer, 1) << lead;
  }
}

TEST_F(ApplyOnceTest, ARecordCreatedBetweenReadAndApplyIsAConflict) {
  ApplyOnce apply(*client_);
  const std::string other_key = LeadKey(kService, kLead, "other");
  ApplyOnceRequest request = Request("add");
  request.state_keys.push_back(other_key);
  int plans = 0;
  absl::StatusOr<ApplyResult> r = apply.Run(request, [&](const std::vector<Versioned>& s) {
    // The second record was absent when read; someone creates it before the script runs.
    if (++plans == 1) Cmd({"HSET", other_key, "v", "1", "d", "x"});
    EXPECT_EQ(s[1].data.has_value(), plans > 1);
    return Increment("add", s);
  });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(plans, 2) << "the plan made while the record was absent was applied";
  EXPECT_EQ(Counter(), 1);
}

TEST_F(ApplyOnceTest, ErasedLeadIsNotWrittenAndReportsErased) {
  ApplyOnce apply(*client_);
  ASSERT_TRUE(EraseLead(apply).ok());
  int plans = 0;
  absl::StatusOr<ApplyResult> r = apply.Run(Request("late"), [&](const std::vector<Versioned>& s) {
    ++plans;
    return Increment("late", s);
  });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->outcome, ApplyOutcome::kErased);
  EXPECT_EQ(r->memo, "");
  EXPECT_EQ(plans, 0);
  EXPECT_FALSE(Exists(CounterKey()));
  EXPECT_FALSE(Exists(Request("late").dedup_key));
}

TEST_F(ApplyOnceTest, ErasureBetweenPlanningAndApplyingIsCaughtByTheScript) {
  ApplyOnce apply(*client_);
  absl::StatusOr<ApplyResult> r =
      apply.Run(Request("racing"), [&](const std::vector<Versioned>& s) {
        Cmd({"SET", TombstoneKey(kService, kLead), "1", "PX", "60000"});  // erased meanwhile
        return Increment("racing", s);
      });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->outcome, ApplyOutcome::kErased);
  EXPECT_FALSE(Exists(CounterKey()));
  EXPECT_FALSE(Exists(Request("racing").dedup_key));
}

TEST_F(ApplyOnceTest, EraseDeletesEveryRegisteredKeyAndMemoAndLeavesATombstone) {
  ApplyOnce apply(*client_);
  const std::string profile = LeadKey(kService, kLead, "profile");
  const std::string index = LeadKey(kService, kLead, "by-email");
  const std::string unregistered = LeadKey(kService, kLead, "scratch");
  const std::string other_lead_counter = CounterKey("lead-2");
  ApplyOnceRequest request = Request("e1");
  request.state_keys.push_back(profile);
  absl::StatusOr<ApplyResult> r = apply.Run(request, [&](const std::vector<Versioned>& s) {
    Plan plan;
    plan.writes.push_back({s[0].key, std::string("1")});
    plan.writes.push_back({s[1].key, std::string("{\"email\":\"j@e.com\"}")});
    plan.extra_commands.push_back({"SET", index, "j@e.com"});
    plan.register_keys.push_back(index);
    plan.memo = "m";
    return absl::StatusOr<Plan>(plan);
  });
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(Apply(apply, "e2").ok());
  ASSERT_TRUE(Apply(apply, "x1", "lead-2").ok());
  Cmd({"SET", unregistered, "tmp"});
  for (const std::string& k :
       {CounterKey(), profile, index, Request("e1").dedup_key, Request("e2").dedup_key}) {
    ASSERT_TRUE(Exists(k)) << k;
  }

  ASSERT_TRUE(EraseLead(apply, kLead, {unregistered}).ok());
  for (const std::string& k :
       {CounterKey(), profile, index, Request("e1").dedup_key, Request("e2").dedup_key,
        unregistered, RegistryKey(kService, kLead), RegistryKey(kService, kLead) + ":expiring"}) {
    EXPECT_FALSE(Exists(k)) << k << " survived erasure";
  }
  const int64_t ttl = Cmd({"PTTL", TombstoneKey(kService, kLead)}).integer;
  EXPECT_GT(ttl, 0);
  EXPECT_LE(ttl, 3'600'000);
  EXPECT_TRUE(Exists(other_lead_counter)) << "another lead's state was erased";

  // A re-delivery of an input applied before the erasure must not resurrect its memo (which
  // holds the lead's data) or its state.
  absl::StatusOr<ApplyResult> replay = Apply(apply, "e1");
  ASSERT_TRUE(replay.ok());
  EXPECT_EQ(replay->outcome, ApplyOutcome::kErased);
  // Idempotent.
  EXPECT_TRUE(EraseLead(apply, kLead, {unregistered}).ok());
}

TEST_F(ApplyOnceTest, ExpiredDedupRecordsArePrunedFromTheRegistry) {
  ApplyOnce apply(*client_);
  const std::string expiring = RegistryKey(kService, kLead) + ":expiring";
  ApplyOnceRequest short_lived = Request("old");
  short_lived.dedup_ttl = absl::Milliseconds(50);
  ASSERT_TRUE(
      apply.Run(short_lived, [](const std::vector<Versioned>& s) { return Increment("old", s); })
          .ok());
  EXPECT_EQ(Cmd({"ZCARD", expiring}).integer, 1);
  ASSERT_TRUE(WaitFor([&] { return !Exists(short_lived.dedup_key); }, absl::Seconds(10)));

  ASSERT_TRUE(Apply(apply, "new").ok());
  EXPECT_TRUE(Cmd({"ZSCORE", expiring, short_lived.dedup_key}).is_nil())
      << "an expired dedup record stayed in the registry";
  EXPECT_FALSE(Cmd({"ZSCORE", expiring, Request("new").dedup_key}).is_nil());
  // Forgotten after its TTL: the same input applies again (documented behaviour).
  absl::StatusOr<ApplyResult> again =
      apply.Run(short_lived, [](const std::vector<Versioned>& s) { return Increment("old", s); });
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->outcome, ApplyOutcome::kApplied);
}

TEST_F(ApplyOnceTest, WritesHonourTheirTtlAndDeletesRemoveTheRecord) {
  ApplyOnce apply(*client_);
  absl::StatusOr<ApplyResult> r = apply.Run(Request("ttl"), [&](const std::vector<Versioned>& s) {
    Plan plan;
    plan.writes.push_back({s[0].key, std::string("5"), absl::Minutes(1)});
    return absl::StatusOr<Plan>(plan);
  });
  ASSERT_TRUE(r.ok()) << r.status();
  const int64_t ttl = Cmd({"PTTL", CounterKey()}).integer;
  EXPECT_GT(ttl, 0);
  EXPECT_LE(ttl, 60'000);

  r = apply.Run(Request("del"), [&](const std::vector<Versioned>& s) {
    EXPECT_EQ(s[0].version, 1);
    Plan plan;
    plan.writes.push_back({s[0].key, std::nullopt});
    return absl::StatusOr<Plan>(plan);
  });
  ASSERT_TRUE(r.ok()) << r.status();
  absl::StatusOr<std::vector<Versioned>> state = apply.Read({CounterKey()});
  ASSERT_TRUE(state.ok());
  EXPECT_EQ((*state)[0].version, 0);
  EXPECT_EQ((*state)[0].data, std::nullopt);
}

TEST_F(ApplyOnceTest, PlannerErrorIsReturnedAsIsAndNothingIsApplied) {
  ApplyOnce apply(*client_);
  absl::StatusOr<ApplyResult> r = apply.Run(Request("bad"), [](const std::vector<Versioned>&) {
    return absl::StatusOr<Plan>(absl::InvalidArgumentError("score rules reject this lead"));
  });
  EXPECT_EQ(r.status(), absl::InvalidArgumentError("score rules reject this lead"));
  EXPECT_FALSE(Exists(Request("bad").dedup_key));
}

TEST_F(ApplyOnceTest, PlanWritingAKeyItDidNotReadIsRejected) {
  ApplyOnce apply(*client_);
  absl::StatusOr<ApplyResult> r = apply.Run(Request("sneaky"), [](const std::vector<Versioned>&) {
    Plan plan;
    plan.writes.push_back({"test:{lead-1}:elsewhere", std::string("x")});
    return absl::StatusOr<Plan>(plan);
  });
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("test:{lead-1}:elsewhere"));
  EXPECT_FALSE(Exists("test:{lead-1}:elsewhere"));
  EXPECT_FALSE(Exists(Request("sneaky").dedup_key));
}

int64_t CachedScripts(RedisClient& client) {
  absl::StatusOr<Reply> info = client.Command({"INFO", "memory"});
  if (!info.ok()) return -1;
  for (absl::string_view line : absl::StrSplit(info->str, "\r\n")) {
    int64_t n;
    if (absl::ConsumePrefix(&line, "number_of_cached_scripts:") && absl::SimpleAtoi(line, &n)) {
      return n;
    }
  }
  return -1;
}

TEST_F(ApplyOnceTest, AnApplyRunsNoScriptAndErasureLoadsItsScriptAgainAfterAFlush) {
  ApplyOnce apply(*client_);
  ASSERT_TRUE(Apply(apply, "e1").ok());
  EXPECT_EQ(CachedScripts(*client_), 0) << "an apply is a transaction, not a script";
  ASSERT_TRUE(EraseLead(apply, "lead-2").ok());
  EXPECT_GE(CachedScripts(*client_), 1);
  Cmd({"SCRIPT", "FLUSH"});
  ASSERT_EQ(CachedScripts(*client_), 0);

  absl::StatusOr<ApplyResult> r = Apply(apply, "e2");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->outcome, ApplyOutcome::kApplied);
  EXPECT_EQ(Counter(), 2);
  EXPECT_TRUE(EraseLead(apply).ok());  // EVALSHA → NOSCRIPT → LOAD → EVALSHA
  EXPECT_FALSE(Exists(CounterKey()));
  EXPECT_GE(CachedScripts(*client_), 1);
}

TEST_F(ApplyOnceTest, LuaScriptErrorsAreStatusesNotReplies) {
  LuaScript ok("return KEYS[1] .. ':' .. ARGV[1]");
  absl::StatusOr<Reply> r = ok.Run(*client_, {"k"}, {"v"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->str, "k:v");
  EXPECT_EQ(ok.sha1().size(), 40u);

  LuaScript failing("return redis.call('INCR', KEYS[1])");
  Cmd({"SET", "not-a-number", "abc"});
  absl::StatusOr<Reply> bad = failing.Run(*client_, {"not-a-number"}, {});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("not an integer"));
}

TEST_F(ApplyOnceTest, RedisKilledIsUnavailableAndAfterARestartTheDataIsStillThere) {
  ApplyOnce apply(*client_);
  ASSERT_TRUE(Apply(apply, "e1").ok());

  ASSERT_TRUE(server_->Kill().ok());
  absl::StatusOr<ApplyResult> down = Apply(apply, "e2");
  EXPECT_EQ(down.status().code(), absl::StatusCode::kUnavailable) << down.status();

  ASSERT_TRUE(server_->Restart().ok());
  // Pooled connections broken by the crash fail once each, then the client reconnects.
  int attempts = 0;
  absl::StatusOr<ApplyResult> up;
  ASSERT_TRUE(WaitFor(
      [&] {
        ++attempts;
        up = Apply(apply, "e2");
        return up.ok();
      },
      absl::Seconds(10)))
      << up.status();
  EXPECT_LE(attempts, 5) << "the client should reconnect after at most one failure per pooled "
                            "connection";
  EXPECT_EQ(up->outcome, ApplyOutcome::kApplied);
  EXPECT_EQ(Counter(), 2) << "e1's write was lost in the crash";

  absl::StatusOr<ApplyResult> replay = Apply(apply, "e1");
  ASSERT_TRUE(replay.ok());
  EXPECT_EQ(replay->outcome, ApplyOutcome::kDuplicate) << "the dedup record did not survive";
  EXPECT_EQ(replay->memo, "e1->1");
}

TEST_F(ApplyOnceTest, GracefulRestartKeepsTheData) {
  ApplyOnce apply(*client_);
  ASSERT_TRUE(Apply(apply, "e1").ok());
  ASSERT_TRUE(server_->Stop().ok());
  EXPECT_EQ(client_->Ping().code(), absl::StatusCode::kUnavailable);
  ASSERT_TRUE(server_->Restart().ok());
  ASSERT_TRUE(WaitFor([&] { return client_->Ping().ok(); }, absl::Seconds(10)));
  EXPECT_EQ(Counter(), 1);
}

TEST_F(ApplyOnceTest, PipelineReturnsErrorRepliesInPlace) {
  Cmd({"SET", "s", "text"});
  absl::StatusOr<std::vector<Reply>> replies =
      client_->Pipeline({{"INCR", "n"}, {"INCR", "s"}, {"GET", "s"}, {"GET", "missing"}});
  ASSERT_TRUE(replies.ok()) << replies.status();
  ASSERT_EQ(replies->size(), 4u);
  EXPECT_EQ((*replies)[0].integer, 1);
  EXPECT_TRUE((*replies)[1].is_error());
  EXPECT_EQ(ErrorReplyToStatus((*replies)[1]).code(), absl::StatusCode::kInternal);
  EXPECT_EQ((*replies)[2].str, "text");
  EXPECT_TRUE((*replies)[3].is_nil());
}

}  // namespace
}  // namespace leadflow::redis
