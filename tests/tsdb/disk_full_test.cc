// A store whose writes fail: on a full disk (a small tmpfs the test mounts, so it needs root, as
// CI has; skipped otherwise) and by injection. Nothing is acknowledged while writes fail, the
// process does not abort, health and metrics say so, and the store resumes by itself once
// writes succeed again, with exact totals once peers send again what was not acknowledged.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "tests/support/faulty_file_system.h"
#include "tests/support/small_disk.h"
#include "tests/tsdb/test_util.h"
#include "tsdb/store.h"

namespace stickmeter::tsdb {
namespace {

constexpr int64_t kT0 = 1'790'000'000'000;
constexpr int kKeys = 200;

using stickmeter::testing::FaultyFileSystem;
using stickmeter::testing::SmallDisk;

// Smaller than the 35 MiB RocksDB preallocates for a write-ahead log: with no preallocation, the
// log's next page fails as soon as the disk is full (a larger disk only takes longer to fail).
constexpr int kDiskMiB = 24;

// Key i's counter in round r: what HAProxy would send as its absolute value.
uint64_t ValueOf(int round, int key) { return uint64_t(round) * 1000 + uint64_t(key); }

// One batch with every key's value of `round`.
ingest::UpdateBatch Round(int round) {
  static const auto table = testing::Table("/quota");
  ingest::UpdateBatch b;
  b.source = "lb1";
  b.connection_id = 1;
  ingest::TableUpdates tu;
  tu.table = table;
  for (int k = 0; k < kKeys; ++k) {
    ingest::EntryUpdate e;
    e.key = "key-" + std::to_string(k);
    e.received_ms = kT0 + round;
    e.values.push_back({"gpc0", ingest::MetricKind::kCounter32, ValueOf(round, k)});
    tu.entries.push_back(std::move(e));
  }
  b.tables.push_back(std::move(tu));
  return b;
}

// "key=total" of the keys whose total is not `ValueOf(round, key)`; empty when all are.
std::string TotalsOtherThan(Store& store, int round) {
  std::string out;
  auto rows = store.Usage(UsageQuery{"/quota", "gpc0", 0, kT0 + 86'400'000, std::nullopt, {}});
  if (!rows.ok()) return rows.status().ToString();
  if (rows->size() != kKeys) out += "keys: " + std::to_string(rows->size()) + " ";
  for (const auto& r : *rows) {
    const int k = std::stoi(r.key.substr(4));
    if (r.total != ValueOf(round, k)) out += r.key + "=" + std::to_string(r.total) + " ";
  }
  return out;
}

int64_t StoreFailedGauge() {
  return MetricsRegistry::Global().GetGauge("stickmeter_store_failed", "").Value();
}
uint64_t WriteErrors() {
  return MetricsRegistry::Global().GetCounter("stickmeter_store_write_errors_total", "").Value();
}

bool WaitUntilWriting(Store& store, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!store.WriteStatus().ok()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

// Submits rounds from `*round` on until one is not acknowledged (true) or a minute passes;
// *round is then the last acknowledged one.
bool SubmitUntilRefused(Store& store, int* round, Status* refused) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  while (std::chrono::steady_clock::now() < deadline) {
    Status s = testing::SubmitAcked(store, Round(*round + 1));
    if (!s.ok()) {
      *refused = s;
      return true;
    }
    ++*round;
  }
  return false;
}

StoreOptions OnDisk(const SmallDisk& disk) {
  StoreOptions o;
  o.path = disk.Sub("db");
  o.sync_writes = true;
  o.apply_delay_ms = 50;
  return o;
}

TEST(DiskFullTest, NothingIsAcknowledgedWhileFullAndTheStoreResumesOnceSpaceIsFreed) {
  SmallDisk disk(kDiskMiB);
  if (!disk.mounted()) GTEST_SKIP() << disk.error();
  auto store = testing::OpenOrDie(OnDisk(disk));
  ASSERT_NE(nullptr, store);
  EXPECT_EQ(0, StoreFailedGauge());
  int acked = 0;
  for (; acked < 3; ++acked) ASSERT_TRUE(testing::SubmitAcked(*store, Round(acked + 1)).ok());
  const uint64_t errors_before = WriteErrors();

  ASSERT_TRUE(disk.Fill());
  Status refused;
  ASSERT_TRUE(SubmitUntilRefused(*store, &acked, &refused)) << "the full disk took every write";
  EXPECT_NE(std::string::npos, refused.message().find("No space left on device"))
      << refused.ToString();
  // What RocksDB gave back since (files it deleted) is taken too: the disk stays full.
  ASSERT_TRUE(disk.Fill());
  Status why = store->WriteStatus();
  EXPECT_FALSE(why.ok());
  EXPECT_NE(std::string::npos, why.message().find("No space left on device")) << why.ToString();
  EXPECT_EQ(1, StoreFailedGauge());
  EXPECT_LT(errors_before, WriteErrors());
  EXPECT_NE(std::string::npos,
            MetricsRegistry::Global().RenderPrometheus().find("stickmeter_store_failed 1"));
  // Still full: nothing more is acknowledged, and what was stays readable.
  std::this_thread::sleep_for(std::chrono::seconds(1));
  EXPECT_FALSE(testing::SubmitAcked(*store, Round(acked + 1)).ok());
  EXPECT_FALSE(store->WriteStatus().ok());
  EXPECT_EQ("", TotalsOtherThan(*store, acked));

  ASSERT_TRUE(disk.Free());
  ASSERT_TRUE(WaitUntilWriting(*store, std::chrono::seconds(30)))
      << store->WriteStatus().ToString();
  EXPECT_EQ(0, StoreFailedGauge());
  // What was acknowledged, exactly: the refused rounds counted nothing.
  EXPECT_EQ("", TotalsOtherThan(*store, acked));
  // HAProxy sends the newest values again after reconnecting: counted once, from the stored ones.
  const int resent = acked + 5;
  ASSERT_TRUE(testing::SubmitSync(*store, Round(resent)).ok());
  EXPECT_EQ("", TotalsOtherThan(*store, resent));
  ASSERT_TRUE(store->Close().ok());
  store = testing::OpenOrDie(OnDisk(disk));
  ASSERT_NE(nullptr, store);
  EXPECT_EQ("", TotalsOtherThan(*store, resent));
}

TEST(DiskFullTest, ClosingAndOpeningOnAFullDiskFailWithOneLine) {
  SmallDisk disk(kDiskMiB);
  if (!disk.mounted()) GTEST_SKIP() << disk.error();
  auto store = testing::OpenOrDie(OnDisk(disk));
  ASSERT_NE(nullptr, store);
  int acked = 0;
  for (; acked < 3; ++acked) ASSERT_TRUE(testing::SubmitAcked(*store, Round(acked + 1)).ok());
  ASSERT_TRUE(disk.Fill());
  Status refused;
  ASSERT_TRUE(SubmitUntilRefused(*store, &acked, &refused)) << "the full disk took every write";
  (void)store->Close();  // may fail (the WAL's tail is lost), must not abort
  store.reset();
  ASSERT_TRUE(disk.Fill());  // what closing gave back (files RocksDB no longer needs)

  auto full = Store::Open(OnDisk(disk));
  ASSERT_FALSE(full.ok());
  const std::string message = full.status().message();
  EXPECT_NE(std::string::npos, message.find("no space left on the disk of")) << message;
  EXPECT_EQ(std::string::npos, message.find('\n')) << message;

  ASSERT_TRUE(disk.Free());
  store = testing::OpenOrDie(OnDisk(disk));
  ASSERT_NE(nullptr, store);
  EXPECT_EQ("", TotalsOtherThan(*store, acked));
}

// The same without a full disk, for every build (no root needed): RocksDB's file system fails
// every write, as a failing disk would, then the failure goes away.
TEST(DiskFullTest, AFailedWriteIsRecoveredOnceWritesSucceed) {
  testing::TempDir dir;
  auto disk = FaultyFileSystem::Create();
  StoreOptions o;
  o.path = dir.Sub("db");
  o.sync_writes = false;
  o.env = disk->env();
  auto store = testing::OpenOrDie(o);
  ASSERT_NE(nullptr, store);
  ASSERT_TRUE(testing::SubmitSync(*store, Round(1)).ok());
  disk->FailWrites();
  Status refused = testing::SubmitAcked(*store, Round(2));
  EXPECT_NE(std::string::npos, refused.message().find("injected")) << refused.ToString();
  // While the disk fails, the store stays failed and refuses updates.
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  EXPECT_NE(std::string::npos, store->WriteStatus().message().find("injected"))
      << store->WriteStatus().ToString();
  EXPECT_EQ(1, StoreFailedGauge());
  EXPECT_FALSE(testing::SubmitAcked(*store, Round(3)).ok());
  EXPECT_EQ("", TotalsOtherThan(*store, 1));

  disk->Heal();
  ASSERT_TRUE(WaitUntilWriting(*store, std::chrono::seconds(30)))
      << store->WriteStatus().ToString();
  EXPECT_EQ(0, StoreFailedGauge());
  EXPECT_EQ("", TotalsOtherThan(*store, 1));
  ASSERT_TRUE(testing::SubmitSync(*store, Round(4)).ok());
  EXPECT_EQ("", TotalsOtherThan(*store, 4));
}

}  // namespace
}  // namespace stickmeter::tsdb
