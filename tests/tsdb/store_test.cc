// The store end to end on real RocksDB in temporary directories: counting rules through the
// write path, rollups against raw events, reopen, read-only and backup, retention and the query
// surface. Opening damaged stores is tested in store_open_test.cc, the journal and the two-stage
// commit in store_journal_test.cc.
#include "tsdb/store.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "common/metrics.h"
#include "tests/support/status_matchers.h"
#include "tests/tsdb/store_test_util.h"
#include "tests/tsdb/test_util.h"
#include "tsdb/format.h"
#include "tsdb/merge_operators.h"
#include "tsdb/retention_filter.h"
#include "tsdb/store_testing.h"

namespace stickmeter::tsdb {
namespace {

using ingest::MetricKind;
using testing::Batch;
using testing::CommitWayName;
using testing::kCommitWays;
using testing::kDay;
using testing::kT0;
using testing::OpenOrDie;
using testing::Opts;
using testing::RenderAudit;
using testing::RenderExport;
using testing::SubmitSync;
using testing::Table;
using testing::TempDir;
using testing::Total;
using testing::WithRawDb;

TEST(StoreTest, CountingRulesThroughTheWritePath) {
  TempDir dir;
  auto store = OpenOrDie(Opts(dir.Sub("db")));
  auto t = Table("/quota", 10'000);
  auto sub = [&](uint64_t conn, int64_t dt, uint64_t v, bool restarted = false) {
    ASSERT_TRUE(
        SubmitSync(*store, Batch("lb1", conn, t, "acme", kT0 + dt, {{"gpc0", v}}, restarted)).ok());
  };
  sub(1, 0, 5);              // first
  sub(1, 1000, 5);           // same value: nothing
  sub(1, 2000, 9);           // increment 4
  sub(1, 30'000, 2);         // gap 28 s > 10 s + 1 s on the same connection: expired
  sub(2, 200'000, 4);        // reconnect, long gap: increment decides
  sub(2, 201'000, 1);        // lower, last in lower half: reset
  sub(3, 202'000, 3, true);  // restart: counted whole
  sub(3, 203'000, 3);        // replay of the same value: nothing
  EXPECT_EQ(
      "0 lb1 gpc0 5 5 first\n"
      "2000 lb1 gpc0 9 4 increment\n"
      "30000 lb1 gpc0 2 2 expired\n"
      "200000 lb1 gpc0 4 2 increment\n"
      "201000 lb1 gpc0 1 1 reset\n"
      "202000 lb1 gpc0 3 3 restart\n",
      RenderAudit(*store, "/quota", "acme"));
  EXPECT_EQ(17u, Total(*store, "/quota", "gpc0", "acme"));
  auto stats = store->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(1u, stats->live_series);
  EXPECT_EQ(6u, stats->deltas_written);
  EXPECT_EQ(8u, stats->updates_received);
}

TEST(StoreTest, WrapOnlyForCounter32) {
  TempDir dir;
  auto store = OpenOrDie(Opts(dir.Sub("db")));
  auto t = Table("/quota");
  const uint64_t high = 4'294'967'000u;
  ASSERT_TRUE(
      SubmitSync(*store, Batch("lb1", 1, t, "k", kT0,
                               {{"gpc0", high}, {"bytes_out_cnt", high, MetricKind::kCounter64}}))
          .ok());
  ASSERT_TRUE(
      SubmitSync(*store, Batch("lb1", 1, t, "k", kT0 + 1000,
                               {{"gpc0", 100}, {"bytes_out_cnt", 100, MetricKind::kCounter64}}))
          .ok());
  EXPECT_EQ(
      "0 lb1 gpc0 4294967000 4294967000 first\n"
      "0 lb1 bytes_out_cnt 4294967000 4294967000 first\n"
      "1000 lb1 gpc0 100 396 wrap\n"
      "1000 lb1 bytes_out_cnt 100 100 reset\n",
      RenderAudit(*store, "/quota", "k"));
  EXPECT_EQ(high + 396, Total(*store, "/quota", "gpc0", "k"));
}

TEST(StoreTest, RestartEpochAppliesToEverySeriesOfThatSourceOnly) {
  TempDir dir;
  auto store = OpenOrDie(Opts(dir.Sub("db")));
  auto t = Table("/quota");
  for (const char* src : {"lb1", "lb2"}) {
    for (const char* key : {"a", "b"}) {
      ASSERT_TRUE(SubmitSync(*store, Batch(src, 1, t, key, kT0, {{"gpc0", 10}})).ok());
    }
  }
  // lb1 restarted (its process holds no counts): a, b count from 0 even above the last value.
  ASSERT_TRUE(SubmitSync(*store, Batch("lb1", 2, t, "a", kT0 + 1000, {{"gpc0", 12}}, true)).ok());
  ASSERT_TRUE(SubmitSync(*store, Batch("lb1", 2, t, "b", kT0 + 2000, {{"gpc0", 3}})).ok());
  ASSERT_TRUE(SubmitSync(*store, Batch("lb1", 2, t, "b", kT0 + 3000, {{"gpc0", 4}})).ok());
  ASSERT_TRUE(SubmitSync(*store, Batch("lb2", 1, t, "a", kT0 + 3000, {{"gpc0", 11}})).ok());
  EXPECT_EQ(
      "0 lb1 gpc0 10 10 first\n"
      "0 lb2 gpc0 10 10 first\n"
      "1000 lb1 gpc0 12 12 restart\n"
      "3000 lb2 gpc0 11 1 increment\n",
      RenderAudit(*store, "/quota", "a"));
  EXPECT_EQ(
      "0 lb1 gpc0 10 10 first\n"
      "0 lb2 gpc0 10 10 first\n"
      "2000 lb1 gpc0 3 3 restart\n"
      "3000 lb1 gpc0 4 1 increment\n",
      RenderAudit(*store, "/quota", "b"));
  // Per-source usage and the shared-key warning (two sources feed the same keys).
  UsageQuery q{"/quota", "gpc0", 0, kT0 + kDay, std::nullopt, std::string("lb2")};
  auto rows = store->Usage(q);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(2u, rows->size());
  EXPECT_EQ(11u, (*rows)[0].total);
  auto tables = store->Tables();
  ASSERT_TRUE(tables.ok());
  EXPECT_EQ(2u, tables->at(0).multi_source_keys);
}

TEST(StoreTest, ReopenResumesStateAndEpochs) {
  TempDir dir;
  auto t = Table("/quota");
  {
    auto store = OpenOrDie(Opts(dir.Sub("db")));
    ASSERT_TRUE(SubmitSync(*store, Batch("lb1", 1, t, "k", kT0, {{"gpc0", 10}})).ok());
    ASSERT_TRUE(SubmitSync(*store, Batch("lb1", 2, t, "k", kT0 + 5, {{"gpc0", 11}}, true)).ok());
    ASSERT_TRUE(store->Close().ok());
    ASSERT_TRUE(store->Close().ok());  // idempotent
    EXPECT_FALSE(store->Submit(Batch("lb1", 2, t, "k", kT0, {{"gpc0", 1}}), nullptr).ok());
  }
  auto store = OpenOrDie(Opts(dir.Sub("db")));
  ASSERT_TRUE(SubmitSync(*store, Batch("lb1", 3, t, "k", kT0 + 10, {{"gpc0", 11}})).ok());
  ASSERT_TRUE(SubmitSync(*store, Batch("lb1", 3, t, "k", kT0 + 20, {{"gpc0", 15}})).ok());
  EXPECT_EQ(
      "0 lb1 gpc0 10 10 first\n"
      "5 lb1 gpc0 11 11 restart\n"
      "20 lb1 gpc0 15 4 increment\n",
      RenderAudit(*store, "/quota", "k"));
  // Sequence numbers keep growing across reopen (audit paging stays ordered).
  AuditQuery q;
  q.table = "/quota";
  q.key = "k";
  q.from_ms = kT0;
  q.to_ms = kT0 + 100;
  q.limit = 2;
  auto page1 = store->Audit(q);
  ASSERT_TRUE(page1.ok());
  ASSERT_EQ(2u, page1->size());
  q.after = std::make_pair(page1->back().t_ms, page1->back().seq);
  auto page2 = store->Audit(q);
  ASSERT_TRUE(page2.ok());
  ASSERT_EQ(1u, page2->size());
  EXPECT_EQ(15u, page2->front().value);
  EXPECT_GT(page2->front().seq, page1->back().seq);
}

// One audit row holds every event of an entry update; paging can stop inside it and resume.
TEST(StoreTest, AuditPagesResumeInsideAnEntryUpdate) {
  TempDir dir;
  auto t = Table("/quota");
  auto store = OpenOrDie(Opts(dir.Sub("db")));
  ASSERT_TRUE(SubmitSync(*store, Batch("lb1", 1, t, "k", kT0,
                                       {{"gpc0", 1}, {"http_req_cnt", 2}, {"bytes_out_cnt", 3}}))
                  .ok());
  ASSERT_TRUE(SubmitSync(*store, Batch("lb1", 1, t, "k", kT0,
                                       {{"gpc0", 1}, {"http_req_cnt", 5}, {"bytes_out_cnt", 9}}))
                  .ok());
  AuditQuery q;
  q.table = "/quota";
  q.key = "k";
  q.from_ms = kT0;
  q.to_ms = kT0 + 1;
  std::vector<std::string> seen;
  for (int page = 0; page < 10; ++page) {
    q.limit = 2;
    auto r = store->Audit(q);
    ASSERT_OK(r);
    if (r->empty()) break;
    for (const auto& e : *r) seen.push_back(e.metric + "=" + std::to_string(e.delta));
    q.after = std::make_pair(r->back().t_ms, r->back().seq);
  }
  const std::vector<std::string> want = {"gpc0=1", "http_req_cnt=2", "bytes_out_cnt=3",
                                         "http_req_cnt=3", "bytes_out_cnt=6"};
  EXPECT_EQ(want, seen);
  q.after.reset();
  q.limit = 100;
  q.metric = "bytes_out_cnt";
  auto only = store->Audit(q);
  ASSERT_TRUE(only.ok());
  ASSERT_EQ(2u, only->size());
  EXPECT_EQ(6u, only->back().delta);
}

// Random deltas over three days; every usage query over random ranges (including sub-minute
// edges) equals the sum of the raw events generated in that range.
// Both ways a group commits its state and rollups: journalled (the applier sums many groups in
// one pass, crossing minute, hour and day boundaries) and directly.
class RollupsTest : public ::testing::TestWithParam<testing_internal::JournalMode> {};

TEST_P(RollupsTest, RollupsEqualRawEventsForRandomRanges) {
  TempDir dir;
  auto store = OpenOrDie(Opts(dir.Sub("db")));
  testing_internal::SetJournalMode(*store, GetParam());
  auto t = Table("/q");
  std::mt19937_64 rng(42);
  struct Ev {
    int64_t t;
    std::string key, source, metric;
    uint64_t delta;
  };
  std::vector<Ev> events;
  std::map<std::tuple<std::string, std::string, std::string>, uint64_t> abs;
  const std::vector<std::string> keys = {"a", "b", "c", "d", "e"};
  const std::vector<std::string> sources = {"lb1", "lb2"};
  // An update carries a random subset of the counters, so an entry gains counters over time,
  // some ordered before the ones it has (the store keeps an entry's counters in one row).
  const std::vector<std::string> metrics = {"http_req_cnt", "gpc0", "bytes_out_cnt"};
  const int64_t base = kT0 - kT0 % kDay + 3'600'000 * 5 + 1234;
  int64_t now = base;
  for (int i = 0; i < 3000; ++i) {
    now += static_cast<int64_t>(rng() % 180'000);
    const auto& key = keys[rng() % keys.size()];
    const auto& src = sources[rng() % sources.size()];
    std::vector<testing::V> values;
    const uint64_t subset = 1 + rng() % 7;
    for (size_t m = 0; m < metrics.size(); ++m) {
      if (!((subset >> m) & 1)) continue;
      uint64_t& v = abs[{key, src, metrics[m]}];
      const uint64_t d = rng() % 1000;
      v += d;
      values.push_back(testing::V{metrics[m], v});
      if (d > 0) events.push_back({now, key, src, metrics[m], d});
    }
    // Not waiting for each batch: groups then hold many batches, and the applier many groups.
    ASSERT_TRUE(
        store->Submit(Batch(src, 1, t, key, now, values), [](Status st) { ASSERT_OK(st); }).ok());
  }
  store->Flush();
  const int64_t end = now + 1;
  for (int i = 0; i < 300; ++i) {
    int64_t a = base - 100'000 + static_cast<int64_t>(rng() % (end - base + 200'000));
    int64_t b = base - 100'000 + static_cast<int64_t>(rng() % (end - base + 200'000));
    if (i % 3 == 0) a -= a % 60'000;  // mix aligned and unaligned edges
    if (i % 5 == 0) b -= b % 3'600'000;
    if (a == b) continue;
    if (a > b) std::swap(a, b);
    const std::string& metric = metrics[static_cast<size_t>(i) % metrics.size()];
    std::map<std::string, uint64_t> want;
    for (const auto& e : events) {
      if (e.t >= a && e.t < b && e.metric == metric) want[e.key] += e.delta;
    }
    auto rows = store->Usage(UsageQuery{"/q", metric, a, b, std::nullopt, std::nullopt});
    ASSERT_OK(rows);
    std::map<std::string, uint64_t> got;
    for (const auto& r : *rows) got[r.key] = r.total;
    ASSERT_EQ(want, got) << metric << " range [" << a << "," << b << ")";
    // The series of one key sums to the same total, whatever the step.
    for (int64_t step : {60'000LL, 3'600'000LL, 86'400'000LL}) {
      auto s = store->GetSeries(SeriesQuery{"/q", metric, "c", a, b, step, std::nullopt});
      ASSERT_TRUE(s.ok());
      uint64_t sum = 0;
      for (size_t j = 0; j < s->points.size(); ++j) {
        sum += s->points[j].v;
        if (j > 0) {
          ASSERT_LT(s->points[j - 1].t_ms, s->points[j].t_ms) << "step " << step;
        }
      }
      ASSERT_EQ(want["c"], sum) << "step " << step << " range [" << a << "," << b << ")";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(CommitWay, RollupsTest, kCommitWays, CommitWayName);

// The audit rows of an entry's updates written together (by the applier, or by a direct group)
// hold many updates each. The audit trail still lists every event once, in (time, sequence)
// order, in one page or many and after a reopen, also when two sources' clocks disagree so that
// rows overlap in time; and usage over sub-second ranges still adds up.
class AuditRowsTest : public ::testing::TestWithParam<testing_internal::JournalMode> {};

TEST_P(AuditRowsTest, RowsOfManyUpdatesListEveryEventOnceInOrder) {
  TempDir dir;
  auto t = Table("/q");
  std::mt19937_64 rng(7);
  struct Ev {
    int64_t t;
    std::string metric;
    uint64_t delta;
    std::string line;  // "t source metric value delta", t from kT0
  };
  std::map<std::string, std::vector<Ev>> want;  // by key, in submission order
  std::map<std::tuple<std::string, std::string, std::string>, uint64_t> abs;
  // 20 keys: more than one journal partition (runs of 16 key ids), so an applier pass writes
  // several partitions in one WriteBatch.
  std::vector<std::string> keys;
  for (int k = 0; k < 20; ++k) keys.push_back("k" + std::to_string(k));
  const std::vector<std::string> metrics = {"http_req_cnt", "gpc0"};
  const int updates = 3000;
  auto render = [](const std::vector<AuditEvent>& events) {
    std::vector<std::string> out;
    for (const auto& e : events) {
      out.push_back(std::to_string(e.t_ms - kT0) + " " + e.source + " " + e.metric + " " +
                    std::to_string(e.value) + " " + std::to_string(e.delta));
    }
    return out;
  };
  auto check = [&](Store& store) {
    for (const auto& key : keys) {
      // Sequence numbers follow submission, so (time, sequence) order is a stable sort by time.
      std::vector<Ev> evs = want[key];
      std::stable_sort(evs.begin(), evs.end(), [](const Ev& x, const Ev& y) { return x.t < y.t; });
      std::vector<std::string> expected;
      for (const auto& e : evs) expected.push_back(e.line);
      AuditQuery q;
      q.table = "/q";
      q.key = key;
      q.from_ms = 0;
      q.to_ms = kT0 + kDay;
      q.limit = 100'000;
      auto all = store.Audit(q);
      ASSERT_OK(all);
      ASSERT_EQ(expected, render(*all)) << key;
      std::vector<AuditEvent> paged;
      q.limit = 7;
      for (;;) {
        auto page = store.Audit(q);
        ASSERT_OK(page);
        if (page->empty()) break;
        paged.insert(paged.end(), page->begin(), page->end());
        q.after = std::make_pair(page->back().t_ms, page->back().seq);
      }
      ASSERT_EQ(expected, render(paged)) << key;
      // Usage over ranges with sub-second edges (read from the audit rows) adds up.
      for (int i = 0; i < 40; ++i) {
        const int64_t a = evs.front().t + static_cast<int64_t>(rng() % 60'000) - 5'000;
        const int64_t b = a + 1 + static_cast<int64_t>(rng() % 20'000);
        const std::string& metric = metrics[static_cast<size_t>(i) % metrics.size()];
        uint64_t sum = 0;
        for (const auto& e : evs) {
          if (e.t >= a && e.t < b && e.metric == metric) sum += e.delta;
        }
        ASSERT_EQ(sum, Total(store, "/q", metric, key, a, b)) << key << " [" << a << "," << b;
      }
    }
  };
  {
    auto store = OpenOrDie(Opts(dir.Sub("db")));
    testing_internal::SetJournalMode(*store, GetParam());
    int64_t now = kT0 + 500;
    for (int i = 0; i < updates; ++i) {
      now += static_cast<int64_t>(rng() % 30);  // ~45 s in all: rows of up to kRawRowSpanMs
      const std::string& key = keys[rng() % keys.size()];
      const bool second = rng() % 2 == 1;
      const std::string src = second ? "lb2" : "lb1";
      const int64_t at = second ? now - 4'000 : now;  // lb2's clock is 4 s behind
      std::vector<testing::V> values;
      for (const auto& m : metrics) {
        uint64_t& v = abs[{key, src, m}];
        const uint64_t d = 1 + rng() % 5;
        v += d;
        values.push_back(testing::V{m, v});
        want[key].push_back(Ev{at, m, d,
                               std::to_string(at - kT0) + " " + src + " " + m + " " +
                                   std::to_string(v) + " " + std::to_string(d)});
      }
      // Not waiting for each batch: groups then hold many, and the applier many groups.
      ASSERT_TRUE(
          store->Submit(Batch(src, 1, t, key, at, values), [](Status st) { ASSERT_OK(st); }).ok());
    }
    store->Flush();
    check(*store);
  }
  size_t rows = 0;
  WithRawDb(dir.Sub("db"), [&](rocksdb::DB* db, auto& cf) {
    std::unique_ptr<rocksdb::Iterator> it(
        db->NewIterator(rocksdb::ReadOptions(), cf.at(format::kRawCf)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++rows;
    ASSERT_TRUE(it->status().ok());
  });
  EXPECT_LT(rows, static_cast<size_t>(updates) / 2) << "entry updates written together share rows";
  auto reopened = OpenOrDie(Opts(dir.Sub("db")));
  check(*reopened);
}

INSTANTIATE_TEST_SUITE_P(CommitWay, AuditRowsTest, kCommitWays, CommitWayName);

TEST(StoreTest, ReadOnlyOpenWhileWriterIsOpenSeesCommittedData) {
  TempDir dir;
  auto t = Table("/quota");
  auto writer = OpenOrDie(Opts(dir.Sub("db")));
  ASSERT_TRUE(SubmitSync(*writer, Batch("lb1", 1, t, "k", kT0, {{"gpc0", 42}})).ok());
  auto ro = Store::OpenReadOnly(Opts(dir.Sub("db")));
  ASSERT_OK(ro);
  EXPECT_EQ(42u, Total(**ro, "/quota", "gpc0", "k"));
  EXPECT_EQ(Status::Code::kUnavailable,
            (*ro)->Submit(Batch("lb1", 1, t, "k", kT0, {{"gpc0", 1}}), nullptr).code());
  // The writer keeps working while the reader is open.
  ASSERT_TRUE(SubmitSync(*writer, Batch("lb1", 1, t, "k", kT0 + 1, {{"gpc0", 43}})).ok());
  EXPECT_EQ(43u, Total(*writer, "/quota", "gpc0", "k"));
  // A backup taken through the read-only view (stickmeter backup while serve runs) opens.
  ASSERT_TRUE((*ro)->Backup(dir.Sub("backup")).ok());
  auto copy = OpenOrDie(Opts(dir.Sub("backup")));
  EXPECT_EQ(42u, Total(*copy, "/quota", "gpc0", "k"));
}

TEST(StoreTest, BackupOpensAsAStore) {
  TempDir dir;
  auto t = Table("/quota");
  auto store = OpenOrDie(Opts(dir.Sub("db")));
  ASSERT_TRUE(SubmitSync(*store, Batch("lb1", 1, t, "k", kT0, {{"gpc0", 7}})).ok());
  ASSERT_TRUE(store->Backup(dir.Sub("backup")).ok());
  EXPECT_FALSE(store->Backup(dir.Sub("backup")).ok());  // must not exist
  auto copy = OpenOrDie(Opts(dir.Sub("backup")));
  EXPECT_EQ(7u, Total(*copy, "/quota", "gpc0", "k"));
}

TEST(StoreTest, RetentionDropsOldDataOnCompaction) {
  TempDir dir;
  auto t = Table("/quota");
  std::atomic<int64_t> now{kT0};
  StoreOptions o = Opts(dir.Sub("db"));
  o.raw_retention_ms = 2 * kDay;
  o.minute_retention_ms = 2 * kDay;
  o.hour_retention_ms = 10 * kDay;
  o.day_retention_ms = 0;
  o.clock = [&now] { return now.load(); };
  auto store = OpenOrDie(o);
  ASSERT_TRUE(SubmitSync(*store, Batch("lb1", 1, t, "k", kT0, {{"gpc0", 5}})).ok());
  ASSERT_TRUE(SubmitSync(*store, Batch("lb1", 1, t, "k", kT0 + 4 * kDay, {{"gpc0", 8}})).ok());
  now = kT0 + 5 * kDay;
  ASSERT_TRUE(store->CompactAll().ok());
  // The first event is gone from the audit trail and the minute rollups...
  EXPECT_EQ("345600000 lb1 gpc0 8 3 increment\n", RenderAudit(*store, "/quota", "k"));
  auto minute = store->GetSeries(
      SeriesQuery{"/quota", "gpc0", "k", kT0 - kT0 % 60000, kT0 + 60000, 60000, std::nullopt});
  ASSERT_TRUE(minute.ok());
  EXPECT_TRUE(minute->points.empty());
  // ...but the hour and day rollups still hold it.
  auto hour = store->GetSeries(SeriesQuery{"/quota", "gpc0", "k", kT0 - kT0 % 3600000,
                                           kT0 - kT0 % 3600000 + 3600000, 3600000, std::nullopt});
  ASSERT_TRUE(hour.ok());
  ASSERT_EQ(1u, hour->points.size());
  EXPECT_EQ(5u, hour->points[0].v);
  now = kT0 + 20 * kDay;
  ASSERT_TRUE(store->CompactAll().ok());
  const int64_t day0 = kT0 - kT0 % kDay;
  EXPECT_EQ(8u, Total(*store, "/quota", "gpc0", "k", day0, day0 + 10 * kDay));
  hour = store->GetSeries(SeriesQuery{"/quota", "gpc0", "k", kT0 - kT0 % 3600000,
                                      kT0 - kT0 % 3600000 + 3600000, 3600000, std::nullopt});
  ASSERT_TRUE(hour.ok());
  EXPECT_TRUE(hour->points.empty());
}

TEST(StoreTest, QueryErrorsNameTheParameter) {
  TempDir dir;
  auto store = OpenOrDie(Opts(dir.Sub("db")));
  ASSERT_TRUE(SubmitSync(*store, Batch("lb1", 1, Table("/quota"), "k", kT0,
                                       {{"gpc0", 5}, {"conn_cur", 2, MetricKind::kGauge}}))
                  .ok());
  auto u = store->Usage(UsageQuery{"/nope", "gpc0", 0, 10, std::nullopt, std::nullopt});
  EXPECT_EQ(Status::Code::kNotFound, u.status().code());
  EXPECT_EQ(0u, u.status().message().find("table"));
  u = store->Usage(UsageQuery{"/quota", "gpc9", 0, 10, std::nullopt, std::nullopt});
  EXPECT_EQ(Status::Code::kNotFound, u.status().code());
  EXPECT_EQ(0u, u.status().message().find("metric"));
  u = store->Usage(UsageQuery{"/quota", "gpc0", 10, 10, std::nullopt, std::nullopt});
  EXPECT_EQ(Status::Code::kInvalidArgument, u.status().code());
  EXPECT_EQ(0u, u.status().message().find("from"));
  u = store->Usage(UsageQuery{"/quota", "conn_cur", 0, 10, std::nullopt, std::nullopt});
  EXPECT_EQ(Status::Code::kInvalidArgument, u.status().code());
  auto s = store->GetSeries(SeriesQuery{"/quota", "gpc0", "k", 0, 10, 5000, std::nullopt});
  EXPECT_EQ(0u, s.status().message().find("step"));
  EXPECT_EQ(Status::Code::kNotFound, store->Keys("/nope", "", 10).status().code());
}

TEST(StoreTest, TablesKeysAndSortedExport) {
  TempDir dir;
  auto store = OpenOrDie(Opts(dir.Sub("db")));
  auto q = Table("/quota", 60000);
  auto be = Table("be_api");
  for (const char* key : {"zeta", "acme", "acme2", "beta"}) {
    ASSERT_TRUE(
        SubmitSync(*store,
                   Batch("lb2", 1, q, key, kT0,
                         {{"gpc0", 3}, {"http_req_cnt", 4}, {"conn_cur", 1, MetricKind::kGauge}}))
            .ok());
  }
  ASSERT_TRUE(SubmitSync(*store, Batch("lb1", 1, q, "acme", kT0, {{"gpc0", 10}})).ok());
  ASSERT_TRUE(SubmitSync(*store, Batch("lb1", 1, be, "10.0.0.1", kT0, {{"gpc0", 1}})).ok());
  auto tables = store->Tables();
  ASSERT_TRUE(tables.ok());
  ASSERT_EQ(2u, tables->size());
  const auto& tq = (*tables)[0];
  EXPECT_EQ("/quota", tq.name);
  EXPECT_EQ(60000u, tq.expire_ms);
  EXPECT_EQ((std::vector<std::string>{"gpc0", "http_req_cnt"}), tq.counter_metrics);
  EXPECT_EQ((std::vector<std::string>{"conn_cur"}), tq.gauge_metrics);
  EXPECT_EQ((std::vector<std::string>{"lb1", "lb2"}), tq.sources);
  EXPECT_EQ(1u, tq.multi_source_keys);
  EXPECT_EQ("be_api", (*tables)[1].name);

  auto keys = store->Keys("/quota", "acme", 10);
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ((std::vector<std::string>{"acme", "acme2"}), *keys);
  keys = store->Keys("/quota", "", 3);
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ((std::vector<std::string>{"acme", "acme2", "beta"}), *keys);

  auto render = [&](const ExportQuery& eq, size_t stop_after = 1000) {
    return RenderExport(*store, eq, stop_after);
  };
  ExportQuery eq{kT0, kT0 + 1, std::nullopt, std::nullopt, false};
  EXPECT_EQ(
      "/quota,acme,gpc0,,13\n/quota,acme,http_req_cnt,,4\n"
      "/quota,acme2,gpc0,,3\n/quota,acme2,http_req_cnt,,4\n"
      "/quota,beta,gpc0,,3\n/quota,beta,http_req_cnt,,4\n"
      "/quota,zeta,gpc0,,3\n/quota,zeta,http_req_cnt,,4\n"
      "be_api,10.0.0.1,gpc0,,1\n",
      render(eq));
  eq.table = "/quota";
  eq.metric = "gpc0";
  eq.per_source = true;
  EXPECT_EQ(
      "/quota,acme,gpc0,lb1,10\n/quota,acme,gpc0,lb2,3\n"
      "/quota,acme2,gpc0,lb2,3\n",
      render(eq, 3));
  eq.metric = "nope";
  EXPECT_EQ(0u, render(eq).find("not found: metric"));
}

// A burst of first-seen series (an audit row, a state row and three rollup cells per value)
// is committed in several bounded WriteBatches, each holding whole batches: every callback
// succeeds and every value is counted once.
TEST(StoreTest, BurstsOfNewSeriesCommitInBoundedWriteBatches) {
  TempDir dir;
  auto store = OpenOrDie(Opts(dir.Sub("db")));
  auto t = Table("/burst");
  auto& commits = MetricsRegistry::Global().GetHistogram("stickmeter_commit_seconds", "");
  const uint64_t commits_before = commits.Cumulative().back();
  constexpr int kBatches = 100, kKeysPerBatch = 1000;
  std::atomic<int> ok{0};
  for (int b = 0; b < kBatches; ++b) {
    ingest::UpdateBatch batch =
        Batch("lb1", 1, t, "k" + std::to_string(b * kKeysPerBatch), kT0,
              {{"gpc0", 1}, {"http_req_cnt", 2}, {"bytes_out_cnt", 3, MetricKind::kCounter64}});
    auto& entries = batch.tables.front().entries;
    for (int k = 1; k < kKeysPerBatch; ++k) {
      entries.push_back(entries.front());
      entries.back().key = "k" + std::to_string(b * kKeysPerBatch + k);
    }
    ASSERT_TRUE(store
                    ->Submit(std::move(batch),
                             [&ok](Status s) {
                               if (s.ok()) ok.fetch_add(1);
                             })
                    .ok());
  }
  store->Flush();
  EXPECT_EQ(kBatches, ok.load());
  // 300,000 values make ~1.2 M rows: at least three WriteBatches whatever the queue timing.
  EXPECT_GE(commits.Cumulative().back() - commits_before, 3u);
  for (const char* metric : {"gpc0", "http_req_cnt", "bytes_out_cnt"}) {
    auto rows = store->Usage(
        UsageQuery{"/burst", metric, kT0 - kDay, kT0 + kDay, std::nullopt, std::nullopt});
    ASSERT_TRUE(rows.ok());
    ASSERT_EQ(size_t{kBatches * kKeysPerBatch}, rows->size());
    uint64_t sum = 0;
    for (const auto& r : *rows) sum += r.total;
    const uint64_t per_key = std::string(metric) == "gpc0"           ? 1
                             : std::string(metric) == "http_req_cnt" ? 2
                                                                     : 3;
    EXPECT_EQ(per_key * kBatches * kKeysPerBatch, sum) << metric;
  }
}

// Export computes totals for chunks of keys. One chunk for everything (the default budget) and
// many small chunks (down to one key each) give the same rows, and both equal the sum of the
// deltas generated in the range, per key, metric and source, in (table, key, metric, source)
// order. Ranges mix day, hour, minute and sub-minute edges.
TEST(StoreTest, ExportInChunksEqualsOneChunkAndTheSumOfDeltas) {
  TempDir dir;
  auto store = OpenOrDie(Opts(dir.Sub("db")));
  const std::vector<std::shared_ptr<const ingest::TableInfo>> tables = {Table("/quota"),
                                                                        Table("be_api")};
  const std::vector<std::string_view> metrics = {"gpc0", "http_req_cnt", "bytes_out_cnt"};
  const std::vector<std::string> sources = {"lb2", "lb1", "lb3"};
  std::mt19937_64 rng(7);
  struct Ev {
    int64_t t;
    std::string table, key, metric, source;
    uint64_t delta;
  };
  std::vector<Ev> events;
  std::map<std::string, uint64_t> abs;
  const int64_t base = kT0 - kT0 % kDay - 2 * 3'600'000 + 4321;
  int64_t now = base;
  for (int i = 0; i < 4000; ++i) {
    now += static_cast<int64_t>(rng() % 90'000);
    const auto& table = tables[rng() % tables.size()];
    const std::string key = "k" + std::to_string(rng() % 60);
    const std::string& src = sources[rng() % sources.size()];
    const std::string_view metric = metrics[rng() % metrics.size()];
    uint64_t& v = abs[src + "|" + table->name + "|" + key + "|" + std::string(metric)];
    const uint64_t d = rng() % 1000;
    v += d;
    ASSERT_TRUE(SubmitSync(*store, Batch(src, 1, table, key, now,
                                         {{metric, v}, {"conn_cur", d, MetricKind::kGauge}}))
                    .ok());
    if (d > 0) events.push_back({now, table->name, key, std::string(metric), src, d});
  }
  const int64_t end = now + 1;

  auto render = [&](const ExportQuery& eq, size_t stop_after) {
    return RenderExport(*store, eq, stop_after);
  };
  const int64_t day0 = kT0 - kT0 % kDay;
  std::vector<std::pair<int64_t, int64_t>> ranges = {
      {base - kDay, end + kDay},                          // everything
      {day0, day0 + kDay},                                // one day
      {day0 - 3'600'000, day0 + kDay + 2 * 3'600'000},    // hour edges around a day
      {day0 + 61'000, day0 + 2 * kDay - 59'000},          // sub-minute edges
      {day0 + 5 * 60'000, day0 + 3'600'000 + 7 * 60'000}  // minute edges inside hours
  };
  for (int i = 0; i < 6; ++i) {
    int64_t a = base + static_cast<int64_t>(rng() % (end - base));
    int64_t b = base + static_cast<int64_t>(rng() % (end - base));
    if (a > b) std::swap(a, b);
    if (a < b) ranges.emplace_back(a, b);
  }
  for (const auto& [from, to] : ranges) {
    for (bool per_source : {false, true}) {
      for (int filter = 0; filter < 3; ++filter) {
        ExportQuery eq{from, to, std::nullopt, std::nullopt, per_source};
        if (filter == 1) eq.table = "be_api";
        if (filter == 2) eq.metric = "http_req_cnt";
        std::map<std::tuple<std::string, std::string, std::string, std::string>, uint64_t> sums;
        for (const auto& e : events) {
          if (e.t < from || e.t >= to || (eq.table && e.table != *eq.table) ||
              (eq.metric && e.metric != *eq.metric)) {
            continue;
          }
          sums[{e.table, e.key, e.metric, per_source ? e.source : ""}] += e.delta;
        }
        std::string want;
        for (const auto& [k, total] : sums) {
          want += std::get<0>(k) + "," + std::get<1>(k) + "," + std::get<2>(k) + "," +
                  std::get<3>(k) + "," + std::to_string(total) + "\n";
        }
        const std::string where = "range [" + std::to_string(from) + "," + std::to_string(to) +
                                  ") per_source " + std::to_string(per_source) + " filter " +
                                  std::to_string(filter);
        // 1 byte: one key per chunk; 2000 bytes: a few keys per chunk; default: one chunk.
        for (size_t budget : {size_t{1}, size_t{2000}, size_t{32} << 20}) {
          testing_internal::SetExportChunkBytes(*store, budget);
          ASSERT_EQ(want, render(eq, SIZE_MAX)) << where << " budget " << budget;
          // Stopping early gives a prefix of the same rows.
          const std::string first = render(eq, 5);
          ASSERT_EQ(want.substr(0, first.size()), first) << where << " budget " << budget;
        }
      }
    }
  }
}

TEST(StoreTest, GaugesKeepLastAndMaxPerMinute) {
  TempDir dir;
  auto store = OpenOrDie(Opts(dir.Sub("db")));
  auto t = Table("/quota");
  const int64_t m0 = kT0 - kT0 % 60000;
  for (auto [dt, v] : std::vector<std::pair<int64_t, int64_t>>{
           {0, 3}, {1000, 9}, {2000, 4}, {61000, -2}, {3600000, 1}}) {
    ASSERT_TRUE(
        SubmitSync(*store, Batch("lb1", 1, t, "k", m0 + dt,
                                 {{"conn_cur", static_cast<uint64_t>(v), MetricKind::kGauge}}))
            .ok());
  }
  auto s = store->GetSeries(
      SeriesQuery{"/quota", "conn_cur", "k", m0, m0 + 7200000, 60000, std::nullopt});
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->gauge);
  std::string out;
  for (const auto& p : s->points) {
    out += std::to_string(p.t_ms - m0) + "=" + std::to_string(static_cast<int64_t>(p.v)) + " ";
  }
  EXPECT_EQ("0=9 60000=-2 3600000=1 ", out);
  // Gauges are never summed.
  auto st = store->Stats();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(0u, st->deltas_written);
  // Auto step over 31 days picks hours.
  s = store->GetSeries(SeriesQuery{"/quota", "conn_cur", "k", m0, m0 + 31 * kDay, 0, std::nullopt});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(3600000, s->step_ms);
}

// An audit row may hold updates up to format::kRawRowSpanMs after its key's time: retention
// drops it only once the last of those is past the horizon, a rollup row once its whole bucket is.
TEST(RetentionFilterTest, DropsARowOnceAllItCanHoldIsPastTheHorizon) {
  const int64_t now = kT0, retention = 2 * kDay, horizon = now - retention;
  RetentionFilter raw("raw", 8, 0, retention, [&] { return now; });
  auto expired = [](const RetentionFilter& f, const std::string& key) {
    std::string new_value;
    bool changed = false;
    return f.Filter(0, key, "", &new_value, &changed);
  };
  EXPECT_TRUE(expired(raw, format::RawKey(1, 2, horizon - format::kRawRowSpanMs + 1, 9)));
  EXPECT_FALSE(expired(raw, format::RawKey(1, 2, horizon - format::kRawRowSpanMs + 2, 9)));
  EXPECT_FALSE(expired(raw, format::RawKey(1, 2, horizon, 9)));
  RetentionFilter minutes("e1m", format::kEntryRollupBucketOffset, format::kMinuteMs, retention,
                          [&] { return now; });
  auto minute_row = [](int64_t t) {
    std::string k;
    format::AppendEntryRollupKey(k, 1, 2, static_cast<uint32_t>(t / format::kMinuteMs), 3);
    return k;
  };
  EXPECT_TRUE(expired(minutes, minute_row(horizon - format::kMinuteMs)));
  EXPECT_FALSE(expired(minutes, minute_row(horizon - 1)));
  // Every-key hour rows go with their day, as the rollups by key keep a day of hours per row.
  // With the horizon at noon of `day`, the hours of its morning are past it, but not their day.
  const int64_t day = kT0 - kT0 % kDay;
  const int64_t noon = day + kDay / 2 + retention;
  RetentionFilter hours(
      "k1h", format::kKeySumsBucketOffset, format::kHourMs, retention, [&] { return noon; },
      format::kHoursPerRow);
  auto hour_row = [](int64_t t) {
    std::string k;
    format::AppendKeySumsKey(k, 1, 2, static_cast<uint32_t>(t / format::kHourMs), 0);
    return k;
  };
  EXPECT_TRUE(expired(hours, hour_row(day - format::kHourMs)));  // the day before
  EXPECT_FALSE(expired(hours, hour_row(day)));                   // 00:00, past the horizon
  EXPECT_FALSE(expired(hours, hour_row(day + 23 * format::kHourMs)));
  RetentionFilter off("raw", 8, 0, 0, [&] { return now; });
  EXPECT_FALSE(expired(off, format::RawKey(1, 2, 0, 0)));
}

TEST(MergeOperatorTest, CorruptGaugeOperandIsAnErrorNotZero) {
  GaugeMergeOperator op;
  std::string out;
  const std::string earlier = format::EncodeGauge(7, 40), later = format::EncodeGauge(5, 9);
  const rocksdb::Slice bad("abc");
  EXPECT_FALSE(op.Merge("k", nullptr, bad, &out, nullptr));
  const rocksdb::Slice bad_existing("abc");
  EXPECT_FALSE(op.Merge("k", &bad_existing, later, &out, nullptr));
  const rocksdb::Slice existing(earlier);
  ASSERT_TRUE(op.Merge("k", &existing, later, &out, nullptr));
  EXPECT_EQ(format::EncodeGauge(5, 40), out);  // the later last, the larger max
}

TEST(MergeOperatorTest, SumsAddSlotBySlotAndRejectCorruptOperands) {
  SumsAddOperator op;
  std::string a, b, out;
  format::AppendSum(a, 1, 5);
  format::AppendSum(b, 1, 1);
  format::AppendSum(b, format::HourSlot(1, 23), 300);
  const rocksdb::Slice existing(a);
  ASSERT_TRUE(op.Merge("k", &existing, b, &out, nullptr));
  std::string want;
  format::AppendSum(want, 1, 6);
  format::AppendSum(want, format::HourSlot(1, 23), 300);
  EXPECT_EQ(want, out);
  ASSERT_TRUE(op.Merge("k", nullptr, b, &out, nullptr));
  EXPECT_EQ(b, out);
  EXPECT_FALSE(op.Merge("k", nullptr, rocksdb::Slice("xyz"), &out, nullptr));  // cut
  EXPECT_FALSE(op.Merge("k", nullptr, rocksdb::Slice(""), &out, nullptr));
  const std::string trailing = a + "\x80";  // a cut varint after a valid pair
  const rocksdb::Slice trailing_slice(trailing);
  EXPECT_FALSE(op.Merge("k", &trailing_slice, b, &out, nullptr));
}

// Every-key rows: all operands added at once, per key slot, in slot order; a slot past the
// block, an empty or malformed value is an error.
TEST(MergeOperatorTest, KeySumsAddEveryOperandPerSlot) {
  KeySumsMergeOperator op;
  auto Input = [](const rocksdb::Slice* existing, const std::vector<rocksdb::Slice>& operands) {
    return rocksdb::MergeOperator::MergeOperationInput("k", existing, operands, nullptr);
  };
  std::string base, a, b;
  format::AppendSum(base, 3, 10);
  format::AppendSum(base, format::kKeysPerBlock - 1, 1);
  format::AppendSum(a, 0, 7);
  format::AppendSum(a, 3, 5);
  format::AppendSum(b, 3, 1);
  format::AppendSum(b, 700, 2);
  const rocksdb::Slice existing(base);
  std::vector<rocksdb::Slice> operands = {a, b};
  std::string merged;
  rocksdb::Slice existing_operand;
  rocksdb::MergeOperator::MergeOperationOutput out(merged, existing_operand);
  ASSERT_TRUE(op.FullMergeV2(Input(&existing, operands), &out));
  std::string want;
  format::AppendSum(want, 0, 7);
  format::AppendSum(want, 3, 16);
  format::AppendSum(want, 700, 2);
  format::AppendSum(want, format::kKeysPerBlock - 1, 1);
  EXPECT_EQ(want, merged);
  std::string partial;
  ASSERT_TRUE(op.PartialMergeMulti("k", {a, b}, &partial, nullptr));
  std::string want_partial;
  format::AppendSum(want_partial, 0, 7);
  format::AppendSum(want_partial, 3, 6);
  format::AppendSum(want_partial, 700, 2);
  EXPECT_EQ(want_partial, partial);
  std::string past;
  format::AppendSum(past, format::kKeysPerBlock, 1);
  for (const std::string& bad : {past, std::string(), std::string("\x80")}) {
    std::vector<rocksdb::Slice> with_bad = {a, bad};
    EXPECT_FALSE(op.FullMergeV2(Input(&existing, with_bad), &out));
    EXPECT_FALSE(op.PartialMergeMulti("k", {bad, b}, &partial, nullptr));
  }
  const rocksdb::Slice bad_existing(past);
  EXPECT_FALSE(op.FullMergeV2(Input(&bad_existing, operands), &out));
}

// A garbage operand in a day rollup row, as a broken writer would leave: the query reading that
// row fails (one key's usage reads the rollups by key, every key's those by time).
TEST(StoreTest, CorruptRollupValueFailsTheQuery) {
  for (const bool every_key : {false, true}) {
    SCOPED_TRACE(every_key ? "every key" : "one key");
    TempDir dir;
    auto t = Table("/quota");
    {
      auto store = OpenOrDie(Opts(dir.Sub("db")));
      ASSERT_TRUE(SubmitSync(*store, Batch("lb1", 1, t, "k", kT0, {{"gpc0", 5}})).ok());
    }
    WithRawDb(dir.Sub("db"), [&](rocksdb::DB* db, auto& cf) {
      rocksdb::ColumnFamilyHandle* day = cf.at(every_key ? format::kKeyDayCf : format::kDayCf);
      std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), day));
      it->SeekToFirst();
      ASSERT_TRUE(it->Valid());
      ASSERT_TRUE(db->Merge(rocksdb::WriteOptions(), day, it->key(), "xyz").ok());
    });
    auto store = OpenOrDie(Opts(dir.Sub("db")));
    const int64_t day0 = kT0 - kT0 % kDay;
    const std::optional<std::string> key =
        every_key ? std::nullopt : std::optional<std::string>("k");
    auto r = store->Usage(UsageQuery{"/quota", "gpc0", day0, day0 + kDay, key, std::nullopt});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(Status::Code::kCorruption, r.status().code()) << r.status().ToString();
  }
}

TEST(StoreTest, MetricsAreExported) {
  testing::TempDir dir;
  auto store = testing::OpenOrDie(Opts(dir.Sub("db")));
  auto t = testing::Table("/quota");
  const uint64_t wraps_before =
      MetricsRegistry::Global()
          .GetCounter("stickmeter_deltas_written_total", "", {{"reason", "wrap"}})
          .Value();
  ASSERT_TRUE(
      testing::SubmitSync(*store, testing::Batch("lb1", 1, t, "k", kT0, {{"gpc0", 4294967290u}}))
          .ok());
  ASSERT_TRUE(
      testing::SubmitSync(*store, testing::Batch("lb1", 1, t, "k", kT0 + 1, {{"gpc0", 5}})).ok());
  EXPECT_EQ(wraps_before + 1,
            MetricsRegistry::Global()
                .GetCounter("stickmeter_deltas_written_total", "", {{"reason", "wrap"}})
                .Value());
  // A backup flushes the memtables: the audit rows are then in a level-0 file, below the
  // level-0 compaction trigger.
  ASSERT_TRUE(store->Backup(dir.Sub("backup")).ok());
  const std::string text = MetricsRegistry::Global().RenderPrometheus();
  for (const char* name :
       {"stickmeter_updates_received_total", "stickmeter_commit_seconds_bucket",
        "stickmeter_store_queue_batches", "stickmeter_store_live_sst_bytes{cf=\"raw\"}",
        "stickmeter_multi_source_keys_total"}) {
    EXPECT_NE(std::string::npos, text.find(name)) << name;
  }
  // The value of the sample that starts with `line` (a whole line: after a newline).
  auto value_of = [&](const std::string& line) -> std::optional<uint64_t> {
    const size_t at = text.find("\n" + line);
    if (at == std::string::npos) return std::nullopt;
    const char* first = text.data() + at + 1 + line.size();
    uint64_t v = 0;
    const auto [end, ec] = std::from_chars(first, text.data() + text.size(), v);
    if (ec != std::errc() || *end != '\n') return std::nullopt;
    return v;
  };
  // Read from RocksDB at scrape time: a count per column family, and the compactions' totals.
  for (const char* cf : {format::kMetaCf, format::kEntriesCf, format::kRawCf, format::kMinuteCf,
                         format::kHourCf, format::kDayCf, format::kGaugeCf}) {
    const std::string line = "stickmeter_store_level0_files{cf=\"" + std::string(cf) + "\"} ";
    const auto files = value_of(line);
    ASSERT_TRUE(files.has_value()) << line;
    if (std::string(cf) == format::kRawCf) {
      EXPECT_GE(*files, 1u) << line;
    }
  }
  EXPECT_TRUE(value_of("stickmeter_store_pending_compaction_bytes ").has_value());
  EXPECT_TRUE(value_of("stickmeter_store_running_compactions ").has_value());
}

}  // namespace
}  // namespace stickmeter::tsdb
