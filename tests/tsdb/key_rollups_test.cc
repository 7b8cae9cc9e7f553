// The every-key rollups (tsdb/key_rollups.h): usage over every key read from them equals the
// sums of the updates themselves, over any range, of every source and of one (which the rollups
// by key answer), whether the changes still wait in the journal or not; and a store of format
// version 1, which has none, is read as it is by a read-only open and upgraded by its first open
// for writing, also after an upgrade cut short.
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "tests/support/status_matchers.h"
#include "tests/tsdb/store_test_util.h"
#include "tests/tsdb/test_util.h"
#include "tsdb/format.h"
#include "tsdb/store.h"
#include "tsdb/store_testing.h"

namespace stickmeter::tsdb::testing {
namespace {

using Totals = std::map<std::string, uint64_t>;

struct Update {
  int64_t t;
  std::string source, key;
  uint64_t delta;
};

// Updates of 2,500 keys (key ids over three blocks of kKeysPerBlock) from two sources over four
// days: most keys a few times, some every few minutes of one hour, so that ranges end inside
// minutes, hours and days with updates in them.
std::vector<Update> Updates() {
  std::mt19937_64 rng(29);
  std::vector<Update> out;
  for (int k = 0; k < 2'500; ++k) {
    const std::string key = "customer-" + std::to_string(k);
    const int n = k % 50 == 0 ? 40 : 1 + static_cast<int>(rng() % 3);
    for (int i = 0; i < n; ++i) {
      const int64_t t = k % 50 == 0 ? kT0 + kDay + 3 * 3'600'000 + i * 97'000
                                    : kT0 + static_cast<int64_t>(rng() % (4 * kDay));
      out.push_back({t, rng() % 3 == 0 ? "lb2" : "lb1", key, 1 + rng() % 1'000});
    }
  }
  return out;
}

// Submits `updates` one batch of 500 entries at a time, each entry its absolute value.
void Load(Store& store, const std::vector<Update>& updates) {
  auto table = Table("/q");
  std::map<std::pair<std::string, std::string>, uint64_t> value;
  ingest::UpdateBatch batch;
  std::string source;
  auto send = [&] {
    if (!batch.tables.empty()) {
      ASSERT_OK(SubmitAcked(store, std::move(batch)));
    }
    batch = ingest::UpdateBatch{};
  };
  for (const Update& u : updates) {
    if (u.source != source || (!batch.tables.empty() && batch.tables[0].entries.size() >= 500)) {
      send();
      source = u.source;
    }
    const uint64_t v = value[{u.source, u.key}] += u.delta;
    auto one = Batch(u.source, 1, table, u.key, u.t, {{"gpc0", v}});
    if (batch.tables.empty()) {
      batch = std::move(one);
    } else {
      batch.tables[0].entries.push_back(std::move(one.tables[0].entries[0]));
    }
  }
  send();
}

// Ranges with ends on days, hours, minutes and inside them, within and around the updates.
std::vector<std::pair<int64_t, int64_t>> Ranges() {
  std::mt19937_64 rng(31);
  std::vector<std::pair<int64_t, int64_t>> out = {
      {kT0, kT0 + 5 * kDay},
      {kT0 + kDay, kT0 + 3 * kDay},
      {kT0 + kDay + 3 * 3'600'000, kT0 + kDay + 4 * 3'600'000},
      {kT0 + kDay + 3 * 3'600'000 + 60'000 * 7, kT0 + kDay + 3 * 3'600'000 + 60'000 * 31},
      {kT0 + 17'000, kT0 + 4 * kDay - 4'321},
  };
  for (int i = 0; i < 25; ++i) {
    const int64_t a = kT0 + static_cast<int64_t>(rng() % (4 * kDay));
    out.emplace_back(a, a + 1 + static_cast<int64_t>(rng() % (2 * kDay)));
  }
  return out;
}

Totals Want(const std::vector<Update>& updates, int64_t from, int64_t to,
            const std::optional<std::string>& source) {
  Totals want;
  for (const Update& u : updates) {
    if (u.t >= from && u.t < to && (!source || u.source == *source)) want[u.key] += u.delta;
  }
  return want;
}

Totals Got(Store& store, int64_t from, int64_t to, const std::optional<std::string>& source) {
  auto rows = store.Usage(UsageQuery{"/q", "gpc0", from, to, std::nullopt, source});
  EXPECT_OK(rows);
  Totals got;
  if (rows.ok()) {
    for (const auto& r : *rows) got[r.key] = r.total;
  }
  return got;
}

// Every key's usage over every range, of both sources and of each, as the updates say.
void ExpectUsageOfUpdates(Store& store, const std::vector<Update>& updates) {
  for (const auto& [from, to] : Ranges()) {
    for (const std::optional<std::string>& source :
         {std::optional<std::string>(), std::optional<std::string>("lb1"),
          std::optional<std::string>("lb2")}) {
      ASSERT_EQ(Want(updates, from, to, source), Got(store, from, to, source))
          << "range [" << from - kT0 << ", " << to - kT0 << ") ms from kT0, source "
          << source.value_or("(all)");
    }
  }
}

class KeyRollupsTest : public ::testing::TestWithParam<StoreWay> {};

// The first half of the updates written out; the second too, or, when journalled, held in
// journal rows (read through the journal overlay) until the reopen writes them out.
TEST_P(KeyRollupsTest, EveryKeyUsageEqualsTheUpdatesOfAllSourcesAndOfEach) {
  TempDir dir;
  auto store = OpenOrDie(Opts(dir.Sub("db")));
  GetParam().ApplyTo(*store);
  const auto updates = Updates();
  const size_t half = updates.size() / 2;
  Load(*store, {updates.begin(), updates.begin() + half});
  store->Flush();
  if (GetParam().commit == testing_internal::JournalMode::kAlways) {
    testing_internal::HoldJournal(*store);
  }
  Load(*store, {updates.begin() + half, updates.end()});
  ExpectUsageOfUpdates(*store, updates);
  store.reset();
  store = OpenOrDie(Opts(dir.Sub("db")));
  GetParam().ApplyTo(*store);
  ExpectUsageOfUpdates(*store, updates);
}

INSTANTIATE_TEST_SUITE_P(Ways, KeyRollupsTest, ::testing::ValuesIn(StoreWay::All()),
                         StoreWay::Name);

// A new store at `path` holding `updates`, closed (every change written out).
void WriteClosedStore(const std::string& path, const std::vector<Update>& updates) {
  auto store = OpenOrDie(Opts(path));
  Load(*store, updates);
}

// A read-only open (of a store nobody left journal rows in) cannot upgrade: it reads the rollups
// by key, and writes nothing.
TEST(KeyRollupsUpgradeTest, AVersion1StoreIsReadAsItIsByAReadOnlyOpen) {
  TempDir dir;
  const std::string path = dir.Sub("db");
  const auto updates = Updates();
  WriteClosedStore(path, updates);
  EXPECT_EQ(2u, StoredFormatVersion(path));
  EXPECT_EQ(1u, ColumnFamilies(path).count(format::kKeyMinuteCf));
  MakeFormat1Store(path);
  ASSERT_EQ(0u, ColumnFamilies(path).count(format::kKeyMinuteCf));
  {
    auto ro = Store::OpenReadOnly(Opts(path));
    ASSERT_OK(ro);
    ExpectUsageOfUpdates(**ro, updates);
  }
  EXPECT_EQ(1u, StoredFormatVersion(path));
  EXPECT_EQ(0u, ColumnFamilies(path).count(format::kKeyMinuteCf));
}

// The first open for writing upgrades, before it writes out the journal rows an unclean stop
// left (here half-way through writing them out: some partitions of the last rows are written,
// the others wait): each cell then counts once, and updates after the upgrade add to both.
TEST(KeyRollupsUpgradeTest, AVersion1StoreIsUpgradedByItsFirstOpenForWriting) {
  TempDir dir;
  const std::string path = dir.Sub("db");
  const auto updates = Updates();
  {
    auto store = OpenOrDie(Opts(path));
    testing_internal::SetJournalMode(*store, testing_internal::JournalMode::kAlways);
    const size_t half = updates.size() / 2;
    Load(*store, {updates.begin(), updates.begin() + half});
    store->Flush();
    testing_internal::StopApplierAfter(*store, 1);
    Load(*store, {updates.begin() + half, updates.end()});
  }
  MakeFormat1Store(path);
  {
    auto store = OpenOrDie(Opts(path));
    ExpectUsageOfUpdates(*store, updates);
    std::vector<Update> more = updates;
    more.push_back({kT0 + kDay + 5'000, "lb1", "customer-1", 7});
    Load(*store, {more.back()});
    ExpectUsageOfUpdates(*store, more);
  }
  EXPECT_EQ(2u, StoredFormatVersion(path));
  const std::set<std::string> families = ColumnFamilies(path);
  for (const char* name : {format::kKeyMinuteCf, format::kKeyHourCf, format::kKeyDayCf}) {
    EXPECT_EQ(1u, families.count(name)) << name;
  }
}

// An upgrade cut short leaves rows in the every-key families and version 1: the next open
// starts over, and counts each cell once.
TEST(KeyRollupsUpgradeTest, AnUpgradeCutShortIsStartedOver) {
  TempDir dir;
  const std::string path = dir.Sub("db");
  const auto updates = Updates();
  WriteClosedStore(path, updates);
  // The families keep their rows (as an upgrade cut short after writing some), at version 1.
  SetStoredFormatVersion(path, 1);
  {
    auto store = OpenOrDie(Opts(path));
    ExpectUsageOfUpdates(*store, updates);
  }
  EXPECT_EQ(2u, StoredFormatVersion(path));
}

}  // namespace
}  // namespace stickmeter::tsdb::testing
