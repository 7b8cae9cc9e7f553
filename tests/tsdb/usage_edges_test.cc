// Usage over every key with sub-minute edges: the store reads a key's audit events only where
// the minute rollups say the key has some, and a range that ends after the latest update ends at
// the next whole minute instead. Both must give the exact sums of the raw events, committed
// through the journal or directly, for every key and for one key, read by one thread or shared
// out between three (stripes of two key ids each, so that every stripe holds several keys).
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "common/time.h"
#include "tests/support/status_matchers.h"
#include "tests/tsdb/test_util.h"
#include "tsdb/every_key.h"
#include "tsdb/scans.h"
#include "tsdb/store.h"

namespace stickmeter::tsdb::testing {
namespace {

class UsageEdgesTest : public ::testing::TestWithParam<StoreWay> {
 protected:
  // An empty store (without fsync) committing and reading the way the parameter says.
  std::unique_ptr<Store> OpenStore() {
    StoreOptions options;
    options.path = dir_.Sub("db");
    options.sync_writes = false;
    auto store = OpenOrDie(options);
    if (store) GetParam().ApplyTo(*store);
    return store;
  }
  TempDir dir_;
};

TEST_P(UsageEdgesTest, EveryKeyAndOneKeyEqualTheRawEventsUpToNowAndPast) {
  auto store = OpenStore();
  auto table = Table("/q");
  std::mt19937_64 rng(11);
  struct Ev {
    int64_t t;
    std::string key;
    uint64_t delta;
  };
  std::vector<Ev> events;
  std::map<std::string, uint64_t> abs;
  // Updates received over the last three minutes up to now, some keys only long before: the
  // minutes at the edges hold some keys and not others.
  const int64_t now = NowUnixMs();
  for (int i = 0; i < 400; ++i) {
    const bool old = i % 4 == 0;
    const std::string key = (old ? "old-" : "k-") + std::to_string(rng() % 20);
    const int64_t t = old ? now - 3'600'000 - static_cast<int64_t>(rng() % 600'000)
                          : now - static_cast<int64_t>(rng() % 180'000);
    const uint64_t d = 1 + rng() % 50;
    abs[key] += d;
    events.push_back({t, key, d});
    ASSERT_TRUE(SubmitSync(*store, Batch("lb1", 1, table, key, t, {{"gpc0", abs[key]}})).ok());
  }
  // Journalled: the changes may still wait in the journal, which queries read too.
  int64_t latest = 0;
  for (const auto& e : events) latest = std::max(latest, e.t);
  std::vector<std::pair<int64_t, int64_t>> ranges = {
      {now - 7'200'000 + 17, now + 1'234},  // ends after everything, mid-minute
      {now - 95'000, latest + 1},           // ends right after the latest update
      {now - 95'000, latest},               // leaves the latest out
      {now - 3'650'000, now - 3'599'999},   // a minute around the old updates' end
      {now - 61'000, now + 86'400'000},     // a day ahead
  };
  for (int i = 0; i < 40; ++i) {
    const int64_t a = now - 4'500'000 + static_cast<int64_t>(rng() % 4'500'000);
    const int64_t b = a + 1 + static_cast<int64_t>(rng() % 4'600'000);
    ranges.emplace_back(a, b);
  }
  // Short ranges among the recent updates, most across a minute's end: a key's two edges then
  // lie a few seconds apart, and its audit rows are read twice from about the same place.
  for (int i = 0; i < 60; ++i) {
    const int64_t a = now - 180'000 + static_cast<int64_t>(rng() % 180'000);
    ranges.emplace_back(a, a + 1 + static_cast<int64_t>(rng() % 25'000));
  }
  for (const auto& [a, b] : ranges) {
    std::map<std::string, uint64_t> want;
    for (const auto& e : events) {
      if (e.t >= a && e.t < b) want[e.key] += e.delta;
    }
    auto rows = store->Usage(UsageQuery{"/q", "gpc0", a, b, std::nullopt, std::nullopt});
    ASSERT_OK(rows);
    std::map<std::string, uint64_t> got;
    for (const auto& r : *rows) got[r.key] = r.total;
    ASSERT_EQ(want, got) << "range [" << a - now << "," << b - now << ") from now";
    for (const std::string key : {"k-3", "old-5"}) {
      auto one = store->Usage(UsageQuery{"/q", "gpc0", a, b, key, std::nullopt});
      ASSERT_TRUE(one.ok());
      const uint64_t total = one->empty() ? 0 : one->front().total;
      ASSERT_EQ(want[key], total) << key << " range [" << a - now << "," << b - now << ")";
    }
  }
}

// An audit row holds a key's updates of one commit over up to kRawRowSpanMs: rows that begin
// before a minute's end and hold updates after it lie at both sub-minute edges of an every-key
// usage, whose audit events are read key after key through one iterator.
TEST_P(UsageEdgesTest, RowsAcrossAMinuteEndCountAtBothEdges) {
  auto store = OpenStore();
  auto table = Table("/q");
  const int64_t end = (NowUnixMs() / 60'000 - 5) * 60'000;
  // Each key: two commits of four updates each (two audit rows), across `end` and across
  // `end` + 1 min; then one more, later. Each update adds k + 1.
  const int64_t commits[2][4] = {{-4'000, -2'000, 1'000, 3'000}, {58'000, 59'000, 61'000, 63'000}};
  for (int k = 0; k < 6; ++k) {
    const std::string key = "k" + std::to_string(k);
    uint64_t value = 0;
    for (const auto& offsets : commits) {
      ingest::UpdateBatch b;
      for (int64_t offset : offsets) {
        value += static_cast<uint64_t>(k + 1);
        ingest::UpdateBatch one = Batch("lb1", 1, table, key, end + offset, {{"gpc0", value}});
        if (b.tables.empty()) {
          b = std::move(one);
        } else {
          b.tables[0].entries.push_back(std::move(one.tables[0].entries[0]));
        }
      }
      ASSERT_TRUE(SubmitSync(*store, std::move(b)).ok());
    }
    ASSERT_TRUE(
        SubmitSync(*store, Batch("lb1", 1, table, key, end + 300'000, {{"gpc0", value + 1}})).ok());
  }
  // [end - 3 s, end + 62 s): every update but those at -4 s and +63 s.
  auto rows =
      store->Usage(UsageQuery{"/q", "gpc0", end - 3'000, end + 62'000, std::nullopt, std::nullopt});
  ASSERT_OK(rows);
  ASSERT_EQ(6u, rows->size());
  for (int k = 0; k < 6; ++k) {
    EXPECT_EQ("k" + std::to_string(k), (*rows)[k].key);
    EXPECT_EQ(6u * (k + 1), (*rows)[k].total) << k;
  }
}

// The stripes of a shared-out scan cover every key id once, and each finds its next id.
TEST(KeyStripeTest, StripesShareEveryIdOutOnce) {
  for (uint32_t count : {1u, 2u, 3u, 4u}) {
    for (uint32_t block : {1u, 2u, 64u}) {
      for (uint32_t id = 0; id < 3 * count * block + 5; ++id) {
        int holders = 0;
        for (uint32_t index = 0; index < count; ++index) {
          const KeyStripe stripe{index, count, block};
          if (stripe.Contains(id)) ++holders;
          uint32_t next = id;
          while (!stripe.Contains(next)) ++next;
          ASSERT_EQ(next, stripe.NextFrom(id)) << index << "/" << count << " block " << block;
        }
        ASSERT_EQ(1, holders) << id << " in " << count << " stripes of " << block;
      }
    }
  }
  EXPECT_EQ(UINT32_MAX, (KeyStripe{0, 2, 4096}.NextFrom(UINT32_MAX - 10)));
}

// Queries over every key together use at most the budget's threads, each at least its own.
TEST(ScanBudgetTest, QueriesShareTheThreadsOut) {
  ScanBudget budget(3);
  {
    ScanBudget::Hold first(budget, 4);
    EXPECT_EQ(3u, first.count());
    ScanBudget::Hold second(budget, 4);
    EXPECT_EQ(1u, second.count());  // its own thread, past the budget
    {
      ScanBudget::Hold third(budget, 1);
      EXPECT_EQ(1u, third.count());
    }
  }
  ScanBudget::Hold after(budget, 2);  // all given back
  EXPECT_EQ(2u, after.count());
  ScanBudget::Hold rest(budget, 4);
  EXPECT_EQ(1u, rest.count());
}

INSTANTIATE_TEST_SUITE_P(CommitWay, UsageEdgesTest, ::testing::ValuesIn(StoreWay::All()),
                         StoreWay::Name);

}  // namespace
}  // namespace stickmeter::tsdb::testing
