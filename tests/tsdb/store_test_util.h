// Helpers shared by the store tests (store_test.cc, store_open_test.cc, store_journal_test.cc):
// store options, totals, audit trails and exports rendered as text, and a closed store's RocksDB
// opened directly. They keep no state, so any thread may call them (a test's reader thread calls
// Total); WithRawDb needs the store at `path` closed.
#pragma once

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/status_matchers.h"
#include "tests/tsdb/test_util.h"
#include "tsdb/format.h"
#include "tsdb/merge_operators.h"
#include "tsdb/store.h"
#include "tsdb/store_testing.h"

namespace stickmeter::tsdb::testing {

inline constexpr int64_t kT0 = 1'790'000'000'000;  // 2026-09-21T...Z, minute aligned below
inline constexpr int64_t kDay = 86'400'000;

// "t source metric value delta reason" per line.
inline std::string RenderAudit(Store& s, const std::string& table, const std::string& key) {
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
inline std::string RenderExport(Store& store, const ExportQuery& eq, size_t stop_after) {
  std::string out;
  size_t n = 0;
  Status s = store.Export(eq, [&](const ExportRow& r) {
    out += r.table + "," + r.key + "," + r.metric + "," + r.source + "," + std::to_string(r.total) +
           "\n";
    return ++n < stop_after;
  });
  return s.ok() ? out : s.ToString();
}

inline uint64_t Total(Store& s, const std::string& table, const std::string& metric,
                      const std::string& key, int64_t from = 0, int64_t to = kT0 + 400 * kDay) {
  UsageQuery q{table, metric, from, to, key, std::nullopt};
  auto r = s.Usage(q);
  EXPECT_OK(r);
  if (!r.ok() || r->empty()) return 0;
  return r->front().total;
}

inline StoreOptions Opts(const std::string& path) {
  StoreOptions o;
  o.path = path;
  o.sync_writes = false;
  return o;
}

// Opens a closed store's RocksDB directly, as a broken writer or another build would, and calls
// `fn` with the handle of each column family by name.
inline void WithRawDb(
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
    } else if (n == format::kKeyMinuteCf || n == format::kKeyHourCf || n == format::kKeyDayCf) {
      c.merge_operator = std::make_shared<KeySumsMergeOperator>();
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

inline std::set<std::string> ColumnFamilies(const std::string& path) {
  std::vector<std::string> names;
  EXPECT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &names).ok());
  return std::set<std::string>(names.begin(), names.end());
}

// The format record of the closed store at `path`, read and written with RocksDB directly.
inline uint32_t StoredFormatVersion(const std::string& path) {
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

inline void SetStoredFormatVersion(const std::string& path, uint32_t version) {
  WithRawDb(path, [&](rocksdb::DB* db, auto& cf) {
    std::string v;
    format::PutU32BE(v, version);
    ASSERT_TRUE(
        db->Put(rocksdb::WriteOptions(), cf.at(format::kMetaCf), format::FormatKey(), v).ok());
  });
}

// Makes the closed store at `path` what a build of format version 1 left: no every-key
// families, version 1 recorded.
inline void MakeFormat1Store(const std::string& path) {
  WithRawDb(path, [](rocksdb::DB* db, auto& cf) {
    for (const char* name : {format::kKeyMinuteCf, format::kKeyHourCf, format::kKeyDayCf}) {
      ASSERT_TRUE(db->DropColumnFamily(cf.at(name)).ok()) << name;
    }
  });
  SetStoredFormatVersion(path, 1);
}

// Both ways a group commits its state and rollups, named for the test list.
inline const auto kCommitWays = ::testing::Values(testing_internal::JournalMode::kAlways,
                                                  testing_internal::JournalMode::kNever);
inline std::string CommitWayName(
    const ::testing::TestParamInfo<testing_internal::JournalMode>& info) {
  return info.param == testing_internal::JournalMode::kAlways ? "Journalled" : "Direct";
}

}  // namespace stickmeter::tsdb::testing
