// The journal and the two-stage commit on real RocksDB in temporary directories: queries count
// the journal rows the applier has not written out, in the middle of a pass and racing passes,
// each update exactly once; an applier stopped mid-pass counts nothing twice; journal rows are
// written out without a flush; submits are bounded; and after a failed commit what was
// acknowledged is exactly what is stored.
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/metrics.h"
#include "tests/support/faulty_file_system.h"
#include "tests/support/status_matchers.h"
#include "tests/tsdb/store_test_util.h"
#include "tests/tsdb/test_util.h"
#include "tsdb/format.h"
#include "tsdb/merged_iterator.h"
#include "tsdb/store.h"
#include "tsdb/store_testing.h"

namespace stickmeter::tsdb {
namespace {

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

// A store at `path` whose every group goes through the journal, written out `apply_delay_ms`
// after it is committed.
std::unique_ptr<Store> OpenJournalling(const std::string& path, int64_t apply_delay_ms) {
  StoreOptions o = Opts(path);
  o.apply_delay_ms = apply_delay_ms;
  auto store = OpenOrDie(o);
  testing_internal::SetJournalMode(*store, testing_internal::JournalMode::kAlways);
  return store;
}

// "t:v " per point of a series, or the error.
std::string RenderSeries(Store& store, const SeriesQuery& q) {
  auto r = store.GetSeries(q);
  if (!r.ok()) return r.status().ToString();
  std::string out;
  for (const auto& p : r->points) out += std::to_string(p.t_ms) + ":" + std::to_string(p.v) + " ";
  return out;
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
