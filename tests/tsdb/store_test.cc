// The store end to end on real RocksDB in temporary directories: counting rules through the
// write path, rollups against raw events, reopen, read-only and backup, open errors, retention
// and the query surface.
#include "tsdb/store.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <atomic>
#include <cctype>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "common/metrics.h"
#include "tests/support/faulty_file_system.h"
#include "tests/support/status_matchers.h"
#include "tests/tsdb/test_util.h"
#include "tsdb/format.h"
#include "tsdb/merge_operators.h"
#include "tsdb/merged_iterator.h"
#include "tsdb/retention_filter.h"
#include "tsdb/store_testing.h"

namespace stickmeter::tsdb {
namespace {

namespace fs = std::filesystem;
using ingest::MetricKind;
using testing::Batch;
using testing::OpenOrDie;
using testing::SubmitSync;
using testing::Table;
using testing::TempDir;

constexpr int64_t kT0 = 1'790'000'000'000;  // 2026-09-21T...Z, minute aligned below
constexpr int64_t kDay = 86'400'000;

// "t source metric value delta reason" per line.
std::string RenderAudit(Store& s, const std::string& table, const std::string& key) {
  AuditQuery q;
  q.table = table;
  q.key = key;
  q.from_ms = 0;
  q.to_ms = kT0 + 400 * kDay;
  auto r = s.Audit(q);
  if (!r.ok()) return r.status().ToString();
  std::ostringstream out;
  for (const auto& e : *r) {
    out << (e.t_ms - kT0) << " " << e.source << " " << e.metric << " " << e.value << " " << e.delta
        << " " << e.reason << "\n";
  }
  return out.str();
}

// "table,key,metric,source,total" per exported row, at most `stop_after` rows; or the error.
std::string RenderExport(Store& store, const ExportQuery& eq, size_t stop_after) {
  std::string out;
  size_t n = 0;
  Status s = store.Export(eq, [&](const ExportRow& r) {
    out += r.table + "," + r.key + "," + r.metric + "," + r.source + "," + std::to_string(r.total) +
           "\n";
    return ++n < stop_after;
  });
  return s.ok() ? out : s.ToString();
}

uint64_t Total(Store& s, const std::string& table, const std::string& metric,
               const std::string& key, int64_t from = 0, int64_t to = kT0 + 400 * kDay) {
  UsageQuery q{table, metric, from, to, key, std::nullopt};
  auto r = s.Usage(q);
  EXPECT_OK(r);
  if (!r.ok() || r->empty()) return 0;
  return r->front().total;
}

StoreOptions Opts(const std::string& path) {
  StoreOptions o;
  o.path = path;
  o.sync_writes = false;
  return o;
}

// A store at `path` whose every group goes through the journal, written out `apply_delay_ms`
// after it is committed.
std::unique_ptr<Store> OpenJournalling(const std::string& path, int64_t apply_delay_ms) {
  StoreOptions o = Opts(path);
  o.apply_delay_ms = apply_delay_ms;
  auto store = OpenOrDie(o);
  testing_internal::SetJournalMode(*store, testing_internal::JournalMode::kAlways);
  return store;
}

// Opens a closed store's RocksDB directly, as a broken writer or another build would, and calls
// `fn` with the handle of each column family by name.
void WithRawDb(
    const std::string& path,
    const std::function<void(rocksdb::DB*, std::map<std::string, rocksdb::ColumnFamilyHandle*>&)>&
        fn) {
  std::vector<std::string> names;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (const auto& n : names) {
    rocksdb::ColumnFamilyOptions c;
    if (n == format::kMinuteCf || n == format::kHourCf || n == format::kDayCf) {
      c.merge_operator = std::make_shared<SumsAddOperator>();
    } else if (n == format::kGaugeCf) {
      c.merge_operator = std::make_shared<GaugeMergeOperator>();
    }
    cfs.emplace_back(n, c);
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), path, cfs, &handles, &db).ok());
  std::map<std::string, rocksdb::ColumnFamilyHandle*> by_name;
  for (size_t i = 0; i < names.size(); ++i) by_name[names[i]] = handles[i];
  fn(db, by_name);
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  delete db;
}

std::set<std::string> ColumnFamilies(const std::string& path) {
  std::vector<std::string> names;
  EXPECT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &names).ok());
  return std::set<std::string>(names.begin(), names.end());
}

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

// "t:v " per point of a series, or the error.
std::string RenderSeries(Store& store, const SeriesQuery& q) {
  auto r = store.GetSeries(q);
  if (!r.ok()) return r.status().ToString();
  std::string out;
  for (const auto& p : r->points) out += std::to_string(p.t_ms) + ":" + std::to_string(p.v) + " ";
  return out;
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

// Both ways a group commits its state and rollups, named for the test list.
const auto kCommitWays = ::testing::Values(testing_internal::JournalMode::kAlways,
                                           testing_internal::JournalMode::kNever);
std::string CommitWayName(const ::testing::TestParamInfo<testing_internal::JournalMode>& info) {
  return info.param == testing_internal::JournalMode::kAlways ? "Journalled" : "Direct";
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

TEST(StoreTest, OpenErrorsAreClearOneLiners) {
  TempDir dir;
  // Foreign files.
  fs::create_directories(dir.Sub("foreign"));
  std::ofstream(dir.Sub("foreign") + "/notes.txt") << "hello";
  auto r = Store::Open(Opts(dir.Sub("foreign")));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(Status::Code::kInvalidArgument, r.status().code());
  EXPECT_NE(std::string::npos, r.status().message().find("not a stickmeter store"));
  // A foreign RocksDB.
  {
    rocksdb::Options o;
    o.create_if_missing = true;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(o, dir.Sub("rocks"), &db).ok());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "x", "y").ok());
    delete db;
  }
  r = Store::Open(Opts(dir.Sub("rocks")));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(std::string::npos, r.status().message().find("RocksDB database but not a stickmeter"))
      << r.status().ToString();
  // Not a directory we can create.
  std::ofstream(dir.Sub("file")) << "x";
  r = Store::Open(Opts(dir.Sub("file") + "/db"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(Status::Code::kIoError, r.status().code());
  EXPECT_NE(std::string::npos, r.status().message().find("cannot create data directory"));
  // Locked by another open.
  auto first = OpenOrDie(Opts(dir.Sub("db")));
  r = Store::Open(Opts(dir.Sub("db")));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(Status::Code::kUnavailable, r.status().code());
  EXPECT_NE(std::string::npos, r.status().message().find("in use by another process"));
  EXPECT_EQ(std::string::npos, r.status().message().find('\n'));
}

// The format record of the closed store at `path`, read and written with RocksDB directly.
uint32_t StoredFormatVersion(const std::string& path) {
  uint32_t got = 0;
  WithRawDb(path, [&](rocksdb::DB* db, auto& cf) {
    std::string v;
    ASSERT_TRUE(
        db->Get(rocksdb::ReadOptions(), cf.at(format::kMetaCf), format::FormatKey(), &v).ok());
    ASSERT_EQ(4u, v.size());
    got = format::GetU32BE(v.data());
  });
  return got;
}

void SetStoredFormatVersion(const std::string& path, uint32_t version) {
  WithRawDb(path, [&](rocksdb::DB* db, auto& cf) {
    std::string v;
    format::PutU32BE(v, version);
    ASSERT_TRUE(
        db->Put(rocksdb::WriteOptions(), cf.at(format::kMetaCf), format::FormatKey(), v).ok());
  });
}

std::string VersionRefusal(const std::string& path, uint32_t version) {
  return "store " + path + " has format version " + std::to_string(version) +
         "; this build reads format version 1 only";
}

// A new store records format 1, the only one this build reads. A store recording any other
// version, older or newer, is refused by both opens with one line naming both versions, and is
// left as it was: setting the record back opens it with its data.
TEST(StoreTest, OnlyThisBuildsFormatVersionOpens) {
  TempDir dir;
  const std::string path = dir.Sub("db");
  auto t = Table("/quota");
  {
    auto store = OpenOrDie(Opts(path));
    ASSERT_TRUE(SubmitSync(*store, Batch("lb1", 1, t, "k", kT0, {{"gpc0", 5}})).ok());
  }
  EXPECT_EQ(1u, format::kFormatVersion);
  EXPECT_EQ(1u, StoredFormatVersion(path));
  for (const uint32_t version : {0u, 2u, 7u, UINT32_MAX}) {
    SCOPED_TRACE(version);
    SetStoredFormatVersion(path, version);
    auto rw = Store::Open(Opts(path));
    ASSERT_FALSE(rw.ok());
    EXPECT_EQ(Status::Code::kInvalidArgument, rw.status().code());
    EXPECT_EQ(VersionRefusal(path, version), rw.status().message());
    auto ro = Store::OpenReadOnly(Opts(path));
    ASSERT_FALSE(ro.ok());
    EXPECT_EQ(Status::Code::kInvalidArgument, ro.status().code());
    EXPECT_EQ(VersionRefusal(path, version), ro.status().message());
    EXPECT_EQ(version, StoredFormatVersion(path));
  }
  SetStoredFormatVersion(path, 1);
  auto store = OpenOrDie(Opts(path));
  EXPECT_EQ(5u, Total(*store, "/quota", "gpc0", "k"));
}

// A store of another format may have other column families than this one: it is refused by the
// version it records too, not as a foreign database nor with RocksDB's complaint about the
// families, and neither open adds or drops a family.
TEST(StoreTest, AStoreWithOtherColumnFamiliesIsRefusedByItsVersion) {
  TempDir dir;
  const std::string path = dir.Sub("db");
  { OpenOrDie(Opts(path)); }
  WithRawDb(path, [](rocksdb::DB* db, auto& cf) {
    rocksdb::ColumnFamilyHandle* other = nullptr;
    ASSERT_TRUE(db->CreateColumnFamily(rocksdb::ColumnFamilyOptions(), "series", &other).ok());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), other, "k", "v").ok());
    db->DestroyColumnFamilyHandle(other);
    ASSERT_TRUE(db->DropColumnFamily(cf.at(format::kEntriesCf)).ok());
  });
  SetStoredFormatVersion(path, 4);
  const std::set<std::string> families = ColumnFamilies(path);
  ASSERT_EQ(1u, families.count("series"));
  auto rw = Store::Open(Opts(path));
  ASSERT_FALSE(rw.ok());
  EXPECT_EQ(Status::Code::kInvalidArgument, rw.status().code());
  EXPECT_EQ(VersionRefusal(path, 4), rw.status().message());
  auto ro = Store::OpenReadOnly(Opts(path));
  ASSERT_FALSE(ro.ok());
  EXPECT_EQ(VersionRefusal(path, 4), ro.status().message());
  EXPECT_EQ(families, ColumnFamilies(path));
  EXPECT_EQ(4u, StoredFormatVersion(path));
}

TEST(StoreTest, CorruptedCurrentAndSstAreReported) {
  TempDir dir;
  auto t = Table("/quota");
  {
    auto store = OpenOrDie(Opts(dir.Sub("db")));
    ASSERT_TRUE(SubmitSync(*store, Batch("lb1", 1, t, "k", kT0, {{"gpc0", 7}})).ok());
    ASSERT_TRUE(store->CompactAll().ok());  // flushes to SST files
  }
  fs::copy(dir.Sub("db"), dir.Sub("db2"), fs::copy_options::recursive);
  std::ofstream(dir.Sub("db") + "/CURRENT", std::ios::trunc) << "MANIFEST-999999\n";
  auto r = Store::Open(Opts(dir.Sub("db")));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(Status::Code::kCorruption, r.status().code()) << r.status().ToString();
  EXPECT_NE(std::string::npos, r.status().message().find("is corrupted"));

  // Truncate every SST file.
  int truncated = 0;
  for (const auto& e : fs::directory_iterator(dir.Sub("db2"))) {
    if (e.path().extension() == ".sst") {
      fs::resize_file(e.path(), fs::file_size(e.path()) / 2);
      ++truncated;
    }
  }
  ASSERT_GT(truncated, 0);
  r = Store::Open(Opts(dir.Sub("db2")));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(Status::Code::kCorruption, r.status().code()) << r.status().ToString();
}

// A WAL damaged before its end is reported, by the store and by a read-only view (what
// `stickmeter export` opens), instead of replaying what precedes the damage and dropping the
// acknowledged updates after it.
TEST(StoreTest, AWalDamagedBeforeItsEndIsReported) {
  TempDir dir;
  auto t = Table("/quota");
  {
    auto store = OpenOrDie(Opts(dir.Sub("db")));
    for (int i = 0; i < 200; ++i) {
      ASSERT_OK(SubmitSync(*store, Batch("lb1", 1, t, "k" + std::to_string(i % 20), kT0 + i * 1000,
                                         {{"gpc0", uint64_t(i + 1)}})));
    }
    ASSERT_OK(store->Close());  // the memtables stay in the WAL
  }
  fs::path wal;
  for (const auto& e : fs::directory_iterator(dir.Sub("db"))) {
    if (e.path().extension() == ".log" && fs::file_size(e.path()) > 4096) wal = e.path();
  }
  ASSERT_FALSE(wal.empty()) << "no WAL with data";
  {
    std::fstream f(wal, std::ios::in | std::ios::out | std::ios::binary);
    const auto middle = static_cast<std::streamoff>(fs::file_size(wal) / 2);
    f.seekp(middle);
    const std::string garbage(64, '\xA5');
    f.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  }
  auto r = Store::Open(Opts(dir.Sub("db")));
  ASSERT_FALSE(r.ok()) << "a damaged WAL was replayed up to the damage";
  EXPECT_EQ(Status::Code::kCorruption, r.status().code()) << r.status().ToString();
  EXPECT_NE(std::string::npos, r.status().message().find("is corrupted"));
  auto view = Store::OpenReadOnly(Opts(dir.Sub("db")));
  ASSERT_FALSE(view.ok()) << "a read-only view replayed a damaged WAL up to the damage";
  EXPECT_EQ(Status::Code::kCorruption, view.status().code()) << view.status().ToString();
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

TEST(StoreTest, CorruptRollupValueFailsTheQuery) {
  TempDir dir;
  auto t = Table("/quota");
  {
    auto store = OpenOrDie(Opts(dir.Sub("db")));
    ASSERT_TRUE(SubmitSync(*store, Batch("lb1", 1, t, "k", kT0, {{"gpc0", 5}})).ok());
  }
  // Inject a garbage operand into the day rollup as a broken writer would.
  WithRawDb(dir.Sub("db"), [](rocksdb::DB* db, auto& cf) {
    rocksdb::ColumnFamilyHandle* day = cf.at(format::kDayCf);
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), day));
    it->SeekToFirst();
    ASSERT_TRUE(it->Valid());
    ASSERT_TRUE(db->Merge(rocksdb::WriteOptions(), day, it->key(), "xyz").ok());
  });
  auto store = OpenOrDie(Opts(dir.Sub("db")));
  const int64_t day0 = kT0 - kT0 % kDay;
  auto r =
      store->Usage(UsageQuery{"/quota", "gpc0", day0, day0 + kDay, std::nullopt, std::nullopt});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(Status::Code::kCorruption, r.status().code()) << r.status().ToString();
}

// Journals `rounds` updates of each of `keys` keys (key i's value in round r: r * (i + 1)),
// every group through the journal; `before_close` runs once all are acknowledged.
void JournalKeys(Store& store, int keys, int rounds, const std::function<void()>& before_close) {
  testing_internal::SetJournalMode(store, testing_internal::JournalMode::kAlways);
  auto t = Table("/quota");
  std::atomic<int> acked{0}, failed{0};
  std::promise<void> all_done;
  for (int r = 1; r <= rounds; ++r) {
    for (int k = 0; k < keys; ++k) {
      auto batch =
          Batch("lb1", 1, t, "k" + std::to_string(k), kT0 + r, {{"gpc0", uint64_t(r) * (k + 1)}});
      // The queue holds 4096 batches: wait for room as ingest would.
      while (!store
                  .Submit(batch,
                          [&](Status st) {
                            (st.ok() ? acked : failed)++;
                            if (acked + failed == keys * rounds) all_done.set_value();
                          })
                  .ok()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
  }
  all_done.get_future().wait();
  ASSERT_EQ(0, failed.load());
  before_close();
  ASSERT_TRUE(store.Close().ok());
}

// Every key's total is its last value and its audit trail lists one event per round.
void ExpectEveryKeyCountedOnce(Store& store, int keys, int rounds) {
  for (int k = 0; k < keys; ++k) {
    const std::string key = "k" + std::to_string(k);
    ASSERT_EQ(uint64_t(rounds) * (k + 1), Total(store, "/quota", "gpc0", key)) << key;
  }
  for (int k : {0, keys / 2, keys - 1}) {
    AuditQuery q;
    q.table = "/quota";
    q.key = "k" + std::to_string(k);
    q.from_ms = 0;
    q.to_ms = kT0 + kDay;
    auto events = store.Audit(q);
    ASSERT_OK(events);
    EXPECT_EQ(size_t(rounds), events->size()) << q.key;
  }
}

// The journal rows and partition marks ("A") of a closed store.
struct JournalLeft {
  std::vector<uint64_t> rows;
  std::set<uint32_t> partitions;  // that the rows hold chunks of
  std::map<uint32_t, uint64_t> marks;
};
JournalLeft ReadJournal(const std::string& path) {
  JournalLeft left;
  WithRawDb(path, [&](rocksdb::DB* db, auto& cf) {
    std::unique_ptr<rocksdb::Iterator> it(
        db->NewIterator(rocksdb::ReadOptions(), cf.at(format::kMetaCf)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      const std::string_view k(it->key().data(), it->key().size());
      if (auto id = format::DecodeJournalKey(k)) {
        left.rows.push_back(*id);
        std::vector<format::JournalChunk> chunks;
        ASSERT_TRUE(format::SplitJournalRow(
            std::string_view(it->value().data(), it->value().size()), &chunks));
        for (const auto& c : chunks) left.partitions.insert(c.partition);
      }
      if (auto p = format::DecodeAppliedKey(k)) {
        ASSERT_EQ(8u, it->value().size());
        left.marks[*p] = format::GetU64BE(it->value().data());
      }
    }
  });
  return left;
}

// The closed store at `path` holds journal rows of which some partitions, not all, are marked
// written out: what an applier stopped in the middle of a pass leaves.
void ExpectStoppedMidPass(const std::string& path) {
  const JournalLeft left = ReadJournal(path);
  ASSERT_FALSE(left.rows.empty());
  size_t written_out = 0;
  for (const auto& [partition, id] : left.marks) written_out += id >= left.rows.front();
  EXPECT_GT(written_out, 0u) << "no partition of the rows left was written out";
  EXPECT_LT(written_out, left.partitions.size()) << "every partition was written out";
}

// The applier writes a pass out partition by partition and deletes the pass's journal rows with
// the last one. Stopped after its first WriteBatch, as a crash there would, it leaves some
// partitions written out and every row still there: the next open writes out only the others,
// so nothing is counted twice (or lost), and it leaves no row behind.
TEST(StoreTest, ApplierStoppedMidPassLeavesNothingCountedTwice) {
  TempDir dir;
  constexpr int kKeys = 3000, kRounds = 3;
  {
    auto store = OpenOrDie(Opts(dir.Sub("db")));
    testing_internal::StopApplierAfter(*store, 1);
    JournalKeys(*store, kKeys, kRounds, [] {});
  }
  ExpectStoppedMidPass(dir.Sub("db"));
  {
    auto store = OpenOrDie(Opts(dir.Sub("db")));
    ExpectEveryKeyCountedOnce(*store, kKeys, kRounds);
    ASSERT_TRUE(SubmitSync(*store, Batch("lb1", 1, Table("/quota"), "k0", kT0 + 10,
                                         {{"gpc0", kRounds + 1}}))
                    .ok());
    EXPECT_EQ(uint64_t(kRounds) + 1, Total(*store, "/quota", "gpc0", "k0"));
  }
  EXPECT_TRUE(ReadJournal(dir.Sub("db")).rows.empty());
}

// Every query over what JournalKeys wrote: all keys' usage over everything and over a range
// cutting through minutes (raw edges), and for a few keys usage, series at each step, the audit
// trail, and exports per source and summed.
std::string RenderQueries(Store& store, int keys) {
  std::ostringstream out;
  for (auto [from, to] : {std::pair<int64_t, int64_t>{0, kT0 + 400 * kDay}, {kT0 + 2, kT0 + 3}}) {
    auto all = store.Usage(UsageQuery{"/quota", "gpc0", from, to, std::nullopt, std::nullopt});
    if (!all.ok()) return all.status().ToString();
    out << "usage " << from << "-" << to << ":";
    for (const auto& row : *all) out << " " << row.key << "=" << row.total;
    out << "\n";
  }
  for (int k : {0, keys / 2, keys - 1}) {
    const std::string key = "k" + std::to_string(k);
    out << key << " total " << Total(store, "/quota", "gpc0", key) << " edge "
        << Total(store, "/quota", "gpc0", key, kT0 + 2, kT0 + 3) << "\n";
    for (int64_t step : {format::kMinuteMs, format::kHourMs, kDay}) {
      out << key << " series " << step << ": "
          << RenderSeries(store, SeriesQuery{"/quota", "gpc0", key, kT0 - kDay, kT0 + kDay, step,
                                             std::nullopt})
          << "\n";
    }
    out << key << " series, partial minutes: "
        << RenderSeries(store, SeriesQuery{"/quota", "gpc0", key, kT0 + 2, kT0 + 2 * 60'000,
                                           format::kMinuteMs, std::nullopt})
        << "\n"
        << RenderAudit(store, "/quota", key);
  }
  ExportQuery eq;
  eq.from_ms = kT0 - kDay;
  eq.to_ms = kT0 + kDay;
  out << RenderExport(store, eq, SIZE_MAX);
  eq.per_source = true;
  eq.from_ms = kT0 + 2;  // raw edges
  out << RenderExport(store, eq, SIZE_MAX);
  return out.str();
}

// Queries read the journal rows the applier has not written out: with the applier held, every
// query answers exactly as it does once the rows are written out (by the next open), and so
// does a read-only view opened meanwhile.
TEST(StoreTest, QueriesSeeJournalRowsNotWrittenOut) {
  TempDir dir;
  constexpr int kKeys = 300, kRounds = 3;
  std::string held, view;
  {
    auto store = OpenOrDie(Opts(dir.Sub("db")));
    testing_internal::HoldJournal(*store);
    JournalKeys(*store, kKeys, kRounds, [&] {
      ExpectEveryKeyCountedOnce(*store, kKeys, kRounds);
      held = RenderQueries(*store, kKeys);
      auto reader = Store::OpenReadOnly(Opts(dir.Sub("db")));
      ASSERT_OK(reader);
      view = RenderQueries(**reader, kKeys);
    });
  }
  EXPECT_EQ(view, held);
  ASSERT_FALSE(ReadJournal(dir.Sub("db")).rows.empty()) << "nothing was left in the journal";
  auto store = OpenOrDie(Opts(dir.Sub("db")));
  EXPECT_EQ(RenderQueries(*store, kKeys), held);
  EXPECT_NE(held.find(" k299=900 "), std::string::npos) << held;
}

// In the middle of a pass some partitions of the rows are written out and marked, the others
// not: queries count the first from the column families and the others from the journal, each
// exactly once.
TEST(StoreTest, QueriesInTheMiddleOfAPassCountEveryUpdateOnce) {
  TempDir dir;
  constexpr int kKeys = 3000, kRounds = 3;
  std::string mid_pass;
  {
    auto store = OpenOrDie(Opts(dir.Sub("db")));
    testing_internal::StopApplierAfter(*store, 1);
    JournalKeys(*store, kKeys, kRounds, [&] {
      store->Flush();  // returns once the applier stopped, after its first WriteBatch
      ExpectEveryKeyCountedOnce(*store, kKeys, kRounds);
      mid_pass = RenderQueries(*store, kKeys);
    });
  }
  ExpectStoppedMidPass(dir.Sub("db"));
  auto store = OpenOrDie(Opts(dir.Sub("db")));
  EXPECT_EQ(RenderQueries(*store, kKeys), mid_pass);
}

// Acknowledged means visible: with a long delay before the applier writes anything out, the
// first query after the acknowledgement already counts the update, read from the journal.
TEST(StoreTest, AcknowledgedUpdatesAreVisibleAtOnce) {
  TempDir dir;
  auto store = OpenJournalling(dir.Sub("db"), 600'000);
  Gauge& backlog = MetricsRegistry::Global().GetGauge("stickmeter_store_journal_backlog_bytes", "");
  for (uint64_t v : {42u, 50u}) {
    ASSERT_TRUE(
        testing::SubmitAcked(*store, Batch("lb1", 1, Table("/q"), "k", kT0, {{"gpc0", v}})).ok());
    EXPECT_EQ(v, Total(*store, "/q", "gpc0", "k"));
    EXPECT_GT(backlog.Value(), 0) << "the update is not in the journal any more";
  }
  EXPECT_EQ("0 lb1 gpc0 42 42 first\n0 lb1 gpc0 50 8 increment\n", RenderAudit(*store, "/q", "k"));
}

// Queries racing the applier's passes (a pass every few ms) never miss what was acknowledged
// before they began and never count a change twice: a key's total is at least the last value
// acknowledged before the query and at most the last one submitted after it.
TEST(StoreTest, QueriesDuringPassesNeitherMissNorDoubleCount) {
  TempDir dir;
  auto store = OpenJournalling(dir.Sub("db"), 2);
  constexpr int kKeys = 2000, kRounds = 30;
  auto t = Table("/quota");
  std::atomic<int> acked_round{0}, submitted_round{0};
  std::atomic<bool> done{false};
  std::atomic<int> queries{0};
  std::string failure;  // written by the reader only; read after it is joined
  std::atomic<bool> failed{false};
  auto run_round = [&](int r) {
    submitted_round.store(r);
    std::atomic<int> acked{0};
    std::promise<void> round_done;
    for (int k = 0; k < kKeys; ++k) {
      ASSERT_TRUE(store
                      ->Submit(Batch("lb1", 1, t, "k" + std::to_string(k), kT0 + r,
                                     {{"gpc0", uint64_t(r)}}),
                               [&](Status st) {
                                 EXPECT_OK(st);
                                 if (++acked == kKeys) round_done.set_value();
                               })
                      .ok());
    }
    round_done.get_future().wait();
    acked_round.store(r);
  };
  run_round(1);  // the table exists from here on
  std::thread reader([&] {
    while (!done.load() && failure.empty()) {
      const int low = acked_round.load();
      auto all = store->Usage(
          UsageQuery{"/quota", "gpc0", 0, kT0 + 400 * kDay, std::nullopt, std::nullopt});
      const uint64_t one = Total(*store, "/quota", "gpc0", "k7");
      const int high = submitted_round.load();
      if (!all.ok()) {
        failure = all.status().ToString();
        failed.store(true);
        break;
      }
      if (one < uint64_t(low) || one > uint64_t(high)) {
        failure = "k7: " + std::to_string(one) + " outside [" + std::to_string(low) + ", " +
                  std::to_string(high) + "]";
      }
      for (const auto& row : *all) {
        if (row.total < uint64_t(low) || row.total > uint64_t(high)) {
          failure = row.key + ": " + std::to_string(row.total) + " outside [" +
                    std::to_string(low) + ", " + std::to_string(high) + "]";
        }
      }
      if (low > 0 && all->size() != size_t(kKeys)) failure = "missing keys";
      if (!failure.empty()) failed.store(true);
      ++queries;
    }
  });
  for (int r = 2; r <= kRounds && !failed.load(); ++r) {
    // Each round is submitted while the reader queries, and waits until it has queried again.
    const int before = queries.load();
    run_round(r);
    while (queries.load() <= before && !failed.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  done.store(true);
  reader.join();
  EXPECT_EQ("", failure);
  EXPECT_GE(queries.load(), kRounds - 1);
  EXPECT_EQ(uint64_t(kRounds), Total(*store, "/quota", "gpc0", "k7"));
}

TEST(MergedIteratorTest, MergesInKeyOrderBaseFirstAndReadsOnlyForwards) {
  TempDir dir;
  rocksdb::Options options;
  options.create_if_missing = true;
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(options, dir.Sub("db"), &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  for (const char* k : {"a", "c", "e"}) {
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), k, std::string("base ") + k).ok());
  }
  const MergedIterator::Rows extra = {{"b", "extra b"}, {"c", "extra c"}, {"f", "extra f"}};
  MergedIterator it(std::unique_ptr<rocksdb::Iterator>(db->NewIterator(rocksdb::ReadOptions())),
                    &extra);
  auto rest = [&] {
    std::string out;
    for (; it.Valid(); it.Next()) out += it.value().ToString() + ";";
    return out;
  };
  it.SeekToFirst();
  EXPECT_EQ("base a;extra b;base c;extra c;base e;extra f;", rest());
  it.Seek("c");
  EXPECT_EQ("base c;extra c;base e;extra f;", rest());
  it.Seek("d");
  EXPECT_EQ("base e;extra f;", rest());
  it.Seek("e1");
  EXPECT_EQ("extra f;", rest());
  EXPECT_TRUE(it.status().ok());
  it.SeekToLast();
  EXPECT_FALSE(it.Valid());
  EXPECT_TRUE(it.status().IsNotSupported());
}

}  // namespace
}  // namespace stickmeter::tsdb

namespace stickmeter::tsdb {
namespace {

// The applier lets journal rows gather for a while before it writes them out, but not forever:
// with nobody flushing or submitting more, the journal backlog drains to nothing (queries would
// count the update either way, from the journal or from the column families).
TEST(StoreTest, JournalRowsAreWrittenOutWithoutAFlush) {
  TempDir dir;
  auto store = OpenJournalling(dir.Sub("db"), 50);
  Gauge& backlog = MetricsRegistry::Global().GetGauge("stickmeter_store_journal_backlog_bytes", "");
  ASSERT_TRUE(
      testing::SubmitAcked(*store, Batch("lb1", 1, Table("/q"), "k", kT0, {{"gpc0", 42}})).ok());
  EXPECT_GT(backlog.Value(), 0) << "the update did not go through the journal";
  for (int i = 0; i < 1000 && backlog.Value() != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(0, backlog.Value()) << "not written out 10 s after the acknowledgement";
  EXPECT_EQ(42u, Total(*store, "/q", "gpc0", "k"));
}

// With no delay the applier writes out after every group commit, and with the age bound at its
// floor the writer may wait for it before a group: ingest still completes, every batch is
// acknowledged once, and the totals are exact.
TEST(StoreTest, NoApplyDelayCompletesIngestExactly) {
  testing::TempDir dir;
  StoreOptions o = Opts(dir.Sub("db"));
  o.apply_delay_ms = 0;
  auto store = testing::OpenOrDie(o);
  testing_internal::SetJournalMode(*store, testing_internal::JournalMode::kAlways);
  auto t = testing::Table("/quota");
  constexpr int kKeys = 50, kRounds = 40;
  std::atomic<int> acked{0}, failed{0};
  std::promise<void> all_done;
  for (int r = 1; r <= kRounds; ++r) {
    for (int k = 0; k < kKeys; ++k) {
      Status s = store->Submit(
          testing::Batch("lb1", 1, t, "k" + std::to_string(k), kT0 + r, {{"gpc0", uint64_t(r)}}),
          [&](Status st) {
            (st.ok() ? acked : failed)++;
            if (acked + failed == kKeys * kRounds) all_done.set_value();
          });
      ASSERT_OK(s);
    }
  }
  all_done.get_future().wait();
  EXPECT_EQ(kKeys * kRounds, acked.load());
  EXPECT_EQ(0, failed.load());
  store->Flush();
  for (int k = 0; k < kKeys; ++k) {
    EXPECT_EQ(uint64_t(kRounds), Total(*store, "/quota", "gpc0", "k" + std::to_string(k)));
  }
}

TEST(StoreTest, SubmitIsBoundedAndCloseDrainsTheQueue) {
  testing::TempDir dir;
  StoreOptions o;
  o.path = dir.Sub("db");
  o.sync_writes = false;
  o.max_queued_batches = 1;
  auto store = testing::OpenOrDie(o);
  auto t = testing::Table("/quota");
  // The first callback holds the committer until released. The writer then takes one more batch
  // and waits with it built, and the queue fills up behind it.
  std::promise<void> entered, release;
  auto released = release.get_future().share();
  ASSERT_TRUE(store
                  ->Submit(testing::Batch("lb1", 1, t, "k", kT0, {{"gpc0", 1}}),
                           [&, released](Status) {
                             entered.set_value();
                             released.wait();
                           })
                  .ok());
  entered.get_future().wait();
  std::vector<std::string> done, want;
  Status full;
  uint64_t last_accepted = 1;
  for (uint64_t i = 2; i <= 5 && full.ok(); ++i) {
    full = store->Submit(
        testing::Batch("lb1", 1, t, "k", kT0 + int64_t(i), {{"gpc0", i}}),
        [&done, i](Status s) { done.push_back(std::to_string(i) + ":" + s.ToString()); });
    if (full.ok()) {
      want.push_back(std::to_string(i) + ":OK");
      last_accepted = i;
    }
  }
  EXPECT_EQ(Status::Code::kUnavailable, full.code());
  EXPECT_NE(std::string::npos, full.message().find("queue is full"));
  // One queued, and at most one more held built by the writer.
  EXPECT_GE(want.size(), 1u);
  EXPECT_LE(want.size(), 2u);
  release.set_value();
  ASSERT_TRUE(store->Close().ok());
  EXPECT_EQ(want, done);
  auto reopened = testing::OpenOrDie(o);
  EXPECT_EQ(last_accepted, Total(*reopened, "/quota", "gpc0", "k"));
}

class FailedCommitTest : public ::testing::TestWithParam<testing_internal::JournalMode> {};

// A failed write stops the store: that group and the one the writer built on top of its state
// meanwhile are both reported failed and neither is written, so what was acknowledged is exactly
// what is stored, and a reopen continues from there. The disk fails under RocksDB (a faulty file
// system); the write of group B is held failing until the writer hands group C, built on B's
// state, to the committer.
TEST_P(FailedCommitTest, NothingAfterAFailedWriteIsWrittenAndAcknowledgedIsStored) {
  testing::TempDir dir;
  auto disk = stickmeter::testing::FaultyFileSystem::Create();
  std::promise<void> c_handed;
  std::atomic<int> hand_overs_armed{-1};  // counts hand-overs once the disk fails
  testing_internal::StoreTestHooks hooks;
  hooks.handing_over = [&] {
    if (hand_overs_armed.load() >= 0 && hand_overs_armed.fetch_add(1) == 1) c_handed.set_value();
  };
  StoreOptions o = Opts(dir.Sub("db"));
  o.env = disk->env();
  o.test_hooks = &hooks;
  auto store = testing::OpenOrDie(o);
  testing_internal::SetJournalMode(*store, GetParam());
  auto t = testing::Table("/quota");
  auto submit_sync = [&](const std::string& key, int64_t at, uint64_t value) {
    return testing::SubmitSync(*store,
                               testing::Batch("lb1", 1, t, key, kT0 + at, {{"gpc0", value}}));
  };
  ASSERT_OK(submit_sync("k", 0, 10));
  ASSERT_OK(submit_sync("k", 1, 11));
  // Nothing else writes: the applier has written out what it had.
  store->Flush();
  std::promise<void> failing;
  auto c_built = c_handed.get_future();
  hand_overs_armed.store(0);
  disk->FailWrites([&] {
    failing.set_value();
    // B's write fails only once C is built on B's state (or after 5 s).
    c_built.wait_for(std::chrono::seconds(5));
  });

  std::promise<Status> b_done, c_done;
  ASSERT_OK(store->Submit(testing::Batch("lb1", 1, t, "k", kT0 + 2, {{"gpc0", 12}}),
                          [&b_done](Status st) { b_done.set_value(st); }));
  // B's write is failing; C is now built on B's state (k at 12) and handed to the committer.
  failing.get_future().wait();
  ASSERT_OK(store->Submit(testing::Batch("lb1", 1, t, "k", kT0 + 3, {{"gpc0", 13}}),
                          [&c_done](Status st) { c_done.set_value(st); }));
  for (auto* done : {&b_done, &c_done}) {
    Status st = done->get_future().get();
    EXPECT_EQ(Status::Code::kIoError, st.code()) << st.ToString();
    EXPECT_NE(std::string::npos, st.message().find("injected")) << st.ToString();
  }
  Status after =
      store->Submit(testing::Batch("lb1", 1, t, "k", kT0 + 4, {{"gpc0", 14}}), [](Status) {});
  EXPECT_NE(std::string::npos, after.message().find("injected")) << after.ToString();
  // The disk works again: the store reopens by itself, from what is on disk.
  disk->Heal();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!store->WriteStatus().ok() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_OK(store->WriteStatus());
  EXPECT_EQ(11u, Total(*store, "/quota", "gpc0", "k"));
  EXPECT_OK(store->Close());

  store = testing::OpenOrDie(o);
  EXPECT_EQ(11u, Total(*store, "/quota", "gpc0", "k"));
  // HAProxy sends the unacknowledged values again, or newer ones: counted from 11.
  ASSERT_OK(submit_sync("k", 5, 16));
  EXPECT_EQ(16u, Total(*store, "/quota", "gpc0", "k"));
}

INSTANTIATE_TEST_SUITE_P(CommitWay, FailedCommitTest, kCommitWays, CommitWayName);

}  // namespace
}  // namespace stickmeter::tsdb

namespace stickmeter::tsdb {
namespace {

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

TEST(StoreTest, ReadOnlyOpenOfSomethingElseFails) {
  testing::TempDir dir;
  auto r = Store::OpenReadOnly(Opts(dir.path()));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(Status::Code::kNotFound, r.status().code());
  EXPECT_NE(std::string::npos, r.status().message().find("no stickmeter store"));
}

}  // namespace
}  // namespace stickmeter::tsdb
