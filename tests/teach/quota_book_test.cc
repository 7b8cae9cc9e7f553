// QuotaBook: usage per tracker from a base and committed deltas, flags flushed into a real
// TaughtTables and decoded from what a peer's cursor collects.
#include "teach/quota_book.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "ingest/taught_tables.h"
#include "tests/ingest/taught_peer.h"
#include "tests/teach/test_util.h"

namespace stickmeter::teach {
namespace {

using testing::MakeQuota;

using ingest::DataType;
using ingest::testing::Decoded;
using ingest::testing::FakePeer;

constexpr int64_t kT = 1'781'481'600'000;     // 2026-06-15T00:00Z
constexpr int64_t kJune = 1'780'272'000'000;  // 2026-06-01T00:00Z
constexpr int64_t kJuly = 1'782'864'000'000;  // 2026-07-01T00:00Z
constexpr uint64_t kMax32 = std::numeric_limits<uint32_t>::max();

struct Flags {
  uint64_t gpt0 = 0;
  uint64_t gpc0 = 0;
  bool operator==(const Flags&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Flags& f) {
  return os << "{gpt0=" << f.gpt0 << " gpc0=" << f.gpc0 << "}";
}

class QuotaBookTest : public ::testing::Test {
 protected:
  QuotaBookTest() : taught_({"/q.quota"}), book_("/q", "/q.quota") {
    utc_ = *LocateZone("UTC");
    auto def = book_.SetLayout("string", 33, 0);
    EXPECT_TRUE(def.has_value());
    if (def) {
      EXPECT_TRUE(taught_.Define(*def));
    }
  }

  // Flushes the book and returns what the peer collects: the last flags per key.
  std::map<std::string, Flags> FlushAndCollect(int64_t now_ms, size_t* taught = nullptr) {
    const size_t n = book_.Flush(now_ms, taught_);
    if (taught != nullptr) *taught = n;
    Decoded d = peer_.Pull(taught_, 0);
    EXPECT_TRUE(d.ok) << d.error;
    std::map<std::string, Flags> out;
    for (const auto& u : d.updates) {
      EXPECT_EQ("/q.quota", u.table);
      EXPECT_EQ(ingest::StickTableType::kUpdate, u.type);  // no expire of its own
      out[u.key] = Flags{u.U(DataType::kGpt0), u.U(DataType::kGpc0)};
    }
    return out;
  }

  ingest::TaughtTables taught_;
  QuotaBook book_;
  const date::time_zone* utc_ = nullptr;
  FakePeer peer_;
};

TEST_F(QuotaBookTest, KeyIdsFindTheKeysTheirNamesFind) {
  auto base = book_.Put(MakeQuota(std::nullopt, 10), utc_, kT);
  ASSERT_TRUE(base.has_value());
  book_.SetBase(base->tracker, {{"a", 3}});  // by name, as read from the store
  book_.Apply("a", "http_req_cnt", 2, kT + 1'000, /*key_id=*/7);
  book_.Apply("b", "http_req_cnt", 1, kT + 1'000, /*key_id=*/8);
  book_.Apply("a", "http_req_cnt", 4, kT + 1'500, /*key_id=*/7);
  book_.Apply("b", "http_req_cnt", 1, kT + 1'500);  // no id: by name
  auto flags = FlushAndCollect(kT + 2'000);
  EXPECT_EQ((Flags{0, 9}), flags["a"]);
  EXPECT_EQ((Flags{0, 2}), flags["b"]);
  book_.Apply("a", "http_req_cnt", 1, kT + 3'000, 7);
  flags = FlushAndCollect(kT + 4'000);
  EXPECT_EQ((Flags{1, 10}), flags["a"]);
  EXPECT_EQ(1u, flags.size());
}

TEST_F(QuotaBookTest, LayoutDefinesGpt0AndGpc0) {
  Decoded d;
  book_.Put(MakeQuota(std::nullopt, 10), utc_, kT);
  book_.SetBase(0, {{"a", 1}});
  book_.Flush(kT, taught_);
  d = peer_.Pull(taught_, 0);
  ASSERT_TRUE(d.ok) << d.error;
  ASSERT_EQ(1u, d.defines.size());
  EXPECT_EQ("/q.quota", d.defines[0].name);
  EXPECT_EQ(ingest::KeyType::kString, d.defines[0].key_type);
  EXPECT_EQ(33u, d.defines[0].key_size);
  EXPECT_EQ((uint64_t{1} << 1) | (uint64_t{1} << 2), d.defines[0].data_bitfield);
  EXPECT_EQ(0u, d.defines[0].expire_ms);
  // The same layout again: no new definition.
  EXPECT_FALSE(book_.SetLayout("string", 33, 0).has_value());
  EXPECT_TRUE(book_.SetLayout("string", 65, 0).has_value());
  EXPECT_FALSE(book_.SetLayout("no-such-type", 65, 0).has_value());
}

TEST_F(QuotaBookTest, UsageFromBaseAndDeltas) {
  auto base = book_.Put(MakeQuota(std::nullopt, 10), utc_, kT);
  ASSERT_TRUE(base.has_value());
  EXPECT_EQ("http_req_cnt", base->metric);
  EXPECT_EQ(kJune, base->from_ms);
  EXPECT_EQ(kT + 1, base->cut_ms);  // what was received in the put's millisecond is in the base
  // Not taught before its base is known.
  EXPECT_TRUE(FlushAndCollect(kT).empty());
  book_.SetBase(base->tracker, {{"a", 3}, {"b", 9}});
  book_.Apply("a", "http_req_cnt", 2, kT + 1'000);
  book_.Apply("a", "gpc0", 100, kT + 1'000);  // no quota of that metric
  auto flags = FlushAndCollect(kT + 2'000);
  EXPECT_EQ((Flags{0, 5}), flags["a"]);
  EXPECT_EQ((Flags{0, 9}), flags["b"]);

  // The limit is reached exactly when used == limit.
  book_.Apply("b", "http_req_cnt", 1, kT + 3'000);
  book_.Apply("a", "http_req_cnt", 4, kT + 3'000);
  flags = FlushAndCollect(kT + 4'000);
  EXPECT_EQ((Flags{1, 10}), flags["b"]);
  EXPECT_EQ((Flags{0, 9}), flags["a"]);
  EXPECT_EQ(1u, book_.over_keys());

  // Deltas before the cut are in the base: ignored.
  book_.Apply("a", "http_req_cnt", 50, kT - 1);
  book_.Apply("a", "http_req_cnt", 50, kT);
  size_t n = 0;
  flags = FlushAndCollect(kT + 5'000, &n);
  EXPECT_EQ(0u, n);
  EXPECT_TRUE(flags.empty());
  auto st = book_.Find("http_req_cnt", std::nullopt);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(1u, st->over_keys);
  EXPECT_TRUE(st->over);
  EXPECT_EQ(kJune, st->period_start_ms);
  EXPECT_EQ(kJuly, st->period_end_ms);

  // Unchanged usage is not taught again.
  book_.Apply("a", "http_req_cnt", 0, kT + 6'000);
  EXPECT_TRUE(FlushAndCollect(kT + 6'000).empty());
}

TEST_F(QuotaBookTest, OwnQuotaWinsOverTheDefaultOfItsMetric) {
  auto base = book_.Put(MakeQuota(std::nullopt, 10), utc_, kT);
  ASSERT_TRUE(base.has_value());
  // Same metric, period and zone: the same tracker, no base to read.
  EXPECT_FALSE(book_.Put(MakeQuota("b", 3), utc_, kT).has_value());
  EXPECT_FALSE(book_.Put(MakeQuota("c", 100), utc_, kT).has_value());
  book_.SetBase(base->tracker, {{"a", 3}, {"b", 3}, {"c", 50}});
  auto flags = FlushAndCollect(kT + 1'000);
  EXPECT_EQ((Flags{0, 3}), flags["a"]);   // default 10
  EXPECT_EQ((Flags{1, 3}), flags["b"]);   // own 3
  EXPECT_EQ((Flags{0, 50}), flags["c"]);  // own 100, though over the default
  EXPECT_EQ(1u, book_.over_keys());

  // List: the default first (a governed key over: none, c has its own), then the own quotas.
  auto list = book_.List(std::nullopt);
  ASSERT_EQ(3u, list.size());
  EXPECT_FALSE(list[0].quota.key.has_value());
  EXPECT_EQ(0u, list[0].over_keys);
  EXPECT_FALSE(list[0].over);
  EXPECT_EQ(std::optional<std::string>("b"), list[1].quota.key);
  EXPECT_EQ(3u, list[1].used);
  EXPECT_TRUE(list[1].over);
  EXPECT_EQ(std::optional<std::string>("c"), list[2].quota.key);
  EXPECT_EQ(50u, list[2].used);
  EXPECT_FALSE(list[2].over);
  // With a key: the defaults and that key's own.
  auto of_b = book_.List(std::string("b"));
  ASSERT_EQ(2u, of_b.size());
  EXPECT_FALSE(of_b[0].quota.key.has_value());
  EXPECT_EQ(std::optional<std::string>("b"), of_b[1].quota.key);

  auto keys = book_.Keys();
  std::sort(keys.begin(), keys.end(), [](const auto& x, const auto& y) { return x.key < y.key; });
  ASSERT_EQ(3u, keys.size());
  EXPECT_EQ("a", keys[0].key);
  EXPECT_TRUE(keys[0].is_default);
  EXPECT_EQ(10u, keys[0].limit);
  EXPECT_EQ(3u, keys[0].used);
  EXPECT_FALSE(keys[0].over);
  EXPECT_EQ("b", keys[1].key);
  EXPECT_FALSE(keys[1].is_default);
  EXPECT_EQ(3u, keys[1].limit);
  EXPECT_TRUE(keys[1].over);
  EXPECT_EQ("/q", keys[1].table);
  EXPECT_EQ("http_req_cnt", keys[1].metric);
  EXPECT_EQ("c", keys[2].key);
  EXPECT_EQ(100u, keys[2].limit);

  // Deleting b's own quota puts it under the default again: 3 < 10, lifted.
  EXPECT_TRUE(book_.Delete("http_req_cnt", std::string("b")));
  EXPECT_FALSE(book_.Delete("http_req_cnt", std::string("b")));
  EXPECT_FALSE(book_.Find("http_req_cnt", std::string("b")).has_value());
  flags = FlushAndCollect(kT + 2'000);
  EXPECT_EQ((Flags{0, 3}), flags["b"]);
  EXPECT_EQ(0u, book_.over_keys());

  // Deleting the default: c is now over it no more... c keeps its own; a is free.
  book_.Apply("a", "http_req_cnt", 20, kT + 3'000);
  flags = FlushAndCollect(kT + 3'000);
  EXPECT_EQ((Flags{1, 23}), flags["a"]);
  EXPECT_TRUE(book_.Delete("http_req_cnt", std::nullopt));
  EXPECT_FALSE(book_.Delete("http_req_cnt", std::nullopt));
  flags = FlushAndCollect(kT + 4'000);
  EXPECT_EQ((Flags{0, 0}), flags["a"]);
  EXPECT_EQ(0u, book_.over_keys());
}

TEST_F(QuotaBookTest, DeltaOfTheNextPeriodRollsOver) {
  auto base = book_.Put(MakeQuota(std::nullopt, 10), utc_, kT);
  ASSERT_TRUE(base.has_value());
  book_.SetBase(base->tracker, {{"a", 12}, {"b", 4}});
  auto flags = FlushAndCollect(kT);
  EXPECT_EQ((Flags{1, 12}), flags["a"]);
  EXPECT_EQ((Flags{0, 4}), flags["b"]);
  // The first delta of July: June's usage is over, every flag resets.
  book_.Apply("b", "http_req_cnt", 2, kJuly + 5);
  flags = FlushAndCollect(kJuly + 10);
  EXPECT_EQ((Flags{0, 0}), flags["a"]);
  EXPECT_EQ((Flags{0, 2}), flags["b"]);
  EXPECT_EQ(0u, book_.over_keys());
  auto st = book_.Find("http_req_cnt", std::nullopt);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(kJuly, st->period_start_ms);
  // A late delta of June no longer counts.
  book_.Apply("b", "http_req_cnt", 100, kJuly - 1);
  EXPECT_TRUE(FlushAndCollect(kJuly + 20).empty());
}

// A quota put just before a boundary: its base (June's usage) arrives after July's first delta
// rolled the tracker over. June's usage is not July's.
TEST_F(QuotaBookTest, ABaseOfAPeriodRolledPastCountsNothing) {
  auto base = book_.Put(MakeQuota(std::nullopt, 10), utc_, kJuly - 5);
  ASSERT_TRUE(base.has_value());
  book_.Apply("b", "http_req_cnt", 2, kJuly + 5);
  book_.Roll(kJuly + 5);
  book_.SetBase(base->tracker, {{"a", 12}, {"b", 4}}, base->from_ms);
  auto flags = FlushAndCollect(kJuly + 10);
  EXPECT_EQ((Flags{0, 0}), flags["a"]);
  EXPECT_EQ((Flags{0, 2}), flags["b"]);
  EXPECT_EQ(0u, book_.over_keys());
}

// A key idle for a whole period (no usage, no quota of its own, its flag lifted) is forgotten:
// neither refreshed nor taught to a node that connects later. Keys with usage or a quota of
// their own stay.
TEST_F(QuotaBookTest, KeysIdleForAWholePeriodAreForgotten) {
  auto base = book_.Put(MakeQuota(std::nullopt, 10), utc_, kT);
  ASSERT_TRUE(base.has_value());
  book_.Put(MakeQuota(std::string("own"), 100), utc_, kT);
  book_.SetBase(base->tracker, {{"a", 12}, {"b", 4}, {"own", 1}});
  EXPECT_EQ((Flags{1, 12}), FlushAndCollect(kT)["a"]);
  // July: June's flags are lifted; b alone has usage in July.
  book_.Apply("b", "http_req_cnt", 2, kJuly + 5);
  auto flags = FlushAndCollect(kJuly + 10);
  EXPECT_EQ((Flags{0, 0}), flags["a"]);
  EXPECT_EQ((Flags{0, 2}), flags["b"]);
  EXPECT_EQ((Flags{0, 0}), flags["own"]);
  // August: a was idle all July (b was not; own has its own quota).
  constexpr int64_t kAugust = 1'785'542'400'000;  // 2026-08-01T00:00Z
  FlushAndCollect(kAugust + 10);
  FakePeer fresh;
  const Decoded all = fresh.Pull(taught_, 0);
  ASSERT_TRUE(all.ok) << all.error;
  std::set<std::string> taught;
  for (const auto& u : all.updates) taught.insert(u.key);
  EXPECT_EQ((std::set<std::string>{"b", "own"}), taught);
  auto keys = book_.Keys();
  EXPECT_TRUE(std::none_of(keys.begin(), keys.end(), [](const auto& k) { return k.key == "a"; }));
  // a may come back.
  book_.Apply("a", "http_req_cnt", 11, kAugust + 20);
  EXPECT_EQ((Flags{1, 11}), FlushAndCollect(kAugust + 30)["a"]);
}

TEST_F(QuotaBookTest, PeriodEndRollsOverWithoutDeltas) {
  auto base = book_.Put(MakeQuota(std::string("a"), 10), utc_, kT);
  ASSERT_TRUE(base.has_value());
  book_.SetBase(base->tracker, {{"a", 12}});
  EXPECT_EQ((Flags{1, 12}), FlushAndCollect(kT)["a"]);
  // Flushing in July rolls June over: the key is free again.
  EXPECT_EQ((Flags{0, 0}), FlushAndCollect(kJuly)["a"]);
  auto st = book_.Find("http_req_cnt", std::string("a"));
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(0u, st->used);
  EXPECT_FALSE(st->over);
}

TEST_F(QuotaBookTest, Gpc0SaturatesAt32Bits) {
  auto base = book_.Put(MakeQuota(std::nullopt, 10'000'000'000ULL), utc_, kT);
  ASSERT_TRUE(base.has_value());
  book_.SetBase(base->tracker, {{"big", 5'000'000'000ULL}});
  auto flags = FlushAndCollect(kT);
  EXPECT_EQ((Flags{0, kMax32}), flags["big"]);
  book_.Apply("big", "http_req_cnt", 5'000'000'000ULL, kT + 1);
  flags = FlushAndCollect(kT + 2);
  EXPECT_EQ((Flags{1, kMax32}), flags["big"]);
  auto st = book_.List(std::nullopt);
  ASSERT_EQ(1u, st.size());
  EXPECT_EQ(1u, st[0].over_keys);
  auto keys = book_.Keys();
  ASSERT_EQ(1u, keys.size());
  EXPECT_EQ(10'000'000'000ULL, keys[0].used);  // the API shows the full usage
}

TEST_F(QuotaBookTest, TheQuotaNearestItsLimitIsShown) {
  auto reqs = book_.Put(MakeQuota(std::nullopt, 100), utc_, kT);
  auto gpc = book_.Put(MakeQuota(std::nullopt, 10, "gpc0"), utc_, kT);
  ASSERT_TRUE(reqs.has_value());
  ASSERT_TRUE(gpc.has_value());
  EXPECT_NE(reqs->tracker, gpc->tracker);
  book_.SetBase(reqs->tracker, {{"a", 50}});
  book_.SetBase(gpc->tracker, {{"a", 2}});
  EXPECT_EQ((Flags{0, 50}), FlushAndCollect(kT)["a"]);  // 50% of 100 vs 20% of 10
  book_.Apply("a", "gpc0", 8, kT + 1);
  EXPECT_EQ((Flags{1, 10}), FlushAndCollect(kT + 2)["a"]);  // gpc0 reached
  // Another zone is another tracker, with a base of its own.
  Quota berlin = MakeQuota(std::string("a"), 1000, "gpc0");
  berlin.tz = "Europe/Berlin";
  EXPECT_TRUE(book_.Put(berlin, *LocateZone("Europe/Berlin"), kT).has_value());
}

TEST(QuotaBookKeysTest, KeysThatAreNotKeysOfTheTableAreNotTaught) {
  ingest::TaughtTables taught({"/ip.quota"});
  QuotaBook book("/ip", "/ip.quota");
  auto def = book.SetLayout("ipv4", 4, 60'000);
  ASSERT_TRUE(def.has_value());
  EXPECT_EQ(ingest::KeyType::kIpv4, def->key_type);
  EXPECT_EQ(60'000u, def->expire_ms);
  ASSERT_TRUE(taught.Define(*def));
  Quota q = MakeQuota(std::nullopt, 5);
  q.table = "/ip";
  auto base = book.Put(q, *LocateZone("UTC"), kT);
  ASSERT_TRUE(base.has_value());
  book.SetBase(base->tracker, {{"10.0.0.1", 7}, {"not-an-address", 9}});
  EXPECT_EQ(1u, book.Flush(kT, taught));
  FakePeer peer;
  Decoded d = peer.Pull(taught, 0);
  ASSERT_TRUE(d.ok) << d.error;
  ASSERT_EQ(1u, d.updates.size());
  EXPECT_EQ("10.0.0.1", d.updates[0].key);
  EXPECT_EQ(1u, d.updates[0].U(DataType::kGpt0));
  EXPECT_EQ(7u, d.updates[0].U(DataType::kGpc0));
}

TEST(QuotaBookKeysTest, EveryKeyIsTaughtAgainWhenTheKeyTypeChanges) {
  // The source table's keys become integers: the taught table is redefined, the entries taught
  // with string keys are gone, and every key must be taught again under the new definition,
  // changed or not (a key blocked by its quota may well not change).
  ingest::TaughtTables taught({"/n.quota"});
  QuotaBook book("/n", "/n.quota");
  auto def = book.SetLayout("string", 33, 0);
  ASSERT_TRUE(def.has_value());
  ASSERT_TRUE(taught.Define(*def));
  Quota q = MakeQuota(std::nullopt, 5);
  q.table = "/n";
  auto base = book.Put(q, *LocateZone("UTC"), kT);
  ASSERT_TRUE(base.has_value());
  book.SetBase(base->tracker, {{"42", 7}, {"7", 1}});
  EXPECT_EQ(2u, book.Flush(kT, taught));
  FakePeer peer;
  Decoded d = peer.Pull(taught, 0);
  ASSERT_TRUE(d.ok) << d.error;
  EXPECT_EQ(2u, d.updates.size());

  def = book.SetLayout("integer", 4, 0);
  ASSERT_TRUE(def.has_value());
  ASSERT_TRUE(taught.Define(*def));
  book.Flush(kT + 1, taught);
  d = peer.Pull(taught, 0);
  ASSERT_TRUE(d.ok) << d.error;
  ASSERT_EQ(1u, d.defines.size());
  EXPECT_EQ(ingest::KeyType::kSignedInt, d.defines[0].key_type);
  std::map<std::string, Flags> flags;
  for (const auto& u : d.updates) flags[u.key] = Flags{u.U(DataType::kGpt0), u.U(DataType::kGpc0)};
  EXPECT_EQ(2u, flags.size());
  EXPECT_EQ((Flags{1, 7}), flags["42"]);
  EXPECT_EQ((Flags{0, 1}), flags["7"]);
  EXPECT_EQ(1u, book.over_keys());
}

}  // namespace
}  // namespace stickmeter::teach
