// The teacher with a real store (RocksDB in a temporary directory): quotas through the
// QuotaService API, usage from committed batches, flags collected from the taught tables by a
// peer's cursor, persistence across a close and reopen, and cluster-wide sums.
#include "teach/teacher.h"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/time.h"
#include "ingest/taught_tables.h"
#include "tests/ingest/taught_peer.h"
#include "tests/support/status_matchers.h"
#include "tests/teach/test_util.h"
#include "tests/tsdb/test_util.h"

namespace stickmeter::teach {
namespace {

using testing::MakeQuota;

using ingest::DataType;
using ingest::testing::Decoded;
using ingest::testing::FakePeer;
using tsdb::testing::Batch;
using tsdb::testing::SubmitSync;
using tsdb::testing::TempDir;

constexpr size_t kAggregate = 0;  // "/a.aggregate"
constexpr size_t kQuota = 1;      // "/q.quota"

struct Flags {
  uint64_t gpt0 = 0;
  uint64_t gpc0 = 0;
  bool operator==(const Flags&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Flags& f) {
  return os << "{gpt0=" << f.gpt0 << " gpc0=" << f.gpc0 << "}";
}

std::shared_ptr<const ingest::TableInfo> QTable() {
  auto t = std::make_shared<ingest::TableInfo>();
  t->name = "/q";
  t->key_type = "string";
  t->key_size = 33;
  t->data_types = {"gpc0", "http_req_cnt"};
  t->periods_ms = {0, 0};
  t->array_sizes = {0, 0};
  return t;
}

std::shared_ptr<const ingest::TableInfo> ATable() {
  auto t = std::make_shared<ingest::TableInfo>();
  t->name = "/a";
  t->key_type = "string";
  t->key_size = 33;
  t->expire_ms = 600'000;
  t->data_types = {"gpc0", "http_req_cnt"};
  t->periods_ms = {0, 0};
  t->array_sizes = {0, 0};
  return t;
}

class TeacherTest : public ::testing::Test {
 protected:
  TeacherTest() {
    options_.aggregate = {{"/a", "/a.aggregate"}};
    options_.quota = {{"/q", "/q.quota"}};
    options_.window_ms = 20;
  }
  ~TeacherTest() override { Close(); }

  void Open() {
    tsdb::StoreOptions o;
    o.path = dir_.Sub("db");
    o.sync_writes = false;
    store_ = tsdb::testing::OpenOrDie(o);
    ASSERT_NE(nullptr, store_);
    taught_ = std::make_unique<ingest::TaughtTables>(TaughtNames(options_));
    teacher_ = std::make_unique<Teacher>(options_, *store_, *taught_);
    store_->SetCommitObserver(teacher_.get());
    Status s = teacher_->Start();
    ASSERT_OK(s);
    peer_ = std::make_unique<FakePeer>();
    flags_.clear();
    sums_.clear();
  }
  void Close() {
    if (teacher_) teacher_->Stop();
    if (store_) {
      EXPECT_TRUE(store_->Close().ok());
    }
    teacher_.reset();
    store_.reset();
    taught_.reset();
  }

  // Submits one entry of `table` from `source`, received at `t_ms` (now by default), and waits
  // for its commit.
  void Submit(std::shared_ptr<const ingest::TableInfo> table, const std::string& source,
              const std::string& key, uint64_t gpc0, uint64_t reqs, int64_t t_ms = 0) {
    uint64_t& conn = conn_id_[source];
    if (conn == 0) conn = ++next_conn_;
    Status s = SubmitSync(*store_,
                          Batch(source, conn, std::move(table), key, t_ms == 0 ? NowUnixMs() : t_ms,
                                {{"gpc0", gpc0}, {"http_req_cnt", reqs}}));
    ASSERT_OK(s);
  }

  // Pulls what the taught tables hold for this peer into flags_ and sums_.
  void PullAll() {
    for (size_t index : {kAggregate, kQuota}) {
      Decoded d = peer_->Pull(*taught_, index);
      ASSERT_TRUE(d.ok) << d.error;
      for (const auto& u : d.updates) {
        if (index == kQuota) {
          flags_[u.key] = Flags{u.U(DataType::kGpt0), u.U(DataType::kGpc0)};
        } else {
          sums_[u.key] = {u.U(DataType::kGpc0), u.U(DataType::kHttpReqCnt)};
        }
      }
    }
  }

  // Polls the taught tables (up to 5 s) until `done` holds.
  bool WaitFor(const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    for (;;) {
      PullAll();
      if (done()) return true;
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  bool WaitForFlags(const std::string& key, Flags want) {
    const bool ok = WaitFor([&] { return flags_.count(key) && flags_[key] == want; });
    EXPECT_TRUE(ok) << key << ": taught " << (flags_.count(key) ? flags_[key] : Flags{99, 99})
                    << ", want " << want;
    return ok;
  }

  TempDir dir_;
  TeacherOptions options_;
  std::unique_ptr<tsdb::Store> store_;
  std::unique_ptr<ingest::TaughtTables> taught_;
  std::unique_ptr<Teacher> teacher_;
  std::unique_ptr<FakePeer> peer_;
  std::map<std::string, Flags> flags_;
  std::map<std::string, std::pair<uint64_t, uint64_t>> sums_;
  std::map<std::string, uint64_t> conn_id_;
  uint64_t next_conn_ = 0;
};

// Under heavy change the window stretches so that about max_taught_per_second entries are
// taught a second, never past max_window_ms; at ordinary rates it stays window_ms.
TEST(TeachWindowTest, StretchesWithTheEntriesTaughtUpToItsMaximum) {
  TeacherOptions o;  // 20 ms, up to 60 ms, 200,000 entries a second
  EXPECT_EQ(20, NextWindowMs(o, 0));
  EXPECT_EQ(20, NextWindowMs(o, 3'600));   // 100k updates/s over 10k keys, 2 tables
  EXPECT_EQ(20, NextWindowMs(o, 4'000));   // exactly 200,000 a second
  EXPECT_EQ(30, NextWindowMs(o, 6'000));   // 300,000 a second at 20 ms: spread over 30 ms
  EXPECT_EQ(60, NextWindowMs(o, 20'000));  // every key of 10k in 2 tables: capped
  EXPECT_EQ(60, NextWindowMs(o, SIZE_MAX));
  o.max_taught_per_second = 0;  // no budget: always the window
  EXPECT_EQ(20, NextWindowMs(o, 20'000));
  o = TeacherOptions{};
  o.max_window_ms = 10;  // a maximum below the window: the window
  EXPECT_EQ(20, NextWindowMs(o, 20'000));
}

TEST_F(TeacherTest, TaughtNamesAndPairs) {
  EXPECT_EQ((std::vector<std::string>{"/a.aggregate", "/q.quota"}), TaughtNames(options_));
  auto p = ParseTeachPair("/q", ".quota");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(std::make_pair(std::string("/q"), std::string("/q.quota")), *p);
  p = ParseTeachPair("/q=limits", ".quota");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ("limits", p->second);
  EXPECT_FALSE(ParseTeachPair("", ".quota").ok());
  EXPECT_FALSE(ParseTeachPair("/q=/q", ".quota").ok());
  EXPECT_FALSE(ParseTeachPair("/q=", ".quota").ok());
  EXPECT_TRUE(CheckTeachPairs(options_).ok());
  TeacherOptions twice = options_;
  twice.quota.push_back({"/b", "/a.aggregate"});
  EXPECT_FALSE(CheckTeachPairs(twice).ok());
  TeacherOptions loop = options_;
  loop.quota.push_back({"/q.quota", "/x"});
  EXPECT_FALSE(CheckTeachPairs(loop).ok());
}

// Stopped across a period boundary: a key over its quota in the period before, with no usage in
// this one, is taught its flag lifted as stickmeter starts. The nodes would keep the old flag
// until their entry expired, and a refused customer makes no usage that would teach it again.
TEST_F(TeacherTest, FlagsOfThePeriodBeforeAreLiftedAtStart) {
  Open();
  Quota daily = MakeQuota(std::nullopt, 10);
  daily.period = Period::kDay;
  ASSERT_OK(teacher_->Put(daily));
  const int64_t yesterday = NowUnixMs() - 86'400'000;
  Submit(QTable(), "lb1", "refused", 0, 50, yesterday);
  Submit(QTable(), "lb1", "both", 0, 50, yesterday);
  Submit(QTable(), "lb1", "both", 0, 53);  // 3 today
  Close();
  Open();
  ASSERT_TRUE(WaitForFlags("refused", {0, 0}));
  ASSERT_TRUE(WaitForFlags("both", {0, 3}));
}

TEST_F(TeacherTest, QuotasFollowCommittedUsageAndSurviveAReopen) {
  Open();
  EXPECT_TRUE(teacher_->Observes("/q"));
  EXPECT_TRUE(teacher_->Observes("/a"));
  EXPECT_FALSE(teacher_->Observes("/q.quota"));
  EXPECT_FALSE(teacher_->Observes("/other"));

  // Usage before the quota exists: read from the store when the quota is put.
  Submit(QTable(), "lb1", "k1", 1, 5);
  auto put = teacher_->Put(MakeQuota(std::nullopt, 10));
  ASSERT_OK(put);
  EXPECT_EQ(0u, put->over_keys);
  EXPECT_LE(put->period_start_ms, NowUnixMs());
  EXPECT_GT(put->period_end_ms, NowUnixMs());
  ASSERT_TRUE(WaitForFlags("k1", {0, 5}));

  // Usage after it: from the commits, the flag set exactly at the limit.
  Submit(QTable(), "lb1", "k1", 2, 9);
  ASSERT_TRUE(WaitForFlags("k1", {0, 9}));
  Submit(QTable(), "lb1", "k1", 4, 10);
  ASSERT_TRUE(WaitForFlags("k1", {1, 10}));
  Submit(QTable(), "lb2", "k1", 0, 2);  // another node's share adds up
  ASSERT_TRUE(WaitForFlags("k1", {1, 12}));
  Submit(QTable(), "lb2", "k2", 0, 3);
  ASSERT_TRUE(WaitForFlags("k2", {0, 3}));

  auto list = teacher_->List(std::string("/q"), std::nullopt);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(1u, list->size());
  EXPECT_EQ(1u, (*list)[0].over_keys);
  EXPECT_TRUE((*list)[0].over);
  auto keys = teacher_->Keys(std::nullopt, std::nullopt, 10);
  ASSERT_TRUE(keys.ok());
  ASSERT_EQ(2u, keys->size());
  EXPECT_EQ("k1", (*keys)[0].key);  // over quota first
  EXPECT_TRUE((*keys)[0].over);
  EXPECT_EQ(12u, (*keys)[0].used);
  EXPECT_TRUE((*keys)[0].is_default);
  EXPECT_EQ("k2", (*keys)[1].key);
  EXPECT_EQ(3u, (*keys)[1].used);
  ASSERT_TRUE(teacher_->Keys(std::nullopt, std::nullopt, 1).ok());
  EXPECT_EQ(1u, teacher_->Keys(std::nullopt, std::nullopt, 1)->size());
  // One key: its rows only, wherever it ranks.
  auto k2 = teacher_->Keys(std::string("/q"), std::string("k2"), 1);
  ASSERT_TRUE(k2.ok());
  ASSERT_EQ(1u, k2->size());
  EXPECT_EQ("k2", (*k2)[0].key);
  EXPECT_EQ(3u, (*k2)[0].used);
  EXPECT_TRUE(teacher_->Keys(std::string("/q"), std::string("k9"), 10)->empty());
  EXPECT_TRUE(teacher_->Keys(std::string("/other"), std::string("k2"), 10)->empty());

  // A quota of a new metric once data exists: its usage is read from the store.
  auto own = teacher_->Put(MakeQuota(std::string("k1"), 100, "gpc0"));
  ASSERT_OK(own);
  EXPECT_EQ(4u, own->used);
  EXPECT_FALSE(own->over);
  // k1 stays over its http_req_cnt default, the quota nearest its limit shown.
  Submit(QTable(), "lb1", "k1", 6, 10);
  ASSERT_TRUE(WaitFor([&] {
    auto l = teacher_->List(std::string("/q"), std::string("k1"));
    return l.ok() && l->size() == 2 && (*l)[1].used == 6;
  }));
  EXPECT_EQ((Flags{1, 12}), flags_["k1"]);

  auto history = teacher_->History(std::nullopt, 10);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(2u, history->size());
  EXPECT_EQ("put", (*history)[0].action);
  EXPECT_FALSE((*history)[0].quota.key.has_value());
  EXPECT_EQ(10u, (*history)[0].quota.limit);
  EXPECT_EQ(std::optional<std::string>("k1"), (*history)[1].quota.key);

  // Closed and reopened: quotas, usage and flags come back before any new update.
  Close();
  Open();
  PullAll();
  EXPECT_EQ((Flags{1, 12}), flags_["k1"]);
  EXPECT_EQ((Flags{0, 3}), flags_["k2"]);
  list = teacher_->List(std::string("/q"), std::nullopt);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(2u, list->size());
  EXPECT_EQ(1u, (*list)[0].over_keys);
  EXPECT_EQ(std::optional<std::string>("k1"), (*list)[1].quota.key);
  EXPECT_EQ(6u, (*list)[1].used);
  history = teacher_->History(std::string("/q"), 10);
  ASSERT_TRUE(history.ok());
  EXPECT_EQ(2u, history->size());

  // Deleting the default lifts k1's http_req_cnt flag; its own gpc0 quota (6 of 100) remains.
  ASSERT_TRUE(teacher_->Delete("/q", "http_req_cnt", std::nullopt).ok());
  ASSERT_TRUE(WaitForFlags("k1", {0, 6}));
  ASSERT_TRUE(WaitForFlags("k2", {0, 0}));
  history = teacher_->History(std::nullopt, 10);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(3u, history->size());
  EXPECT_EQ("delete", (*history)[2].action);
  EXPECT_EQ(Status::Code::kNotFound, teacher_->Delete("/q", "http_req_cnt", std::nullopt).code());
}

TEST_F(TeacherTest, PutRejectsBadQuotas) {
  Open();
  auto r = teacher_->Put([] {
    Quota q = MakeQuota(std::nullopt, 1);
    q.table = "/nope";
    return q;
  }());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(Status::Code::kInvalidArgument, r.status().code());
  EXPECT_TRUE(r.status().message().starts_with("table:")) << r.status().message();
  r = teacher_->Put(MakeQuota(std::nullopt, 1, "conn_cur"));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().message().starts_with("metric:")) << r.status().message();
  r = teacher_->Put(MakeQuota(std::nullopt, 1, "gpc.0"));
  EXPECT_OK(r);
  r = teacher_->Put(MakeQuota(std::nullopt, 1, "gpc.01"));
  EXPECT_FALSE(r.ok());
  r = teacher_->Put(MakeQuota(std::string(""), 1));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().message().starts_with("key:")) << r.status().message();
  Quota bad_tz = MakeQuota(std::nullopt, 1);
  bad_tz.tz = "../etc/passwd";
  r = teacher_->Put(bad_tz);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().message().starts_with("tz:")) << r.status().message();
  EXPECT_EQ(Status::Code::kNotFound, teacher_->Delete("/q", "gpc0", std::string("nobody")).code());
  // Only the valid one was kept.
  auto history = teacher_->History(std::nullopt, 10);
  ASSERT_TRUE(history.ok());
  EXPECT_EQ(1u, history->size());
}

TEST_F(TeacherTest, AggregatesSumEveryNode) {
  Open();
  Submit(ATable(), "lb1", "user", 3, 30);
  Submit(ATable(), "lb2", "user", 4, 40);
  ASSERT_TRUE(WaitFor([&] {
    return sums_.count("user") && sums_["user"] == std::make_pair(uint64_t{7}, uint64_t{70});
  })) << "taught "
      << sums_["user"].first << "/" << sums_["user"].second;
  Submit(ATable(), "lb1", "user", 5, 31);
  ASSERT_TRUE(WaitFor([&] { return sums_["user"] == std::make_pair(uint64_t{9}, uint64_t{71}); }))
      << "taught " << sums_["user"].first << "/" << sums_["user"].second;
  // A node that restarted (asked for a full resync) no longer contributes its old values.
  Status s = SubmitSync(*store_, Batch("lb2", 99, ATable(), "user", NowUnixMs(),
                                       {{"gpc0", 1}, {"http_req_cnt", 1}}, true));
  ASSERT_OK(s);
  ASSERT_TRUE(WaitFor([&] { return sums_["user"] == std::make_pair(uint64_t{6}, uint64_t{32}); }))
      << "taught " << sums_["user"].first << "/" << sums_["user"].second;
}

}  // namespace
}  // namespace stickmeter::teach
