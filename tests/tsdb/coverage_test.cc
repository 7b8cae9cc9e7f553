// Data completeness against a real store: when each source was first seen, the gaps while it was
// disconnected, its resyncs, what a reopen after a clean stop and after a crash (a checkpoint
// taken while connected is what a crash leaves) finds, and the record's bounds.
#include "tsdb/coverage.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/support/status_matchers.h"
#include "tests/tsdb/test_util.h"
#include "tsdb/store.h"

namespace stickmeter::tsdb::testing {
namespace {

constexpr int64_t kMin = 60'000;
constexpr int64_t kT0 = 1'793'000'000'000;  // 2026-10-26, a whole minute

// Times relative to kT0 in minutes, for readable failures.
std::string M(int64_t ms) { return std::to_string((ms - kT0) / kMin); }

// "partial covered=20 first=0 future=- | lb1 partial seen=0 gaps=[10,20) resyncs=5"
std::string Describe(const Coverage& c) {
  std::string out = std::string(CoverageStatusName(c.status)) +
                    " covered=" + std::to_string(c.covered_ms / kMin) +
                    " first=" + (c.first_seen_ms == 0 ? "-" : M(c.first_seen_ms)) +
                    " future=" + (c.future_from_ms == 0 ? "-" : M(c.future_from_ms));
  for (const auto& s : c.sources) {
    out += " | " + s.source + " " + std::string(CoverageStatusName(s.status)) +
           " seen=" + M(s.first_seen_ms) + (s.connected ? " connected" : "") + " gaps=";
    for (const auto& g : s.gaps) out += "[" + M(g.from_ms) + "," + M(g.to_ms) + ")";
    if (s.gap_count != s.gaps.size()) out += "+" + std::to_string(s.gap_count - s.gaps.size());
    if (s.resync_count > 0) {
      out += " resyncs=";
      for (int64_t t : s.resyncs) out += M(t) + ";";
    }
  }
  return out;
}

class CoverageTest : public ::testing::Test {
 protected:
  std::unique_ptr<Store> Open(const std::string& sub = "db") {
    StoreOptions options;
    options.path = dir_.Sub(sub);
    options.sync_writes = false;
    options.clock = [this] { return now_; };
    return OpenOrDie(options);
  }
  // [from, to) in minutes from kT0, as of now_.
  std::string Query(Store& store, int64_t from_min, int64_t to_min,
                    std::optional<std::string> source = std::nullopt) {
    CoverageQuery q;
    q.from_ms = kT0 + from_min * kMin;
    q.to_ms = kT0 + to_min * kMin;
    q.now_ms = now_;
    q.source = std::move(source);
    auto c = store.GetCoverage(q);
    if (!c.ok()) return c.status().ToString();
    return Describe(*c);
  }
  TempDir dir_;
  int64_t now_ = kT0 + 30 * kMin;
};

TEST_F(CoverageTest, FirstSeenGapsAndTheFuture) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  store->SourceConnected("lb1", 1, kT0);
  store->SourceDisconnected("lb1", 1, kT0 + 10 * kMin);
  store->SourceConnected("lb1", 2, kT0 + 20 * kMin);
  // Before the first session: nobody was receiving.
  EXPECT_EQ("none covered=0 first=0 future=- | lb1 none seen=0 connected gaps=",
            Query(*store, -120, -60));
  // Across the first session: no data before it, and a gap.
  EXPECT_EQ("partial covered=20 first=0 future=- | lb1 partial seen=0 connected gaps=[10,20)",
            Query(*store, -60, 30));
  EXPECT_EQ("complete covered=10 first=0 future=- | lb1 complete seen=0 connected gaps=",
            Query(*store, 20, 30));
  // Running past now: covered up to now, the rest is still to come.
  EXPECT_EQ("partial covered=5 first=0 future=30 | lb1 partial seen=0 connected gaps=",
            Query(*store, 25, 40));
  // Wholly in the future.
  EXPECT_EQ("none covered=0 first=0 future=40 | lb1 none seen=0 connected gaps=",
            Query(*store, 40, 60));
  EXPECT_EQ("not found: source: unknown source \"lb9\" (known: lb1)", Query(*store, 0, 30, "lb9"));
}

TEST_F(CoverageTest, TwoSourcesEachSinceItsFirstSessionAndReplacedConnections) {
  auto store = Open();
  store->SourceConnected("lb1", 1, kT0);
  store->SourceConnected("lb2", 2, kT0 + 5 * kMin);
  // A newer connection of lb1 replaces the first before that one reports its end: no gap.
  store->SourceConnected("lb1", 3, kT0 + 8 * kMin);
  store->SourceDisconnected("lb1", 1, kT0 + 8 * kMin);
  store->SourceDisconnected("lb2", 2, kT0 + 12 * kMin);
  store->SourceConnected("lb2", 4, kT0 + 15 * kMin);
  // lb2 did not exist before its first session: only its own gap counts.
  EXPECT_EQ(
      "partial covered=27 first=0 future=- | lb1 complete seen=0 connected gaps= | lb2 partial "
      "seen=5 connected gaps=[12,15)",
      Query(*store, 0, 30));
  EXPECT_EQ("partial covered=22 first=5 future=- | lb2 partial seen=5 connected gaps=[12,15)",
            Query(*store, 0, 30, "lb2"));
}

TEST_F(CoverageTest, ResyncsInTheRange) {
  auto store = Open();
  auto table = Table("/q");
  store->SourceConnected("lb1", 1, kT0);
  ASSERT_OK(SubmitAcked(*store, Batch("lb1", 1, table, "k", kT0 + 5 * kMin, {{"gpc0", 1}},
                                      /*restarted=*/true)));
  EXPECT_EQ("complete covered=30 first=0 future=- | lb1 complete seen=0 connected gaps= resyncs=5;",
            Query(*store, 0, 30));
  EXPECT_EQ("complete covered=5 first=0 future=- | lb1 complete seen=0 connected gaps=",
            Query(*store, 10, 15));
}

TEST_F(CoverageTest, CleanStopClosesSessionsAndReopenKeepsThem) {
  {
    auto store = Open();
    store->SourceConnected("lb1", 1, kT0);
    store->SourceDisconnected("lb1", 1, kT0 + 10 * kMin);
    store->SourceConnected("lb1", 2, kT0 + 20 * kMin);
    ASSERT_OK(store->Close());  // at now_: minute 30
  }
  now_ = kT0 + 60 * kMin;
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ("partial covered=20 first=0 future=- | lb1 partial seen=0 gaps=[10,20)[30,60)",
            Query(*store, 0, 60));
}

TEST_F(CoverageTest, CrashWhileConnectedClosesAtLastSeen) {
  auto store = Open();
  auto table = Table("/q");
  store->SourceConnected("lb1", 1, kT0);
  // Updates keep the last seen time, written at most once a minute.
  for (int m = 1; m <= 7; m += 2) {
    ASSERT_OK(SubmitAcked(
        *store, Batch("lb1", 1, table, "k", kT0 + m * kMin + 5, {{"gpc0", uint64_t(m)}})));
  }
  store->Flush();
  // A checkpoint taken while connected holds what a crash leaves: the session still open.
  ASSERT_OK(store->Backup(dir_.Sub("crashed")));
  now_ = kT0 + 60 * kMin;
  auto reopened = Open("crashed");
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ("partial covered=7 first=0 future=- | lb1 partial seen=0 gaps=[7,60)",
            Query(*reopened, 0, 60));
}

TEST_F(CoverageTest, BoundedPerSourceAndInSources) {
  const size_t kSessions = CoverageBook::kMaxSessions + 10;
  {
    auto store = Open();
    for (size_t i = 0; i < kSessions; ++i) {
      const int64_t t = kT0 + static_cast<int64_t>(i) * 2 * kMin;
      store->SourceConnected("lb1", i + 1, t);
      store->SourceDisconnected("lb1", i + 1, t + kMin);
    }
    for (size_t i = 0; i < CoverageBook::kMaxSources + 5; ++i) {
      store->SourceConnected("n" + std::to_string(i), 100000 + i, kT0);
    }
    ASSERT_OK(store->Close());
  }
  now_ = kT0 + static_cast<int64_t>(kSessions) * 2 * kMin;
  auto store = Open();  // the bounded record loads again
  ASSERT_NE(store, nullptr);
  CoverageQuery q;
  q.from_ms = kT0;
  q.to_ms = now_;
  q.now_ms = now_;
  q.source = "lb1";
  auto c = store->GetCoverage(q);
  ASSERT_OK(c.status());
  const SourceCoverage& s = c->sources.at(0);
  // The 10 oldest sessions are forgotten: their time reads as one gap, never as covered. The
  // 2048 sessions kept leave 2047 gaps between them, and one after the last.
  EXPECT_EQ(CoverageBook::kMaxSessions + 1, s.gap_count);
  EXPECT_EQ(kMaxCoverageGapsReported, s.gaps.size());
  EXPECT_EQ(kT0, s.gaps[0].from_ms);
  EXPECT_EQ(kT0 + 20 * kMin, s.gaps[0].to_ms);
  q.source.reset();
  c = store->GetCoverage(q);
  ASSERT_OK(c.status());
  EXPECT_EQ(CoverageBook::kMaxSources, c->sources.size());
}

}  // namespace
}  // namespace stickmeter::tsdb::testing
