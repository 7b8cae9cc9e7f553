// The store's commit observer: what it hands over after each group commit points at the right
// batch, table, entry and value, only for observed tables, and only once durable.
#include "tsdb/commit_observer.h"

#include <gtest/gtest.h>

#include <mutex>
#include <string>
#include <vector>

#include "tests/tsdb/test_util.h"
#include "tsdb/store.h"

namespace stickmeter::tsdb::testing {
namespace {

// Records every delta as "source table key metric=value +delta @t".
class RecordingObserver : public CommitObserver {
 public:
  bool Observes(const std::string& table) const override { return table == "/observed"; }
  void OnCommitted(CommittedGroup group) override {
    std::lock_guard lock(mu_);
    for (const auto& d : group.deltas) {
      const auto& batch = group.batch_of(d);
      const auto& entry = group.entry_of(d);
      const auto& value = group.value_of(d);
      lines_.push_back(batch.source + " " + group.table_of(d).table->name + " " + entry.key + " " +
                       std::string(value.metric) + "=" + std::to_string(value.value) + " +" +
                       std::to_string(d.delta) + " @" + std::to_string(entry.received_ms));
    }
    batches_ += group.batches.size();
  }
  std::vector<std::string> lines() const {
    std::lock_guard lock(mu_);
    return lines_;
  }
  size_t batches() const {
    std::lock_guard lock(mu_);
    return batches_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
  size_t batches_ = 0;
};

TEST(CommitObserverTest, DeltasPointAtTheirEntriesOfObservedTablesOnly) {
  TempDir dir;
  RecordingObserver observer;
  StoreOptions options;
  options.path = dir.Sub("db");
  options.sync_writes = false;
  auto store = OpenOrDie(options);
  store->SetCommitObserver(&observer);
  const int64_t t0 = 1'700'000'000'000;
  auto observed = Table("/observed");
  auto other = Table("/other");
  // One batch with two tables, the observed one second, two entries in it: indexes past 0.
  ingest::UpdateBatch b = Batch("lb1", 1, other, "x", t0, {{"gpc0", 7}});
  ingest::UpdateBatch more =
      Batch("lb1", 1, observed, "a", t0 + 1, {{"gpc0", 3}, {"http_req_cnt", 0}});
  ingest::EntryUpdate second;
  second.key = "b";
  second.received_ms = t0 + 2;
  second.values.push_back({"bytes_out_cnt", ingest::MetricKind::kCounter64, 500});
  more.tables[0].entries.push_back(std::move(second));
  b.tables.push_back(std::move(more.tables[0]));
  ASSERT_TRUE(SubmitSync(*store, std::move(b)).ok());
  // A batch of the other table only is not handed over at all.
  ASSERT_TRUE(SubmitSync(*store, Batch("lb2", 2, other, "x", t0 + 3, {{"gpc0", 9}})).ok());
  ASSERT_TRUE(SubmitSync(*store, Batch("lb2", 2, observed, "a", t0 + 4, {{"gpc0", 5}})).ok());
  ASSERT_TRUE(SubmitSync(*store, Batch("lb2", 2, observed, "a", t0 + 5, {{"gpc0", 8}})).ok());
  store->Flush();
  EXPECT_EQ((std::vector<std::string>{
                "lb1 /observed a gpc0=3 +3 @" + std::to_string(t0 + 1),
                "lb1 /observed b bytes_out_cnt=500 +500 @" + std::to_string(t0 + 2),
                "lb2 /observed a gpc0=5 +5 @" + std::to_string(t0 + 4),
                "lb2 /observed a gpc0=8 +3 @" + std::to_string(t0 + 5),
            }),
            observer.lines());
  EXPECT_EQ(3u, observer.batches());
  ASSERT_TRUE(store->Close().ok());
}

}  // namespace
}  // namespace stickmeter::tsdb::testing
