// Kills a writer mid-stream with SIGKILL, restarts it on the same directory replaying the whole
// stream, and proves every total is exact: nothing acknowledged is lost, nothing counted twice.
// Once as it comes, once with every acknowledged group still a journal row at the kill, once with
// groups switching between journalling their state and rollups and writing them directly.
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <string>

#include "tests/support/status_matchers.h"
#include "tests/tsdb/crash_stream.h"
#include "tests/tsdb/test_util.h"
#include "tsdb/store.h"

namespace stickmeter::tsdb {
namespace {

struct Child {
  pid_t pid = -1;
  FILE* out = nullptr;
};

Child Spawn(const std::string& dir, int pace_us, const std::string& mode = "") {
  int fds[2];
  if (::pipe(fds) != 0) return {};
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::close(fds[0]);
    ::close(fds[1]);
    const std::string pace = std::to_string(pace_us);
    if (!mode.empty()) {
      ::execl(CRASH_HELPER_PATH, CRASH_HELPER_PATH, dir.c_str(), pace.c_str(), mode.c_str(),
              static_cast<char*>(nullptr));
    } else {
      ::execl(CRASH_HELPER_PATH, CRASH_HELPER_PATH, dir.c_str(), pace.c_str(),
              static_cast<char*>(nullptr));
    }
    ::_exit(127);
  }
  ::close(fds[1]);
  return Child{pid, ::fdopen(fds[0], "r")};
}

// Reads "acked N" lines; returns the last N (or -1) once `until` is reached or output ends.
int ReadAcks(Child& c, int until, bool* done) {
  char line[128];
  int last = -1;
  *done = false;
  while (std::fgets(line, sizeof line, c.out) != nullptr) {
    int n = 0;
    if (std::sscanf(line, "acked %d", &n) == 1) {
      EXPECT_EQ(last + 1, n) << "acks out of order";
      last = n;
      if (n >= until) break;
    } else if (std::string(line) == "done\n") {
      *done = true;
      break;
    }
  }
  return last;
}

int Wait(Child& c) {
  int status = 0;
  ::waitpid(c.pid, &status, 0);
  std::fclose(c.out);
  return status;
}

// Totals per key for one metric.
std::map<std::string, uint64_t> Totals(Store& s, const std::string& metric) {
  std::map<std::string, uint64_t> out;
  auto rows =
      s.Usage(UsageQuery{"/quota", metric, 0, crash::kT0 + 86'400'000, std::nullopt, std::nullopt});
  EXPECT_OK(rows);
  if (rows.ok()) {
    for (const auto& r : *rows) out[r.key] = r.total;
  }
  return out;
}

// The journal rows ("J" in the meta column family) of the store at `path`, read with RocksDB
// alone so that no Store writes them out first.
size_t CountJournalRows(const std::string& path) {
  std::vector<std::string> names;
  EXPECT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (const auto& n : names) cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  auto s = rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(), path, cfs, &handles, &db);
  EXPECT_TRUE(s.ok()) << s.ToString();
  if (!s.ok()) return 0;
  size_t n = 0;
  {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), handles[0]));
    for (it->Seek("J"); it->Valid() && it->key().starts_with("J"); it->Next()) ++n;
  }
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  delete db;
  return n;
}

class CrashTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CrashTest, KillMidStreamThenFullReplayCountsExactlyOnce) {
  const std::string mode = GetParam();
  testing::TempDir dir;
  const std::string db = dir.Sub("db");

  Child first = Spawn(db, 2000, mode);
  ASSERT_GT(first.pid, 0);
  bool done = false;
  const int acked_before_kill = ReadAcks(first, 60, &done);
  ::kill(first.pid, SIGKILL);
  const int status = Wait(first);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the helper finished before it was killed";
  ASSERT_GE(acked_before_kill, 60);
  ASSERT_LT(acked_before_kill, crash::kBatches - 1);
  if (mode == "hold") {
    // The state rows and rollup cells of every acknowledged group are only in the journal.
    EXPECT_GT(CountJournalRows(db), 0u);
  }

  {
    // A reader finds the journal left behind and, the store being free, has it written out.
    // Everything acknowledged before the kill is on disk with its exact values.
    StoreOptions o;
    o.path = db;
    auto store = Store::OpenReadOnly(o);
    ASSERT_OK(store);
    auto gpc0 = Totals(**store, "gpc0");
    auto bytes = Totals(**store, "bytes_out_cnt");
    for (int b = 0; b <= acked_before_kill; ++b) {
      for (int e = 0; e < crash::kEntries; ++e) {
        const int i = b * crash::kEntries + e;
        ASSERT_EQ(crash::Gpc0(i), gpc0[crash::KeyName(b, e)]) << "lost acked batch " << b;
        ASSERT_EQ(crash::Bytes(i), bytes[crash::KeyName(b, e)]) << "lost acked batch " << b;
      }
    }
  }

  // Restart and replay the whole stream from the start (a full resync).
  Child second = Spawn(db, 0);
  ASSERT_GT(second.pid, 0);
  const int acked = ReadAcks(second, crash::kBatches, &done);
  if (!done) ReadAcks(second, crash::kBatches, &done);
  const int status2 = Wait(second);
  ASSERT_TRUE(WIFEXITED(status2) && WEXITSTATUS(status2) == 0);
  EXPECT_EQ(crash::kBatches - 1, acked);

  StoreOptions o;
  o.path = db;
  auto store = Store::Open(o);
  ASSERT_OK(store);
  auto gpc0 = Totals(**store, "gpc0");
  auto req = Totals(**store, "http_req_cnt");
  auto bytes = Totals(**store, "bytes_out_cnt");
  ASSERT_EQ(size_t(crash::kBatches * crash::kEntries), gpc0.size());
  uint64_t sum_got = 0, sum_want = 0;
  for (int b = 0; b < crash::kBatches; ++b) {
    for (int e = 0; e < crash::kEntries; ++e) {
      const int i = b * crash::kEntries + e;
      const std::string k = crash::KeyName(b, e);
      ASSERT_EQ(crash::Gpc0(i), gpc0[k]) << k;
      ASSERT_EQ(crash::Req(i), req[k]) << k;
      ASSERT_EQ(crash::Bytes(i), bytes[k]) << k;
      sum_got += gpc0[k] + req[k] + bytes[k];
      sum_want += crash::Gpc0(i) + crash::Req(i) + crash::Bytes(i);
    }
  }
  EXPECT_EQ(sum_want, sum_got);
  // Exactly one audit event per series: the replay yielded delta 0 everywhere.
  auto stats = (*store)->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(uint64_t(crash::kBatches * crash::kEntries * 3), stats->live_series);
  AuditQuery q;
  q.table = "/quota";
  q.key = crash::KeyName(0, 0);
  q.from_ms = 0;
  q.to_ms = crash::kT0 + 86'400'000;
  auto events = (*store)->Audit(q);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(3u, events->size());
}

INSTANTIATE_TEST_SUITE_P(Journal, CrashTest, ::testing::Values("", "hold", "mixed"),
                         [](const auto& info) {
                           return info.param.empty()     ? std::string("AsItComes")
                                  : info.param == "hold" ? std::string("Held")
                                                         : std::string("Mixed");
                         });

}  // namespace
}  // namespace stickmeter::tsdb
