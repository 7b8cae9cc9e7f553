// The event feed: every committed audit event once, in sequence order, with its names; the
// position survives a reopen only once acknowledged; a store that already has events backfills
// them; turning the feed off and on again backfills everything.
#include "tsdb/event_feed.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/support/status_matchers.h"
#include "tests/tsdb/test_util.h"
#include "tsdb/store.h"

namespace stickmeter::tsdb::testing {
namespace {

constexpr int64_t kT0 = 1'700'000'000'000;

StoreOptions FeedOptions(const std::string& path, bool feed) {
  StoreOptions options;
  options.path = path;
  options.sync_writes = false;
  options.apply_delay_ms = 0;
  options.event_feed = feed;
  return options;
}

// Sends `n` updates of key k<i % keys>, each value one more than the last of its key.
void Feed(Store& store, int n, int keys, int64_t t, std::map<std::string, uint64_t>& values) {
  auto table = Table("/quota");
  for (int i = 0; i < n; ++i) {
    std::string key = "k" + std::to_string(i % keys);
    uint64_t v = ++values[key];
    ASSERT_TRUE(SubmitSync(store, Batch("lb1", 1, table, key, t + i, {{"http_req_cnt", v}})).ok());
  }
  store.Flush();
}

// Reads everything the feed has, in batches of `max`, acknowledging each; returns delta per key
// and checks that sequence numbers are unique.
std::map<std::string, uint64_t> Drain(EventFeed& feed, size_t max, std::set<uint64_t>* seqs) {
  std::map<std::string, uint64_t> totals;
  auto pos = feed.Position();
  EXPECT_OK(pos);
  FeedPosition at = *pos;
  for (int rounds = 0; rounds < 10000; ++rounds) {
    auto batch = feed.Read(at, FeedLimits{max});
    EXPECT_OK(batch);
    if (!batch.ok()) break;
    for (const auto& e : batch->events) {
      EXPECT_EQ("/quota", e.table);
      EXPECT_EQ("lb1", e.source);
      EXPECT_EQ("http_req_cnt", e.metric);
      EXPECT_TRUE(seqs->insert(e.seq).second) << "seq " << e.seq << " twice";
      totals[e.key] += e.delta;
    }
    EXPECT_TRUE(feed.Ack(batch->next).ok());
    at = batch->next;
    if (batch->events.empty() && !batch->backfill) break;
  }
  return totals;
}

TEST(EventFeedTest, OffByDefault) {
  TempDir dir;
  auto store = OpenOrDie(FeedOptions(dir.Sub("db"), false));
  EXPECT_EQ(nullptr, store->event_feed());
}

TEST(EventFeedTest, ShipsEveryEventOnceInOrderAndKeepsTheAcknowledgedPosition) {
  TempDir dir;
  std::map<std::string, uint64_t> values;
  std::set<uint64_t> seqs;
  {
    auto store = OpenOrDie(FeedOptions(dir.Sub("db"), true));
    ASSERT_NE(nullptr, store->event_feed());
    Feed(*store, 50, 7, kT0, values);
    EventFeed& feed = *store->event_feed();
    auto pos = feed.Position();
    ASSERT_TRUE(pos.ok());
    // Read without acknowledging: the same events again.
    auto first = feed.Read(*pos, FeedLimits{10});
    ASSERT_TRUE(first.ok());
    ASSERT_EQ(10u, first->events.size());
    auto again = feed.Read(*pos, FeedLimits{10});
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(first->events[0].seq, again->events[0].seq);
    for (size_t i = 1; i < first->events.size(); ++i) {
      EXPECT_EQ(first->events[i - 1].seq + 1, first->events[i].seq);
    }
    EXPECT_EQ("k0", first->events[0].key);
    EXPECT_EQ(1u, first->events[0].value);
    EXPECT_EQ(1u, first->events[0].delta);
    EXPECT_EQ(kT0, first->events[0].t_ms);
    EXPECT_EQ("first", first->events[0].reason);
    // Three events per read: rows are split where needed.
    auto totals = Drain(feed, 3, &seqs);
    EXPECT_EQ(values, totals);
    auto stats = feed.Stats();
    ASSERT_TRUE(stats.ok());
    EXPECT_EQ(stats->committed_seq, stats->shipped_through);
    EXPECT_EQ(50u, stats->committed_seq);
    ASSERT_TRUE(store->Close().ok());
  }
  {
    // Reopened: nothing is shipped twice; new events follow.
    auto store = OpenOrDie(FeedOptions(dir.Sub("db"), true));
    std::map<std::string, uint64_t> more = values;
    Feed(*store, 20, 7, kT0 + 1000, more);
    auto totals = Drain(*store->event_feed(), 1000, &seqs);
    std::map<std::string, uint64_t> want;
    for (const auto& [k, v] : more) {
      if (v != values[k]) want[k] = v - values[k];
    }
    EXPECT_EQ(want, totals);
    EXPECT_EQ(70u, seqs.size());
  }
}

// Keys may be up to 1 MiB: a batch stops at its byte budget as well as at its event count, but
// always takes one event, and reading on from there loses and repeats nothing.
TEST(EventFeedTest, ABatchIsBoundedInBytesAsWellAsInEvents) {
  TempDir dir;
  auto store = OpenOrDie(FeedOptions(dir.Sub("db"), true));
  auto table = Table("/quota");
  const std::string big(100'000, 'x');
  for (int i = 0; i < 10; ++i) {
    const std::string key = big + std::to_string(i);
    ASSERT_OK(SubmitSync(*store, Batch("lb1", 1, table, key, kT0 + i, {{"http_req_cnt", 1}})));
  }
  store->Flush();
  EventFeed& feed = *store->event_feed();
  auto pos = feed.Position();
  ASSERT_OK(pos);
  // A budget smaller than one event still moves on, one event at a time.
  auto one = feed.Read(*pos, FeedLimits{1000, 1});
  ASSERT_OK(one);
  EXPECT_EQ(1u, one->events.size());
  FeedPosition at = *pos;
  std::vector<size_t> sizes;
  std::set<uint64_t> seqs;
  for (int round = 0; round < 20; ++round) {
    // 250,000 bytes: two keys of 100,000 bytes and a third that passes the budget.
    auto batch = feed.Read(at, FeedLimits{1000, 250'000});
    ASSERT_OK(batch);
    if (batch->events.empty()) break;
    sizes.push_back(batch->events.size());
    for (const auto& e : batch->events) EXPECT_TRUE(seqs.insert(e.seq).second) << e.seq;
    ASSERT_OK(feed.Ack(batch->next));
    at = batch->next;
  }
  EXPECT_EQ((std::vector<size_t>{3, 3, 3, 1}), sizes);
  EXPECT_EQ(10u, seqs.size());
}

TEST(EventFeedTest, BackfillsAStoreThatHasEventsAndAgainAfterRunningWithoutIt) {
  TempDir dir;
  std::map<std::string, uint64_t> values;
  {
    auto store = OpenOrDie(FeedOptions(dir.Sub("db"), false));
    Feed(*store, 40, 5, kT0, values);
  }
  {
    auto store = OpenOrDie(FeedOptions(dir.Sub("db"), true));
    Feed(*store, 10, 5, kT0 + 1000, values);
    std::set<uint64_t> seqs;
    EXPECT_EQ(values, Drain(*store->event_feed(), 4, &seqs));
    EXPECT_EQ(50u, seqs.size());
  }
  {
    // Events committed with the feed off are not in the outbox: the next feed starts over.
    auto store = OpenOrDie(FeedOptions(dir.Sub("db"), false));
    Feed(*store, 10, 5, kT0 + 2000, values);
  }
  {
    auto store = OpenOrDie(FeedOptions(dir.Sub("db"), true));
    std::set<uint64_t> seqs;
    EXPECT_EQ(values, Drain(*store->event_feed(), 1000, &seqs));
    EXPECT_EQ(60u, seqs.size());
  }
}

TEST(EventFeedTest, AReopenWithABacklogInTheOutboxLosesNothing) {
  TempDir dir;
  std::map<std::string, uint64_t> values;
  {
    auto store = OpenOrDie(FeedOptions(dir.Sub("db"), true));
    Feed(*store, 30, 4, kT0, values);
  }
  {
    // A read-only open steps over it too.
    auto ro = Store::OpenReadOnly(FeedOptions(dir.Sub("db"), false));
    ASSERT_OK(ro);
    auto tables = (*ro)->Tables();
    ASSERT_TRUE(tables.ok());
    EXPECT_EQ(1u, tables->size());
  }
  // Nothing was acknowledged: the open steps over the outbox and numbering goes on after it.
  auto store = OpenOrDie(FeedOptions(dir.Sub("db"), true));
  Feed(*store, 10, 4, kT0 + 1000, values);
  std::set<uint64_t> seqs;
  EXPECT_EQ(values, Drain(*store->event_feed(), 7, &seqs));
  EXPECT_EQ(40u, seqs.size());
  EXPECT_EQ(40u, *seqs.rbegin());
}

TEST(EventFeedTest, TheStoreIdIsRandomAndKept) {
  TempDir dir;
  std::string id;
  {
    auto store = OpenOrDie(FeedOptions(dir.Sub("a"), true));
    auto got = store->event_feed()->StoreId();
    ASSERT_TRUE(got.ok());
    id = *got;
    EXPECT_EQ(16u, id.size());
    EXPECT_EQ(std::string::npos, id.find_first_not_of("0123456789abcdef"));
  }
  std::map<std::string, uint64_t> values;
  {
    // Off, with a commit (the position is dropped), then on again: the same id.
    auto store = OpenOrDie(FeedOptions(dir.Sub("a"), false));
    Feed(*store, 2, 1, kT0, values);
  }
  auto store = OpenOrDie(FeedOptions(dir.Sub("a"), true));
  EXPECT_EQ(id, *store->event_feed()->StoreId());
  auto other = OpenOrDie(FeedOptions(dir.Sub("b"), true));
  EXPECT_NE(id, *other->event_feed()->StoreId());
}

TEST(EventFeedTest, AReadOnlyOpenLeavesThePositionAlone) {
  TempDir dir;
  std::map<std::string, uint64_t> values;
  std::set<uint64_t> seqs;
  auto store = OpenOrDie(FeedOptions(dir.Sub("db"), true));
  Feed(*store, 10, 3, kT0, values);
  EXPECT_EQ(values, Drain(*store->event_feed(), 100, &seqs));
  ASSERT_TRUE(store->Close().ok());
  {
    auto ro = Store::OpenReadOnly(FeedOptions(dir.Sub("db"), false));
    ASSERT_TRUE(ro.ok());
    EXPECT_EQ(nullptr, (*ro)->event_feed());
  }
  store = OpenOrDie(FeedOptions(dir.Sub("db"), true));
  std::map<std::string, uint64_t> more = values;
  Feed(*store, 3, 3, kT0 + 100, more);
  auto totals = Drain(*store->event_feed(), 100, &seqs);
  EXPECT_EQ(3u, [&] {
    uint64_t n = 0;
    for (const auto& [k, v] : totals) n += v;
    return n;
  }());
}

}  // namespace
}  // namespace stickmeter::tsdb::testing
