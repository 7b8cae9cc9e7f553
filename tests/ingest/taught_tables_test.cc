// TaughtTables: what stickmeter teaches, pulled through cursors and decoded with the real
// decoder (DEFINE, update ids, values, timed updates, ageing, cursors, redefinitions, limits,
// listeners); and ParseKey, the inverse of FormatKey, for every key type.
#include "ingest/taught_tables.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/time.h"
#include "ingest/codec.h"
#include "tests/ingest/taught_peer.h"
#include "tests/ingest/test_util.h"

namespace stickmeter::ingest {
namespace {

using ::stickmeter::ingest::testing::Hex;

using testing::Decoded;
using testing::DecodedUpdate;
using testing::FakePeer;
using testing::Freq;
using testing::Unsigned;

constexpr uint64_t Bit(DataType t) { return uint64_t{1} << static_cast<int>(t); }
constexpr uint64_t kPeriod = 10'000;
// Slack for the wall clock moving while a test runs (Collect ages values by it).
constexpr int64_t kSlackMs = 5'000;

// A string-keyed table storing gpc0, http_req_cnt and http_req_rate (10 s).
TableDefinition Def(const std::string& name, uint64_t expire_ms = 0) {
  TableDefinition d;
  d.table_id = 99;  // ignored by Define
  d.name = name;
  d.key_type = KeyType::kString;
  d.key_size = 33;
  d.data_bitfield = Bit(DataType::kGpc0) | Bit(DataType::kHttpReqCnt) | Bit(DataType::kHttpReqRate);
  d.period_ms[static_cast<size_t>(DataType::kHttpReqRate)] = kPeriod;
  d.expire_ms = expire_ms;
  return d;
}

std::vector<DataValue> Values(uint64_t gpc0, uint64_t req, uint64_t tick = 0, uint64_t curr = 0,
                              uint64_t prev = 0) {
  return {Unsigned(DataType::kGpc0, gpc0), Unsigned(DataType::kHttpReqCnt, req),
          Freq(DataType::kHttpReqRate, kPeriod, tick, curr, prev)};
}

std::vector<std::string> Keys(const Decoded& d) {
  std::vector<std::string> keys;
  for (const auto& u : d.updates) keys.push_back(u.key);
  return keys;
}

std::vector<uint32_t> Ids(const Decoded& d) {
  std::vector<uint32_t> ids;
  for (const auto& u : d.updates) ids.push_back(u.id);
  return ids;
}

TEST(TaughtTablesTest, CollectEncodesDefineAndUpdates) {
  TaughtTables t({"/a.aggregate", "/q.quota"});
  EXPECT_TRUE(t.IsTaught("/q.quota"));
  EXPECT_FALSE(t.IsTaught("/q"));
  EXPECT_EQ(2u, t.table_count());
  ASSERT_TRUE(t.Define(Def("/q.quota", 3'600'000)));
  const int64_t now = NowUnixMs();
  t.Set("/q.quota", "k1", Values(5, 7, 100, 3, 4), std::nullopt, now - 10, now);
  // Computed 5 s ago: its expire shrinks and its rate's elapsed time grows by the wait.
  t.Set("/q.quota", "k2", Values(6, 8, 200, 30, 40), 60'000, now - 20, now - 5'000);
  EXPECT_EQ(2u, t.last_seq());

  FakePeer peer;
  TaughtTables::Collected c;
  Decoded d = peer.Pull(t, 1, std::numeric_limits<size_t>::max(), &c);
  const int64_t after = NowUnixMs();
  ASSERT_TRUE(d.ok) << d.error;
  ASSERT_EQ(1u, d.defines.size());
  const TableDefinition& def = d.defines[0];
  EXPECT_EQ(TaughtTables::WireId(1), def.table_id);
  EXPECT_EQ(2u, def.table_id);
  EXPECT_EQ("/q.quota", def.name);
  EXPECT_EQ(KeyType::kString, def.key_type);
  EXPECT_EQ(33u, def.key_size);
  EXPECT_EQ(Def("x").data_bitfield, def.data_bitfield);
  EXPECT_EQ(kPeriod, def.period_ms[static_cast<size_t>(DataType::kHttpReqRate)]);
  EXPECT_EQ(3'600'000u, def.expire_ms);

  ASSERT_EQ(2u, d.updates.size());
  const DecodedUpdate& u1 = d.updates[0];
  EXPECT_EQ(StickTableType::kUpdate, u1.type);
  EXPECT_EQ(2u, u1.table_id);
  EXPECT_EQ(1u, u1.id);
  EXPECT_FALSE(u1.expire_ms.has_value());
  EXPECT_EQ("k1", u1.key);
  EXPECT_EQ(5u, u1.U(DataType::kGpc0));
  EXPECT_EQ(7u, u1.U(DataType::kHttpReqCnt));
  auto r1 = u1.Value(DataType::kHttpReqRate);
  ASSERT_TRUE(r1.has_value());
  EXPECT_EQ(DataValue::Form::kFreq, r1->form);
  EXPECT_EQ(kPeriod, r1->freq.period_ms);
  EXPECT_GE(r1->freq.curr_tick, 100u);
  EXPECT_LE(r1->freq.curr_tick, 100u + static_cast<uint64_t>(after - now));
  EXPECT_EQ(3u, r1->freq.curr_ctr);
  EXPECT_EQ(4u, r1->freq.prev_ctr);

  const DecodedUpdate& u2 = d.updates[1];
  EXPECT_EQ(StickTableType::kUpdateTimed, u2.type);
  EXPECT_EQ(2u, u2.id);
  EXPECT_EQ("k2", u2.key);
  ASSERT_TRUE(u2.expire_ms.has_value());
  EXPECT_LE(*u2.expire_ms, 55'000u);
  EXPECT_GE(*u2.expire_ms, 55'000u - static_cast<uint32_t>(after - now));
  auto r2 = u2.Value(DataType::kHttpReqRate);
  ASSERT_TRUE(r2.has_value());
  EXPECT_GE(r2->freq.curr_tick, 5'200u);
  EXPECT_LE(r2->freq.curr_tick, 5'200u + static_cast<uint64_t>(after - now));
  EXPECT_EQ(30u, r2->freq.curr_ctr);
  EXPECT_EQ(40u, r2->freq.prev_ctr);

  // What was sent, with when its cause was received; the cursor is at the last one.
  ASSERT_EQ(2u, c.sent.size());
  EXPECT_EQ(std::make_pair(uint64_t{1}, now - 10), c.sent[0]);
  EXPECT_EQ(std::make_pair(uint64_t{2}, now - 20), c.sent[1]);
  EXPECT_EQ(2u, peer.cursor_for(1).sent);

  // Nothing new: nothing at all, not even the DEFINE again.
  std::string bytes;
  auto again = t.Collect(1, peer.cursor_for(1), 100, bytes);
  EXPECT_EQ(0u, again.messages);
  EXPECT_TRUE(bytes.empty());
}

TEST(TaughtTablesTest, ExpireNeverReachesZero) {
  TaughtTables t({"/q.quota"});
  ASSERT_TRUE(t.Define(Def("/q.quota", 10'000)));
  const int64_t now = NowUnixMs();
  // Waited longer than the life it was given: still sent timed, with the least life, 1 ms.
  t.Set("/q.quota", "old", Values(1, 1), 1'000, now, now - 5'000);
  FakePeer peer;
  Decoded d = peer.Pull(t, 0);
  ASSERT_TRUE(d.ok) << d.error;
  ASSERT_EQ(1u, d.updates.size());
  EXPECT_EQ(StickTableType::kUpdateTimed, d.updates[0].type);
  EXPECT_EQ(std::optional<uint32_t>(1), d.updates[0].expire_ms);
}

// The message of an entry is encoded once for every peer; each peer still gets the expire (and
// a frequency counter's tick) as of its own pull.
TEST(TaughtTablesTest, PeersPullingLaterGetTheExpireAndTickAsOfTheirPull) {
  TaughtTables t({"/q.quota", "/q.sum"});
  TableDefinition counters = Def("/q.quota", 60'000);
  counters.data_bitfield = Bit(DataType::kGpc0) | Bit(DataType::kHttpReqCnt);
  counters.period_ms = {};
  ASSERT_TRUE(t.Define(counters));
  ASSERT_TRUE(t.Define(Def("/q.sum", 60'000)));
  const int64_t now = NowUnixMs();
  t.Set("/q.quota", "k", {Unsigned(DataType::kGpc0, 5), Unsigned(DataType::kHttpReqCnt, 6)}, 50'000,
        now, now);
  t.Set("/q.sum", "k", Values(5, 6, 100, 7, 8), 50'000, now, now);
  FakePeer first, second;
  Decoded a = first.Pull(t, 0), a_sum = first.Pull(t, 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  Decoded b = second.Pull(t, 0), b_sum = second.Pull(t, 1);
  for (const Decoded* d : {&a, &b, &a_sum, &b_sum}) {
    ASSERT_TRUE(d->ok) << d->error;
    ASSERT_EQ(1u, d->updates.size());
    EXPECT_EQ(5u, d->updates[0].U(DataType::kGpc0));
    EXPECT_EQ(6u, d->updates[0].U(DataType::kHttpReqCnt));
    ASSERT_TRUE(d->updates[0].expire_ms.has_value());
    EXPECT_LE(*d->updates[0].expire_ms, 50'000u);
    EXPECT_GT(*d->updates[0].expire_ms, 50'000u - kSlackMs);
  }
  EXPECT_GE(*a.updates[0].expire_ms - *b.updates[0].expire_ms, 30u);
  EXPECT_GE(*a_sum.updates[0].expire_ms - *b_sum.updates[0].expire_ms, 30u);
  const auto tick = [](const Decoded& d) {
    return d.updates[0].Value(DataType::kHttpReqRate)->freq.curr_tick;
  };
  EXPECT_GE(tick(b_sum) - tick(a_sum), 30u);
  EXPECT_EQ(7u, b_sum.updates[0].Value(DataType::kHttpReqRate)->freq.curr_ctr);
}

// A producer's EntryRef finds its entry again without a lookup, and is found stale (looked up
// anew) once a redefinition dropped the entries it pointed at.
TEST(TaughtTablesTest, EntryRefsSetTheirEntryAgainAndSurviveARedefinition) {
  TaughtTables t({"/q.quota"});
  ASSERT_TRUE(t.Define(Def("/q.quota")));
  const int64_t now = NowUnixMs();
  TaughtTables::EntryRef ref_k1, ref_k2;
  std::vector<TaughtTables::Change> changes;
  const auto set = [&](uint64_t v1, uint64_t v2) {
    changes.push_back({"k1", Values(v1, v1), std::nullopt, now, &ref_k1});
    changes.push_back({"k2", Values(v2, v2), std::nullopt, now, &ref_k2});
    t.SetMany("/q.quota", changes, now);
    EXPECT_TRUE(changes.empty());
  };
  set(1, 2);
  set(3, 4);  // through the refs
  FakePeer peer;
  Decoded d = peer.Pull(t, 0);
  ASSERT_TRUE(d.ok) << d.error;
  EXPECT_EQ((std::vector<std::string>{"k1", "k2"}), Keys(d));
  EXPECT_EQ(3u, d.Last("k1")->U(DataType::kGpc0));
  EXPECT_EQ(4u, d.Last("k2")->U(DataType::kGpc0));

  // Another key type drops every entry: the refs point at nothing any more.
  TableDefinition other = Def("/q.quota");
  other.key_type = KeyType::kSignedInt;
  other.key_size = 4;
  ASSERT_TRUE(t.Define(other));
  TableDefinition back = Def("/q.quota");
  ASSERT_TRUE(t.Define(back));
  set(5, 6);
  d = peer.Pull(t, 0);
  ASSERT_TRUE(d.ok) << d.error;
  std::vector<std::string> keys = Keys(d);
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ((std::vector<std::string>{"k1", "k2"}), keys);
  EXPECT_EQ(5u, d.Last("k1")->U(DataType::kGpc0));
  EXPECT_EQ(6u, d.Last("k2")->U(DataType::kGpc0));
}

// Many Sets of few keys: what waits for a peer stays the latest value of each key, in the order
// of their last change, however often older values were replaced (and compacted away) between
// two pulls; a peer that fell behind resumes after its cursor.
TEST(TaughtTablesTest, ManyChangesOfFewKeysSendEachKeyOnceInOrderOfItsLastChange) {
  TaughtTables t({"/q.quota"});
  ASSERT_TRUE(t.Define(Def("/q.quota")));
  const int64_t now = NowUnixMs();
  FakePeer early, late;
  std::vector<TaughtTables::Change> changes;
  for (uint64_t round = 1; round <= 500; ++round) {
    for (const char* key : {"a", "b", "c"}) {
      changes.push_back(TaughtTables::Change{key, Values(round, round), std::nullopt, now});
    }
    t.SetMany("/q.quota", changes, now);
    EXPECT_TRUE(changes.empty());
    if (round == 100) {
      Decoded d = early.Pull(t, 0);
      ASSERT_TRUE(d.ok) << d.error;
      EXPECT_EQ((std::vector<std::string>{"a", "b", "c"}), Keys(d));
    }
  }
  t.Set("/q.quota", "a", Values(1000, 1000), std::nullopt, now, now);  // a last now
  for (FakePeer* peer : {&early, &late}) {
    EXPECT_TRUE(t.Behind(0, peer->cursor_for(0)));
    Decoded d = peer->Pull(t, 0);
    ASSERT_TRUE(d.ok) << d.error;
    ASSERT_EQ((std::vector<std::string>{"b", "c", "a"}), Keys(d));
    EXPECT_EQ(500u, d.updates[0].Value(DataType::kGpc0)->u);
    EXPECT_EQ(500u, d.updates[1].Value(DataType::kGpc0)->u);
    EXPECT_EQ(1000u, d.updates[2].Value(DataType::kGpc0)->u);
    // Update ids rise: HAProxy acknowledges the last one and we resume after it.
    EXPECT_LT(d.updates[0].id, d.updates[1].id);
    EXPECT_LT(d.updates[1].id, d.updates[2].id);
    EXPECT_EQ(t.last_seq(), d.updates[2].id);
    EXPECT_FALSE(t.Behind(0, peer->cursor_for(0)));
  }
}

TEST(TaughtTablesTest, IgnoresUnknownAndUndefinedTables) {
  TaughtTables t({"/q.quota", "/a.aggregate"});
  EXPECT_FALSE(t.Define(Def("/other")));
  const int64_t now = NowUnixMs();
  t.Set("/other", "k", Values(1, 1), std::nullopt, now, now);
  t.Set("/a.aggregate", "k", Values(1, 1), std::nullopt, now, now);  // not defined yet
  EXPECT_EQ(0u, t.last_seq());
  FakePeer peer;
  std::string bytes;
  EXPECT_EQ(0u, t.Collect(1, peer.cursor_for(1), 10, bytes).messages);
  EXPECT_TRUE(bytes.empty());
  EXPECT_FALSE(t.Behind(1, peer.cursor_for(1)));
}

TEST(TaughtTablesTest, SettingTwiceSendsOnlyTheLatestValueOnce) {
  TaughtTables t({"/q.quota"});
  ASSERT_TRUE(t.Define(Def("/q.quota")));
  const int64_t now = NowUnixMs();
  t.Set("/q.quota", "k1", Values(1, 1), std::nullopt, now, now);
  t.Set("/q.quota", "k2", Values(2, 2), std::nullopt, now, now);
  t.Set("/q.quota", "k1", Values(3, 3), std::nullopt, now, now);
  FakePeer peer;
  Decoded d = peer.Pull(t, 0);
  ASSERT_TRUE(d.ok) << d.error;
  EXPECT_EQ((std::vector<std::string>{"k2", "k1"}), Keys(d));
  EXPECT_EQ((std::vector<uint32_t>{2, 3}), Ids(d));
  EXPECT_EQ(3u, d.updates[1].U(DataType::kGpc0));
  EXPECT_EQ(3u, d.updates[1].U(DataType::kHttpReqCnt));

  // Sent already: setting it again sends it again, once, with the next id.
  t.Set("/q.quota", "k1", Values(4, 4), std::nullopt, now, now);
  t.Set("/q.quota", "k1", Values(5, 5), std::nullopt, now, now);
  d = peer.Pull(t, 0);
  ASSERT_TRUE(d.ok) << d.error;
  EXPECT_TRUE(d.defines.empty());
  ASSERT_EQ(1u, d.updates.size());
  EXPECT_EQ(5u, d.updates[0].id);
  EXPECT_EQ(5u, d.updates[0].U(DataType::kGpc0));
}

// Updates apply to the table the stream selected last: going back to a table after another
// one's updates selects it again (a DEFINE, as HAProxy sends at every change of table), or the
// peer would store the first table's updates into the second.
TEST(TaughtTablesTest, EveryChangeOfTableOnTheStreamSelectsTheTableAgain) {
  TaughtTables t({"/a.quota", "/b.quota"});
  ASSERT_TRUE(t.Define(Def("/a.quota")));
  ASSERT_TRUE(t.Define(Def("/b.quota")));
  const int64_t now = NowUnixMs();
  FakePeer peer;
  for (int round = 0; round < 3; ++round) {
    const std::string k = "k" + std::to_string(round);
    t.Set("/a.quota", k, Values(1, 1), std::nullopt, now, now);
    t.Set("/b.quota", k, Values(2, 2), std::nullopt, now, now);
    for (size_t index : {0, 1}) {
      Decoded d = peer.Pull(t, index);
      ASSERT_TRUE(d.ok) << d.error;
      ASSERT_EQ(1u, d.updates.size());
      EXPECT_EQ(index == 0 ? "/a.quota" : "/b.quota", d.updates[0].table) << "round " << round;
      EXPECT_EQ(1u, d.defines.size()) << "the table is selected again in round " << round;
    }
  }
}

TEST(TaughtTablesTest, CursorsAreIndependentAndResumeAfterSent) {
  TaughtTables t({"/q.quota"});
  ASSERT_TRUE(t.Define(Def("/q.quota")));
  const int64_t now = NowUnixMs();
  t.Set("/q.quota", "k1", Values(1, 1), std::nullopt, now, now);
  t.Set("/q.quota", "k2", Values(2, 2), std::nullopt, now, now);
  FakePeer a;
  Decoded d = a.Pull(t, 0);
  ASSERT_TRUE(d.ok) << d.error;
  EXPECT_EQ((std::vector<uint32_t>{1, 2}), Ids(d));

  t.Set("/q.quota", "k3", Values(3, 3), std::nullopt, now, now);
  // A second peer that had acknowledged up to 2 of this definition (a reconnection): the DEFINE
  // and only what came after.
  FakePeer b;
  b.cursor_for(0).sent = 2;
  b.cursor_for(0).sent_version = a.cursor_for(0).sent_version;
  d = b.Pull(t, 0);
  ASSERT_TRUE(d.ok) << d.error;
  EXPECT_EQ(1u, d.defines.size());
  EXPECT_EQ((std::vector<std::string>{"k3"}), Keys(d));
  EXPECT_EQ((std::vector<uint32_t>{3}), Ids(d));

  // The first peer only gets the new entry, without a DEFINE.
  d = a.Pull(t, 0);
  ASSERT_TRUE(d.ok) << d.error;
  EXPECT_TRUE(d.defines.empty());
  EXPECT_EQ((std::vector<uint32_t>{3}), Ids(d));

  // A third peer from scratch gets all of it.
  FakePeer c;
  d = c.Pull(t, 0);
  ASSERT_TRUE(d.ok) << d.error;
  EXPECT_EQ(1u, d.defines.size());
  EXPECT_EQ((std::vector<std::string>{"k1", "k2", "k3"}), Keys(d));

  // A reconnection of the first peer resuming at what it had: nothing to send, not even the
  // DEFINE; the DEFINE comes with the next change.
  a.Reconnect();
  std::string bytes;
  EXPECT_EQ(0u, t.Collect(0, a.cursor_for(0), 100, bytes).messages);
  EXPECT_TRUE(bytes.empty());
  t.Set("/q.quota", "k1", Values(9, 9), std::nullopt, now, now);
  d = a.Pull(t, 0);
  ASSERT_TRUE(d.ok) << d.error;
  EXPECT_EQ(1u, d.defines.size());
  EXPECT_EQ((std::vector<uint32_t>{4}), Ids(d));
}

TEST(TaughtTablesTest, RedefinitionWithSameLayoutKeepsCursors) {
  TaughtTables t({"/q.quota"});
  int published = 0;
  t.AddListener([&] { ++published; });
  ASSERT_TRUE(t.Define(Def("/q.quota", 1'000)));
  EXPECT_EQ(1, published);
  const int64_t now = NowUnixMs();
  t.Set("/q.quota", "k1", Values(1, 1), std::nullopt, now, now);
  FakePeer peer;
  ASSERT_EQ(1u, peer.Pull(t, 0).updates.size());
  ASSERT_TRUE(t.Define(Def("/q.quota", 1'000)));
  EXPECT_EQ(1, published);  // nothing changed, nothing to publish
  EXPECT_FALSE(t.Behind(0, peer.cursor_for(0)));
  std::string bytes;
  EXPECT_EQ(0u, t.Collect(0, peer.cursor_for(0), 100, bytes).messages);
  EXPECT_TRUE(bytes.empty());
}

TEST(TaughtTablesTest, RedefinitionWithNewLayoutResendsEverything) {
  TaughtTables t({"/q.quota"});
  ASSERT_TRUE(t.Define(Def("/q.quota", 1'000)));
  const int64_t now = NowUnixMs();
  t.Set("/q.quota", "k1", Values(1, 1), std::nullopt, now, now);
  t.Set("/q.quota", "k2", Values(2, 2), std::nullopt, now, now);
  FakePeer peer;
  ASSERT_EQ(2u, peer.Pull(t, 0).updates.size());

  // A new expire, same stored types: the new DEFINE and every entry again, values kept.
  int published = 0;
  t.AddListener([&] { ++published; });
  ASSERT_TRUE(t.Define(Def("/q.quota", 2'000)));
  EXPECT_EQ(1, published);
  EXPECT_TRUE(t.Behind(0, peer.cursor_for(0)));
  Decoded d = peer.Pull(t, 0);
  ASSERT_TRUE(d.ok) << d.error;
  ASSERT_EQ(1u, d.defines.size());
  EXPECT_EQ(2'000u, d.defines[0].expire_ms);
  std::vector<std::string> keys = Keys(d);
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ((std::vector<std::string>{"k1", "k2"}), keys);
  EXPECT_EQ((std::vector<uint32_t>{3, 4}), Ids(d));
  EXPECT_EQ(2u, d.Last("k2")->U(DataType::kGpc0));

  // Other stored types: the values no longer fit, the entries are dropped.
  TableDefinition other = Def("/q.quota", 2'000);
  other.data_bitfield = Bit(DataType::kGpt0) | Bit(DataType::kGpc0);
  other.period_ms = {};
  ASSERT_TRUE(t.Define(other));
  EXPECT_FALSE(t.Behind(0, peer.cursor_for(0)));
  t.Set("/q.quota", "k3", {Unsigned(DataType::kGpt0, 1), Unsigned(DataType::kGpc0, 77)},
        std::nullopt, now, now);
  d = peer.Pull(t, 0);
  ASSERT_TRUE(d.ok) << d.error;
  ASSERT_EQ(1u, d.defines.size());
  EXPECT_EQ(other.data_bitfield, d.defines[0].data_bitfield);
  EXPECT_EQ((std::vector<std::string>{"k3"}), Keys(d));
  EXPECT_EQ(1u, d.updates[0].U(DataType::kGpt0));
  EXPECT_EQ(77u, d.updates[0].U(DataType::kGpc0));
}

TEST(TaughtTablesTest, RedefinitionWithAnotherKeyTypeSendsNoKeyOfTheOldType) {
  // The source table's keys changed type (string -> ipv4) while the stored types did not. Keys
  // set for the old definition are not keys of the new one: sent after the new DEFINE they
  // would not even decode (HAProxy would close the connection as malformed).
  TaughtTables t({"/q.quota"});
  ASSERT_TRUE(t.Define(Def("/q.quota")));
  const int64_t now = NowUnixMs();
  t.Set("/q.quota", "customer-1", Values(1, 1), std::nullopt, now, now);
  FakePeer peer;
  ASSERT_EQ(1u, peer.Pull(t, 0).updates.size());

  TableDefinition ipv4 = Def("/q.quota");
  ipv4.key_type = KeyType::kIpv4;
  ipv4.key_size = 4;
  ASSERT_TRUE(t.Define(ipv4));
  auto key = ParseKey(KeyType::kIpv4, 4, "10.0.0.1");
  ASSERT_TRUE(key.ok());
  t.Set("/q.quota", *key, Values(2, 2), std::nullopt, now, now);
  Decoded d = peer.Pull(t, 0);
  ASSERT_TRUE(d.ok) << d.error;
  ASSERT_EQ(1u, d.defines.size());
  EXPECT_EQ(KeyType::kIpv4, d.defines[0].key_type);
  EXPECT_EQ((std::vector<std::string>{"10.0.0.1"}), Keys(d));
}

TEST(TaughtTablesTest, StringKeysSurviveALongerKeyButNotAShorterOne) {
  TaughtTables t({"/q.quota"});
  ASSERT_TRUE(t.Define(Def("/q.quota")));  // len 32
  const int64_t now = NowUnixMs();
  const std::string long_key(32, 'k');
  t.Set("/q.quota", long_key, Values(1, 1), std::nullopt, now, now);
  FakePeer peer;
  ASSERT_EQ(1u, peer.Pull(t, 0).updates.size());
  TableDefinition longer = Def("/q.quota");
  longer.key_size = 65;
  ASSERT_TRUE(t.Define(longer));
  Decoded d = peer.Pull(t, 0);
  ASSERT_TRUE(d.ok) << d.error;
  ASSERT_EQ(1u, d.defines.size());
  EXPECT_EQ(65u, d.defines[0].key_size);
  EXPECT_EQ((std::vector<std::string>{long_key}), Keys(d));
  TableDefinition shorter = Def("/q.quota");
  shorter.key_size = 9;
  ASSERT_TRUE(t.Define(shorter));
  EXPECT_FALSE(t.Behind(0, peer.cursor_for(0)));
}

TEST(TaughtTablesTest, BehindHonoursUpto) {
  TaughtTables t({"/a.aggregate", "/q.quota"});
  ASSERT_TRUE(t.Define(Def("/q.quota")));
  ASSERT_TRUE(t.Define(Def("/a.aggregate")));
  const int64_t now = NowUnixMs();
  t.Set("/q.quota", "k1", Values(1, 1), std::nullopt, now, now);     // seq 1
  t.Set("/a.aggregate", "x", Values(1, 1), std::nullopt, now, now);  // seq 2
  t.Set("/q.quota", "k2", Values(2, 2), std::nullopt, now, now);     // seq 3
  FakePeer peer;
  EXPECT_TRUE(t.Behind(1, peer.cursor_for(1)));
  EXPECT_FALSE(t.Behind(1, peer.cursor_for(1), 0));
  EXPECT_TRUE(t.Behind(1, peer.cursor_for(1), 1));
  Decoded d = peer.Pull(t, 1, 1);
  ASSERT_TRUE(d.ok) << d.error;
  EXPECT_EQ((std::vector<uint32_t>{1}), Ids(d));
  EXPECT_FALSE(t.Behind(1, peer.cursor_for(1), 1));
  EXPECT_FALSE(t.Behind(1, peer.cursor_for(1), 2));  // 2 is the other table's
  EXPECT_TRUE(t.Behind(1, peer.cursor_for(1), 3));
  EXPECT_TRUE(t.Behind(1, peer.cursor_for(1)));
  EXPECT_TRUE(t.Behind(0, peer.cursor_for(0), 2));
  EXPECT_FALSE(t.Behind(0, peer.cursor_for(0), 1));
  d = peer.Pull(t, 1);
  EXPECT_EQ((std::vector<uint32_t>{3}), Ids(d));
  EXPECT_FALSE(t.Behind(1, peer.cursor_for(1)));
  // The other table's ids are its own sequence numbers: 2, not 1.
  d = peer.Pull(t, 0);
  ASSERT_TRUE(d.ok) << d.error;
  EXPECT_EQ(1u, d.defines[0].table_id);
  EXPECT_EQ((std::vector<uint32_t>{2}), Ids(d));
}

TEST(TaughtTablesTest, MaxMessagesBoundsEachCollect) {
  TaughtTables t({"/q.quota"});
  ASSERT_TRUE(t.Define(Def("/q.quota")));
  const int64_t now = NowUnixMs();
  for (int i = 1; i <= 5; ++i) {
    t.Set("/q.quota", "k" + std::to_string(i), Values(i, i), std::nullopt, now, now);
  }
  FakePeer peer;
  Decoded d = peer.Pull(t, 0, 2);
  ASSERT_TRUE(d.ok) << d.error;
  EXPECT_EQ(1u, d.defines.size());
  EXPECT_EQ((std::vector<uint32_t>{1, 2}), Ids(d));
  d = peer.Pull(t, 0, 2);
  ASSERT_TRUE(d.ok) << d.error;
  EXPECT_TRUE(d.defines.empty());
  EXPECT_EQ((std::vector<uint32_t>{3, 4}), Ids(d));
  EXPECT_TRUE(t.Behind(0, peer.cursor_for(0)));
  d = peer.Pull(t, 0, 2);
  EXPECT_EQ((std::vector<uint32_t>{5}), Ids(d));
  EXPECT_FALSE(t.Behind(0, peer.cursor_for(0)));
  d = peer.Pull(t, 0, 2);
  EXPECT_TRUE(d.updates.empty());
}

TEST(TaughtTablesTest, TouchAllSendsEveryEntryAgain) {
  TaughtTables t({"/a.aggregate", "/q.quota"});
  ASSERT_TRUE(t.Define(Def("/q.quota")));
  const int64_t now = NowUnixMs();
  t.Set("/q.quota", "k1", Values(1, 1), std::nullopt, now - 50, now);
  t.Set("/q.quota", "k2", Values(2, 2), std::nullopt, now - 60, now);
  FakePeer peer;
  ASSERT_EQ(2u, peer.Pull(t, 1).updates.size());
  int published = 0;
  t.AddListener([&] { ++published; });
  t.TouchAll(0);
  EXPECT_EQ(1, published);
  TaughtTables::Collected c;
  Decoded d = peer.Pull(t, 1, 100, &c);
  ASSERT_TRUE(d.ok) << d.error;
  EXPECT_EQ(2u, d.updates.size());
  EXPECT_EQ(2u, d.Last("k2")->U(DataType::kGpc0));
  for (const auto& [seq, origin] : c.sent) EXPECT_EQ(0, origin);
  EXPECT_EQ(4u, t.last_seq());
}

TEST(TaughtTablesTest, ListenersRunOnPublishUntilRemoved) {
  TaughtTables t({"/q.quota"});
  int a = 0, b = 0;
  const uint64_t ha = t.AddListener([&] { ++a; });
  const uint64_t hb = t.AddListener([&] { ++b; });
  EXPECT_NE(ha, hb);
  t.Publish();
  EXPECT_EQ(1, a);
  EXPECT_EQ(1, b);
  ASSERT_TRUE(t.Define(Def("/q.quota")));  // a new definition publishes itself
  EXPECT_EQ(2, a);
  const int64_t now = NowUnixMs();
  t.Set("/q.quota", "k1", Values(1, 1), std::nullopt, now, now);  // waits for Publish
  EXPECT_EQ(2, a);
  t.RemoveListener(ha);
  t.Publish();
  EXPECT_EQ(2, a);
  EXPECT_EQ(3, b);
  t.RemoveListener(ha);  // twice: harmless
  t.RemoveListener(hb);
  t.Publish();
  EXPECT_EQ(3, b);
}

TEST(TaughtTablesTest, UnwrapRecoversTheSequenceAcrossTheWrap) {
  constexpr uint64_t k32 = uint64_t{1} << 32;
  EXPECT_EQ(5u, TaughtTables::Unwrap(5, 5));
  EXPECT_EQ(3u, TaughtTables::Unwrap(5, 3));
  EXPECT_EQ(k32 - 1, TaughtTables::Unwrap(k32 - 1, 0xffffffffu));
  EXPECT_EQ(k32, TaughtTables::Unwrap(k32, 0));
  EXPECT_EQ(k32 - 1, TaughtTables::Unwrap(k32, 0xffffffffu));
  EXPECT_EQ(k32 - 2, TaughtTables::Unwrap(k32 + 5, 0xfffffffeu));
  EXPECT_EQ(k32 + 3, TaughtTables::Unwrap(k32 + 5, 3));
  EXPECT_EQ(5 * k32 + 7, TaughtTables::Unwrap(5 * k32 + 9, 7));
  EXPECT_EQ(5 * k32 - 1, TaughtTables::Unwrap(5 * k32 + 9, 0xffffffffu));
  // Any acknowledged number less than 2^32 behind the last sent maps back to itself.
  std::mt19937_64 rng(42);
  for (int i = 0; i < 100'000; ++i) {
    const uint64_t last = rng() >> (rng() % 40);
    const uint64_t back = std::min<uint64_t>(last, rng() % k32);
    const uint64_t acked = last - back;
    ASSERT_EQ(acked, TaughtTables::Unwrap(last, static_cast<uint32_t>(acked)))
        << "last=" << last << " back=" << back;
  }
}

// An id never sent on the cursor (ahead of the last number sent, while fewer than 2^32 were
// sent) is no acknowledgement: it once wrapped to ~2^64, and the cursor, kept per peer across
// connections, then sent nothing more.
TEST(TaughtTablesTest, UnwrapRefusesAnIdNeverSent) {
  constexpr uint64_t k32 = uint64_t{1} << 32;
  EXPECT_EQ(std::nullopt, TaughtTables::Unwrap(0, 1));
  EXPECT_EQ(std::nullopt, TaughtTables::Unwrap(5, 6));
  EXPECT_EQ(std::nullopt, TaughtTables::Unwrap(5, 0xffffffffu));
  EXPECT_EQ(std::nullopt, TaughtTables::Unwrap(k32 - 2, 0xffffffffu));
  EXPECT_EQ(std::optional<uint64_t>(0), TaughtTables::Unwrap(0, 0));
  EXPECT_EQ(std::optional<uint64_t>(k32 - 1), TaughtTables::Unwrap(2 * k32 - 2, 0xffffffffu));
}

// ---- ParseKey, the inverse of FormatKey. ----

std::string Format(KeyType type, const std::string& bytes) {
  return FormatKey(
      type, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

// The bytes as hex, or "error" for a rejection.
std::string ParseHex(KeyType type, uint64_t key_size, std::string_view text) {
  auto r = ParseKey(type, key_size, text);
  if (!r.ok()) {
    EXPECT_EQ(Status::Code::kInvalidArgument, r.status().code()) << text;
    return "error";
  }
  return Hex(*r);
}

TEST(ParseKeyTest, StringIsCutToItsConfiguredLength) {
  EXPECT_EQ(Hex("abc"), ParseHex(KeyType::kString, 33, "abc"));
  EXPECT_EQ("", ParseHex(KeyType::kString, 33, ""));
  // key_size is the configured len + 1: at most key_size - 1 bytes.
  EXPECT_EQ(Hex("abcd"), ParseHex(KeyType::kString, 5, "abcdefg"));
  EXPECT_EQ(Hex("abcd"), ParseHex(KeyType::kString, 5, "abcd"));
  const std::string long_key(100, 'x');
  auto r = ParseKey(KeyType::kString, 65, long_key);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(64u, r->size());
  for (std::string text : {"customer-1", "a b/c?d=e", "\xc3\xa9t\xc3\xa9", "k"}) {
    auto p = ParseKey(KeyType::kString, 33, text);
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(text, Format(KeyType::kString, *p));
  }
}

TEST(ParseKeyTest, IntegerIsABigEndianUnsigned32) {
  EXPECT_EQ("00000000", ParseHex(KeyType::kSignedInt, 4, "0"));
  EXPECT_EQ("0000002a", ParseHex(KeyType::kSignedInt, 4, "42"));
  EXPECT_EQ("ffffffff", ParseHex(KeyType::kSignedInt, 4, "4294967295"));
  EXPECT_EQ("0000002a", ParseHex(KeyType::kSignedInt, 4, "0000000042"));
  for (std::string_view bad : {"4294967296", "9999999999", "99999999999", "-1", "+1", "", " 1",
                               "1 ", "12a", "0x10", "1.5"}) {
    EXPECT_EQ("error", ParseHex(KeyType::kSignedInt, 4, bad)) << bad;
  }
  for (std::string text : {"0", "1", "42", "65535", "2147483648", "4294967295"}) {
    auto p = ParseKey(KeyType::kSignedInt, 4, text);
    ASSERT_TRUE(p.ok()) << text;
    EXPECT_EQ(text, Format(KeyType::kSignedInt, *p));
  }
}

TEST(ParseKeyTest, Ipv4IsDotted) {
  EXPECT_EQ("0a000001", ParseHex(KeyType::kIpv4, 4, "10.0.0.1"));
  EXPECT_EQ("ffffffff", ParseHex(KeyType::kIpv4, 4, "255.255.255.255"));
  for (std::string_view bad :
       {"256.0.0.1", "1.2.3", "1.2.3.4.5", "::1", "", "a.b.c.d", "1.2.3.4 ", "1.2.3.4/8"}) {
    EXPECT_EQ("error", ParseHex(KeyType::kIpv4, 4, bad)) << bad;
  }
  for (std::string text : {"0.0.0.0", "127.0.0.1", "192.168.10.200", "255.255.255.255"}) {
    auto p = ParseKey(KeyType::kIpv4, 4, text);
    ASSERT_TRUE(p.ok()) << text;
    EXPECT_EQ(text, Format(KeyType::kIpv4, *p));
  }
}

TEST(ParseKeyTest, Ipv6IncludingIpv4Mapped) {
  EXPECT_EQ("00000000000000000000000000000001", ParseHex(KeyType::kIpv6, 16, "::1"));
  EXPECT_EQ("00000000000000000000000000000000", ParseHex(KeyType::kIpv6, 16, "::"));
  EXPECT_EQ("00000000000000000000ffff0a010203", ParseHex(KeyType::kIpv6, 16, "::ffff:10.1.2.3"));
  EXPECT_EQ("20010db8000000000000000000000001", ParseHex(KeyType::kIpv6, 16, "2001:DB8::1"));
  for (std::string_view bad :
       {"1.2.3.4", "2001:db8:::1", "12345::", "", "g::1", "::1 ", "1:2:3:4:5:6:7:8:9"}) {
    EXPECT_EQ("error", ParseHex(KeyType::kIpv6, 16, bad)) << bad;
  }
  for (std::string text :
       {"::", "::1", "2001:db8::1", "fe80::1:2", "2001:db8:0:1:1:1:1:1", "::ffff:10.1.2.3",
        "::ffff:255.255.255.255", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}) {
    auto p = ParseKey(KeyType::kIpv6, 16, text);
    ASSERT_TRUE(p.ok()) << text;
    EXPECT_EQ(16u, p->size());
    EXPECT_EQ(text, Format(KeyType::kIpv6, *p));
  }
  // Not in RFC 5952 form: the same address, rendered canonically.
  auto p = ParseKey(KeyType::kIpv6, 16, "2001:0DB8:0000:0000:0000:0000:0000:0001");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ("2001:db8::1", Format(KeyType::kIpv6, *p));
}

TEST(ParseKeyTest, BinaryIsHexPaddedToKeySize) {
  EXPECT_EQ("abcd0000", ParseHex(KeyType::kBinary, 4, "abcd"));
  EXPECT_EQ("abcd0000", ParseHex(KeyType::kBinary, 4, "ABCD"));
  EXPECT_EQ("00000000", ParseHex(KeyType::kBinary, 4, ""));
  EXPECT_EQ("01020304", ParseHex(KeyType::kBinary, 4, "01020304"));
  for (std::string_view bad : {"abc", "0102030405", "zz", "0g", " 01", "0x01"}) {
    EXPECT_EQ("error", ParseHex(KeyType::kBinary, 4, bad)) << bad;
  }
  for (std::string text : {"00000000", "deadbeef", "0102030400000000"}) {
    auto p = ParseKey(KeyType::kBinary, text.size() / 2, text);
    ASSERT_TRUE(p.ok()) << text;
    EXPECT_EQ(text, Format(KeyType::kBinary, *p));
  }
  auto p = ParseKey(KeyType::kBinary, 8, "cafe");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ("cafe000000000000", Format(KeyType::kBinary, *p));
}

TEST(ParseKeyTest, NamesOfKeyAndDataTypesRoundTrip) {
  for (KeyType t :
       {KeyType::kSignedInt, KeyType::kIpv4, KeyType::kIpv6, KeyType::kString, KeyType::kBinary}) {
    EXPECT_EQ(std::optional<KeyType>(t), KeyTypeByName(KeyTypeName(t))) << KeyTypeName(t);
  }
  EXPECT_EQ(std::optional<KeyType>(KeyType::kSignedInt), KeyTypeByName("integer"));
  EXPECT_FALSE(KeyTypeByName("int").has_value());
  EXPECT_FALSE(KeyTypeByName("").has_value());
  for (int i = 0; i < kDataTypeCount; ++i) {
    const auto t = static_cast<DataType>(i);
    EXPECT_EQ(std::optional<DataType>(t), DataTypeByName(DataTypeName(t))) << DataTypeName(t);
  }
  EXPECT_EQ(std::optional<DataType>(DataType::kGpc), DataTypeByName("gpc"));
  EXPECT_EQ(std::optional<DataType>(DataType::kHttpReqRate), DataTypeByName("http_req_rate"));
  EXPECT_FALSE(DataTypeByName("gpc.1").has_value());
  EXPECT_FALSE(DataTypeByName("GPC0").has_value());
}

}  // namespace
}  // namespace stickmeter::ingest
