// Aggregator: per key, the sums over every node of a source table's counters, conn_cur and
// rates, flushed into a real TaughtTables and decoded from what a peer's cursor collects.
#include "teach/aggregator.h"

#include <gtest/gtest.h>

#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/time.h"
#include "ingest/taught_tables.h"
#include "teach/rate_sum.h"
#include "tests/ingest/taught_peer.h"

namespace stickmeter::teach {
namespace {

using ingest::DataType;
using ingest::MetricKind;
using ingest::testing::Decoded;
using ingest::testing::DecodedUpdate;
using ingest::testing::FakePeer;

constexpr uint64_t kMax32 = std::numeric_limits<uint32_t>::max();
constexpr uint64_t kMax64 = std::numeric_limits<uint64_t>::max();
constexpr uint32_t kPeriod = 10'000;
constexpr uint64_t kExpire = 10'000;

// "/a" as HAProxy announces it: string keys, gpt0 (not summed), gpc0, conn_cur, http_req_cnt,
// http_req_rate(10s), bytes_out_cnt; in bit order.
ingest::TableInfo Info(uint64_t expire_ms = kExpire) {
  ingest::TableInfo t;
  t.name = "/a";
  t.key_type = "string";
  t.key_size = 33;
  t.expire_ms = expire_ms;
  t.data_types = {"gpt0", "gpc0", "conn_cur", "http_req_cnt", "http_req_rate", "bytes_out_cnt"};
  t.periods_ms = {0, 0, 0, 0, kPeriod, 0};
  t.array_sizes = {0, 0, 0, 0, 0, 0};
  return t;
}

struct Node {
  uint64_t gpt0 = 0, gpc0 = 0, conn_cur = 0, req = 0, bytes_out = 0;
  uint32_t elapsed = 0;
  uint64_t curr = 0, prev = 0;
};

ingest::EntryUpdate Update(const std::string& key, int64_t received_ms, const Node& n) {
  ingest::EntryUpdate u;
  u.key = key;
  u.received_ms = received_ms;
  u.values = {{"gpt0", MetricKind::kGauge, n.gpt0},
              {"gpc0", MetricKind::kCounter32, n.gpc0},
              {"conn_cur", MetricKind::kGauge, n.conn_cur},
              {"http_req_cnt", MetricKind::kCounter32, n.req},
              {"http_req_rate", MetricKind::kGauge, 12345},  // the reading; the raw rate counts
              {"bytes_out_cnt", MetricKind::kCounter64, n.bytes_out}};
  u.rates = {{"http_req_rate", kPeriod, n.elapsed, n.curr, n.prev}};
  return u;
}

FreqSample Sample(int64_t received_ms, const Node& n) {
  return FreqSample{kPeriod, received_ms, n.elapsed, n.curr, n.prev};
}

class AggregatorTest : public ::testing::Test {
 protected:
  AggregatorTest() : taught_({"/a.aggregate"}), agg_("/a", "/a.aggregate") {}

  void Apply(const std::string& source, const std::string& key, int64_t t, const Node& n,
             const ingest::TableInfo& info = Info()) {
    if (auto def = agg_.Layout(std::make_shared<const ingest::TableInfo>(info), t)) {
      ASSERT_TRUE(taught_.Define(*def));
      ++defines_;
    }
    // Keys carry ids as the store gives them: one per key, from 1.
    auto [id, fresh] = ids_.try_emplace(key, static_cast<uint32_t>(ids_.size() + 1));
    agg_.Apply(source, Update(key, t, n), with_ids_ ? id->second : 0);
  }
  Decoded Pull() {
    Decoded d = peer_.Pull(taught_, 0);
    EXPECT_TRUE(d.ok) << d.error;
    return d;
  }

  ingest::TaughtTables taught_;
  Aggregator agg_;
  FakePeer peer_;
  int defines_ = 0;
  std::map<std::string, uint32_t> ids_;
  bool with_ids_ = true;
};

TEST_F(AggregatorTest, SumsEveryNodeWithSaturation) {
  const int64_t now = NowUnixMs();
  Node n1{1, 3'000'000'000, 2, 10, uint64_t{1} << 63, 2'000, 30, 50};
  Node n2{0, 2'000'000'000, 3, 5, (uint64_t{1} << 63) + 5, 7'000, 10, 20};
  Apply("lb1", "k", now - 3'000, n1);
  Apply("lb2", "k", now - 1'000, n2);
  EXPECT_EQ(1, defines_);  // the layout once
  EXPECT_EQ(1u, agg_.keys());
  EXPECT_EQ(1u, agg_.Flush(now, taught_));
  Decoded d = Pull();
  const int64_t after = NowUnixMs();

  ASSERT_EQ(1u, d.defines.size());
  const auto& def = d.defines[0];
  EXPECT_EQ("/a.aggregate", def.name);
  EXPECT_EQ(33u, def.key_size);
  EXPECT_EQ(kExpire, def.expire_ms);
  const uint64_t want_bits = (uint64_t{1} << 2) | (uint64_t{1} << 6) | (uint64_t{1} << 9) |
                             (uint64_t{1} << 10) | (uint64_t{1} << 15);
  EXPECT_EQ(want_bits, def.data_bitfield);  // gpt0 is not summed
  EXPECT_EQ(kPeriod, def.period_ms[10]);

  ASSERT_EQ(1u, d.updates.size());
  const DecodedUpdate& u = d.updates[0];
  EXPECT_EQ("k", u.key);
  EXPECT_EQ(kMax32, u.U(DataType::kGpc0));  // 5e9 saturates at 2^32 - 1
  EXPECT_EQ(5u, u.U(DataType::kConnCur));
  EXPECT_EQ(15u, u.U(DataType::kHttpReqCnt));
  EXPECT_EQ(kMax64, u.U(DataType::kBytesOutCnt));  // 64-bit counters saturate at 2^64 - 1
  EXPECT_FALSE(u.Value(DataType::kGpt0).has_value());

  // The rate: what SumRates makes of both nodes' counters, aged by the wait until collected.
  const std::vector<FreqSample> samples = {Sample(now - 3'000, n1), Sample(now - 1'000, n2)};
  const TaughtFreq want = SumRates(samples, kPeriod, now);
  auto rate = u.Value(DataType::kHttpReqRate);
  ASSERT_TRUE(rate.has_value());
  EXPECT_EQ(kPeriod, rate->freq.period_ms);
  EXPECT_EQ(want.counter.curr_ctr, rate->freq.curr_ctr);
  EXPECT_EQ(want.counter.prev_ctr, rate->freq.prev_ctr);
  EXPECT_GE(rate->freq.curr_tick, want.counter.curr_tick);
  EXPECT_LE(rate->freq.curr_tick, want.counter.curr_tick + static_cast<uint64_t>(after - now));
  // Read by a node now, it is the sum of both nodes' readings.
  const FreqSample node{kPeriod, now, static_cast<uint32_t>(want.counter.curr_tick),
                        want.counter.curr_ctr, want.counter.prev_ctr};
  EXPECT_EQ(ReadingAt(samples[0], now) + ReadingAt(samples[1], now), ReadingAt(node, now));

  // Expire: the latest node's entry lives 10 s after its update, 1 s ago: 9 s left.
  EXPECT_EQ(ingest::StickTableType::kUpdateTimed, u.type);
  ASSERT_TRUE(u.expire_ms.has_value());
  EXPECT_LE(*u.expire_ms, 9'000u);
  EXPECT_GE(*u.expire_ms, 9'000u - static_cast<uint32_t>(after - now));

  // Nothing changed: nothing taught until the rate changes slope.
  EXPECT_EQ(0u, agg_.Flush(now + 1, taught_));
  ASSERT_NE(kNever, want.valid_until_ms);
  EXPECT_EQ(0u, agg_.Flush(want.valid_until_ms - 1, taught_));
  EXPECT_EQ(1u, agg_.Flush(want.valid_until_ms, taught_));
}

TEST_F(AggregatorTest, LatestValuesOfANodeReplaceItsEarlierOnes) {
  const int64_t now = NowUnixMs();
  Apply("lb1", "k", now - 100, Node{0, 10, 1, 10});
  Apply("lb2", "k", now - 100, Node{0, 20, 1, 20});
  Apply("lb1", "k", now - 50, Node{0, 11, 0, 12});
  EXPECT_EQ(1u, agg_.Flush(now, taught_));
  Decoded d = Pull();
  ASSERT_EQ(1u, d.updates.size());
  EXPECT_EQ(31u, d.updates[0].U(DataType::kGpc0));
  EXPECT_EQ(1u, d.updates[0].U(DataType::kConnCur));
  EXPECT_EQ(32u, d.updates[0].U(DataType::kHttpReqCnt));
}

TEST_F(AggregatorTest, RestartedNodeNoLongerContributes) {
  const int64_t now = NowUnixMs();
  Apply("lb1", "k", now - 100, Node{0, 10, 4, 100});
  Apply("lb2", "k", now - 100, Node{0, 20, 1, 200});
  Apply("lb1", "other", now - 100, Node{0, 7, 0, 7});
  EXPECT_EQ(2u, agg_.Flush(now, taught_));
  Pull();
  agg_.RestartSource("lb1");
  // Both keys change: k loses lb1's share; "other" has no node left but stays until it expires.
  EXPECT_EQ(2u, agg_.Flush(now + 1, taught_));
  Decoded d = Pull();
  ASSERT_EQ(2u, d.updates.size());
  const DecodedUpdate* k = d.Last("k");
  ASSERT_NE(nullptr, k);
  EXPECT_EQ(20u, k->U(DataType::kGpc0));
  EXPECT_EQ(1u, k->U(DataType::kConnCur));
  EXPECT_EQ(200u, k->U(DataType::kHttpReqCnt));
  const DecodedUpdate* other = d.Last("other");
  ASSERT_NE(nullptr, other);
  EXPECT_EQ(0u, other->U(DataType::kGpc0));
  // A restart of a node that contributes nothing changes nothing.
  agg_.RestartSource("lb3");
  EXPECT_EQ(0u, agg_.Flush(now + 2, taught_));
}

TEST_F(AggregatorTest, ExpiredContributionsEndAndAKeyWithNoneIsForgotten) {
  const int64_t t0 = NowUnixMs();
  Apply("lb1", "k", t0 - 3'000, Node{0, 10, 1, 10});
  Apply("lb2", "k", t0 - 1'000, Node{0, 20, 2, 20});
  Apply("lb1", "gone", t0 - 3'000, Node{0, 5, 0, 5});
  EXPECT_EQ(2u, agg_.Flush(t0, taught_));
  Pull();

  // lb1's entries expire 10 s after their update.
  agg_.Expire(t0 + 6'999, taught_);
  EXPECT_EQ(0u, agg_.Flush(t0 + 6'999, taught_));
  agg_.Expire(t0 + 7'000, taught_);
  EXPECT_EQ(1u, agg_.keys());  // "gone" had only lb1: forgotten, not taught as zero
  EXPECT_EQ(1u, agg_.Flush(t0 + 7'000, taught_));
  Decoded d = Pull();
  ASSERT_EQ(1u, d.updates.size());
  EXPECT_EQ("k", d.updates[0].key);
  EXPECT_EQ(20u, d.updates[0].U(DataType::kGpc0));
  EXPECT_EQ(2u, d.updates[0].U(DataType::kConnCur));
  EXPECT_EQ(20u, d.updates[0].U(DataType::kHttpReqCnt));
  // The taught entry lives as long as lb2's: until t0 + 9 s.
  EXPECT_EQ(std::optional<uint32_t>(2'000), d.updates[0].expire_ms);

  agg_.Expire(t0 + 9'000, taught_);
  EXPECT_EQ(0u, agg_.keys());
  EXPECT_EQ(0u, agg_.Flush(t0 + 9'000, taught_));
  EXPECT_TRUE(Pull().updates.empty());
  // Forgotten in the taught table too: a refresh sends nothing, and a node connecting now is
  // taught nothing of them.
  taught_.TouchAll(0);
  EXPECT_TRUE(Pull().updates.empty());
  FakePeer fresh;
  Decoded all = fresh.Pull(taught_, 0);
  ASSERT_TRUE(all.ok) << all.error;
  EXPECT_TRUE(all.updates.empty());

  // It may come back.
  Apply("lb2", "k", t0 + 9'500, Node{0, 1, 0, 1});
  EXPECT_EQ(1u, agg_.Flush(t0 + 9'500, taught_));
  d = Pull();
  ASSERT_EQ(1u, d.updates.size());
  EXPECT_EQ(1u, d.updates[0].U(DataType::kGpc0));
}

TEST_F(AggregatorTest, KeysAreTheSameWithOrWithoutTheirIds) {
  const int64_t now = NowUnixMs();
  Apply("lb1", "k", now - 100, Node{0, 10, 1, 10});
  with_ids_ = false;  // an update without its id finds the key by name
  Apply("lb2", "k", now - 100, Node{0, 20, 1, 20});
  with_ids_ = true;
  Apply("lb1", "k", now - 50, Node{0, 11, 0, 12});
  EXPECT_EQ(1u, agg_.keys());
  EXPECT_EQ(1u, agg_.Flush(now, taught_));
  Decoded d = Pull();
  ASSERT_EQ(1u, d.updates.size());
  EXPECT_EQ(31u, d.updates[0].U(DataType::kGpc0));
  EXPECT_EQ(32u, d.updates[0].U(DataType::kHttpReqCnt));
}

TEST_F(AggregatorTest, TableWithoutExpireIsTaughtWithoutExpire) {
  const int64_t now = NowUnixMs();
  Apply("lb1", "k", now - 100'000, Node{0, 1, 0, 1}, Info(0));
  agg_.Expire(now + 1'000'000, taught_);
  EXPECT_EQ(1u, agg_.keys());
  EXPECT_EQ(1u, agg_.Flush(now, taught_));
  Decoded d = Pull();
  ASSERT_EQ(1u, d.updates.size());
  EXPECT_EQ(ingest::StickTableType::kUpdate, d.updates[0].type);
  EXPECT_FALSE(d.updates[0].expire_ms.has_value());
}

// A layout no node declares any longer gives way to the new one (a node changing its table alone,
// or the last of a rolling change): the taught table is redefined and the aggregate starts over.
TEST_F(AggregatorTest, NewSourceLayoutRedefinesAndStartsOver) {
  const int64_t now = NowUnixMs();
  Apply("lb1", "k", now, Node{0, 10, 1, 10});
  ingest::TableInfo narrower = Info();
  narrower.data_types = {"gpc0"};
  narrower.periods_ms = {0};
  narrower.array_sizes = {0};
  const int64_t later = now + Aggregator::kLayoutSwitchMs;
  Apply("lb2", "k", later, Node{0, 20, 1, 20}, narrower);
  EXPECT_EQ(2, defines_);
  EXPECT_EQ(1u, agg_.Flush(later, taught_));
  Decoded d = Pull();
  ASSERT_EQ(1u, d.defines.size());
  EXPECT_EQ(uint64_t{1} << 2, d.defines[0].data_bitfield);
  ASSERT_EQ(1u, d.updates.size());
  // Values laid out for the old layout are gone: only lb2's gpc0.
  EXPECT_EQ(20u, d.updates[0].U(DataType::kGpc0));
  EXPECT_EQ(1u, d.updates[0].values.size());
}

// Nodes that declare the table differently (here its expire, as during a rolling change of
// their configuration) add up in the current layout, by metric name: flipping the layout with
// every batch started the aggregate over each time, and taught every node every entry again.
TEST_F(AggregatorTest, NodesDeclaringTheTableDifferentlyStillAddUp) {
  const int64_t now = NowUnixMs();
  for (int round = 0; round < 5; ++round) {
    Apply("lb1", "k", now + round, Node{0, 10u + round, 1, 10});
    Apply("lb2", "k", now + round, Node{0, 20u + round, 2, 20}, Info(2 * kExpire));
  }
  EXPECT_EQ(1, defines_);
  EXPECT_EQ(1u, agg_.Flush(now + 5, taught_));
  Decoded d = Pull();
  ASSERT_EQ(1u, d.defines.size());
  EXPECT_EQ(kExpire, d.defines[0].expire_ms);
  ASSERT_EQ(1u, d.updates.size());
  EXPECT_EQ(14u + 24u, d.updates[0].U(DataType::kGpc0));
  EXPECT_EQ(3u, d.updates[0].U(DataType::kConnCur));
  EXPECT_EQ(30u, d.updates[0].U(DataType::kHttpReqCnt));
}

}  // namespace
}  // namespace stickmeter::teach
