// Opening a store on real RocksDB in temporary directories: one-line errors for what is not a
// store, cannot be created or is in use; only this build's format version opens; and stores
// damaged on disk (CURRENT, SST files, the WAL) are reported, by the store and by read-only views.
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "tests/support/status_matchers.h"
#include "tests/tsdb/store_test_util.h"
#include "tests/tsdb/test_util.h"
#include "tsdb/format.h"
#include "tsdb/store.h"

namespace stickmeter::tsdb {
namespace {

namespace fs = std::filesystem;
using testing::Batch;
using testing::ColumnFamilies;
using testing::kT0;
using testing::OpenOrDie;
using testing::Opts;
using testing::SetStoredFormatVersion;
using testing::StoredFormatVersion;
using testing::SubmitSync;
using testing::Table;
using testing::TempDir;
using testing::Total;
using testing::WithRawDb;

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

std::string VersionRefusal(const std::string& path, uint32_t version) {
  return "store " + path + " has format version " + std::to_string(version) +
         "; this build reads format version 2 and upgrades 1 to it";
}

// A new store records format 2, the one this build reads (it upgrades version 1: see
// key_rollups_test.cc). A store recording any other version, older or newer, is refused by both
// opens with one line naming the versions, and is left as it was: setting the record back opens
// it with its data.
TEST(StoreTest, OnlyThisBuildsFormatVersionOpens) {
  TempDir dir;
  const std::string path = dir.Sub("db");
  auto t = Table("/quota");
  {
    auto store = OpenOrDie(Opts(path));
    ASSERT_TRUE(SubmitSync(*store, Batch("lb1", 1, t, "k", kT0, {{"gpc0", 5}})).ok());
  }
  EXPECT_EQ(2u, format::kFormatVersion);
  EXPECT_EQ(2u, StoredFormatVersion(path));
  for (const uint32_t version : {0u, 3u, 7u, UINT32_MAX}) {
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
  SetStoredFormatVersion(path, 2);
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

TEST(StoreTest, ReadOnlyOpenOfSomethingElseFails) {
  testing::TempDir dir;
  auto r = Store::OpenReadOnly(Opts(dir.path()));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(Status::Code::kNotFound, r.status().code());
  EXPECT_NE(std::string::npos, r.status().message().find("no stickmeter store"));
}

}  // namespace
}  // namespace stickmeter::tsdb
