// The store's commit observer: what it hands over after each group commit points at the right
// batch, table, entry and value, only for observed tables, and only once durable.
#include "tsdb/commit_observer.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <mutex>
#include <set>
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
    // entry_keys: one id per entry of every table update, in order.
    size_t next = 0;
    for (const auto& batch : group.batches) {
      for (const auto& tu : batch.tables) {
        for (const auto& entry : tu.entries) {
          if (next < group.entry_keys.size()) {
            ids_[tu.table->name + " " + entry.key].insert(group.entry_keys[next]);
          }
          ++next;
        }
      }
    }
    key_id_count_ok_ &= next == group.entry_keys.size();
    for (const auto& d : group.deltas) {
      delta_ids_ok_ &=
          d.key == *ids_[group.table_of(d).table->name + " " + group.entry_of(d).key].begin();
    }
    // Handed back as the teacher does: later groups are built in these vectors.
    if (recycle_to != nullptr) recycle_to->Recycle(std::move(group));
  }
  Store* recycle_to = nullptr;
  // Per "table key": the ids it was given.
  std::map<std::string, std::set<uint32_t>> ids() const {
    std::lock_guard lock(mu_);
    return ids_;
  }
  bool key_ids_consistent() const {
    std::lock_guard lock(mu_);
    return key_id_count_ok_ && delta_ids_ok_;
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
  std::map<std::string, std::set<uint32_t>> ids_;
  bool key_id_count_ok_ = true;
  bool delta_ids_ok_ = true;
};

// A store in `dir` reporting to `observer`.
std::unique_ptr<Store> OpenObserved(TempDir& dir, RecordingObserver& observer) {
  StoreOptions options;
  options.path = dir.Sub("db");
  options.sync_writes = false;
  auto store = OpenOrDie(options);
  store->SetCommitObserver(&observer);
  return store;
}

TEST(CommitObserverTest, DeltasPointAtTheirEntriesOfObservedTablesOnly) {
  TempDir dir;
  RecordingObserver observer;
  auto store = OpenObserved(dir, observer);
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

TEST(CommitObserverTest, EveryKeyOfEveryTableHasOneIdOfItsOwn) {
  TempDir dir;
  RecordingObserver observer;
  auto store = OpenObserved(dir, observer);
  observer.recycle_to = store.get();
  const int64_t t0 = 1'700'000'000'000;
  auto observed = Table("/observed");
  auto other = Table("/other");
  // The same key name in two tables, the same key from two sources, in batches mixing tables.
  ingest::UpdateBatch b = Batch("lb1", 1, other, "a", t0, {{"gpc0", 1}});
  b.tables.push_back(Batch("lb1", 1, observed, "a", t0, {{"gpc0", 1}}).tables[0]);
  b.tables.push_back(Batch("lb1", 1, observed, "b", t0, {{"gpc0", 1}}).tables[0]);
  ASSERT_TRUE(SubmitSync(*store, std::move(b)).ok());
  ASSERT_TRUE(SubmitSync(*store, Batch("lb2", 2, observed, "a", t0 + 1, {{"gpc0", 4}})).ok());
  ASSERT_TRUE(SubmitSync(*store, Batch("lb1", 1, observed, "b", t0 + 2, {{"gpc0", 2}})).ok());
  store->Flush();
  const auto ids = observer.ids();
  ASSERT_EQ(3u, ids.size());
  for (const auto& [name, set] : ids) EXPECT_EQ(1u, set.size()) << name;
  EXPECT_NE(*ids.at("/other a").begin(), *ids.at("/observed a").begin());
  EXPECT_NE(*ids.at("/observed a").begin(), *ids.at("/observed b").begin());
  EXPECT_NE(0u, *ids.at("/observed a").begin());
  EXPECT_TRUE(observer.key_ids_consistent());
  ASSERT_TRUE(store->Close().ok());
}

}  // namespace
}  // namespace stickmeter::tsdb::testing
