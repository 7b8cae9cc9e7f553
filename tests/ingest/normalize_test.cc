// normalize: metric kinds per docs/counting.md, HAProxy's rate reading, keys as text.
#include "ingest/normalize.h"

#include <gtest/gtest.h>

namespace stickmeter::ingest {
namespace {

TEST(NormalizeTest, KindsFollowTheCountingRules) {
  const std::vector<DataType> counters32 = {
      DataType::kGpc0,       DataType::kGpc1,        DataType::kGpc,
      DataType::kConnCnt,    DataType::kSessCnt,     DataType::kHttpReqCnt,
      DataType::kHttpErrCnt, DataType::kHttpFailCnt, DataType::kGlitchCnt};
  const std::vector<DataType> counters64 = {DataType::kBytesInCnt, DataType::kBytesOutCnt};
  int c32 = 0, c64 = 0, gauges = 0;
  for (int i = 0; i < kDataTypeCount; ++i) {
    const auto t = static_cast<DataType>(i);
    const MetricKind k = KindOf(t);
    const bool is32 = std::find(counters32.begin(), counters32.end(), t) != counters32.end();
    const bool is64 = std::find(counters64.begin(), counters64.end(), t) != counters64.end();
    SCOPED_TRACE(std::string(DataTypeName(t)));
    EXPECT_EQ(is32   ? MetricKind::kCounter32
              : is64 ? MetricKind::kCounter64
                     : MetricKind::kGauge,
              k);
    c32 += k == MetricKind::kCounter32;
    c64 += k == MetricKind::kCounter64;
    gauges += k == MetricKind::kGauge;
  }
  EXPECT_EQ(9, c32);
  EXPECT_EQ(2, c64);
  EXPECT_EQ(16, gauges);  // server_id gpt0 conn_cur server_key gpt and the 11 rates
}

TEST(NormalizeTest, RateIsHaproxysReadingOverItsPeriod) {
  // Within the period: prev counts for the part of the period still ahead.
  EXPECT_EQ(13u, FreqCounterRate({10000, 2000, 5, 10}));  // (10*8000 + 5*10000) / 10000
  EXPECT_EQ(5u, FreqCounterRate({10000, 0, 5, 0}));
  EXPECT_EQ(15u, FreqCounterRate({10000, 0, 5, 10}));
  // One period later: curr becomes prev, weighted by what is left of it.
  EXPECT_EQ(2u, FreqCounterRate({10000, 15000, 5, 10}));  // 5 * 5000 / 10000
  // Two periods later: nothing left.
  EXPECT_EQ(0u, FreqCounterRate({10000, 25000, 5, 10}));
  // HAProxy's flapping correction: with no current events, a previous count of 0 or 1 reads
  // as itself.
  EXPECT_EQ(1u, FreqCounterRate({10000, 9999, 0, 1}));
  EXPECT_EQ(0u, FreqCounterRate({10000, 5000, 0, 0}));
  // The wire field is a uint32 of elapsed ms: a never-touched counter reads 0.
  EXPECT_EQ(0u, FreqCounterRate({60000, 71414983, 0, 0}));
  EXPECT_EQ(7u, FreqCounterRate({0, 100, 7, 3}));  // no period: the current counter
}

TEST(NormalizeTest, TableInfo) {
  TableDefinition t;
  t.table_id = 2;
  t.name = "/arr";
  t.key_type = KeyType::kIpv6;
  t.key_size = 16;
  t.expire_ms = 3600000;
  t.data_bitfield = (1u << 9) | (1u << 22) | (1u << 23) | (uint64_t{1} << 40);
  auto info = MakeTableInfo(t);
  EXPECT_EQ("/arr", info->name);
  EXPECT_EQ("ipv6", info->key_type);
  EXPECT_EQ(16u, info->key_size);
  EXPECT_EQ(3600000u, info->expire_ms);
  EXPECT_EQ((std::vector<std::string>{"http_req_cnt", "gpt", "gpc"}), info->data_types);
}

TEST(NormalizeTest, EntryUpdateValues) {
  TableDefinition t;
  t.name = "/q";
  t.key_type = KeyType::kIpv4;
  t.key_size = 4;
  std::vector<DataValue> values(6);
  values[0].type = DataType::kServerId;
  values[0].form = DataValue::Form::kSigned;
  values[0].s = -1;
  values[1].type = DataType::kGpc0;
  values[1].u = 4294967295u;
  values[2].type = DataType::kHttpReqRate;
  values[2].form = DataValue::Form::kFreq;
  values[2].freq = {10000, 0, 5, 10};
  values[3].type = DataType::kBytesOutCnt;
  values[3].u = uint64_t{1} << 40;
  values[4].type = DataType::kServerKey;
  values[4].form = DataValue::Form::kDict;
  values[4].dict_id = 3;
  values[4].dict_value = "be/srv1";
  values[5].type = DataType::kGpc;
  values[5].index = 2;
  values[5].u = 9;
  const uint8_t key[4] = {10, 0, 0, 1};
  EntryUpdateView view;
  view.table = &t;
  view.key_bytes = key;
  view.values = values;
  TableUpdates out;
  AppendEntryUpdate(view, 1700000000123, out);
  ASSERT_EQ(1u, out.entries.size());
  const EntryUpdate& e = out.entries[0];
  EXPECT_EQ("10.0.0.1", e.key);
  EXPECT_EQ(1700000000123, e.received_ms);
  EXPECT_EQ("be/srv1", e.server_key);
  ASSERT_EQ(5u, e.values.size());
  EXPECT_EQ("server_id", e.values[0].metric);
  EXPECT_EQ(MetricKind::kGauge, e.values[0].kind);
  EXPECT_EQ(-1, static_cast<int64_t>(e.values[0].value));
  EXPECT_EQ("gpc0", e.values[1].metric);
  EXPECT_EQ(MetricKind::kCounter32, e.values[1].kind);
  EXPECT_EQ(4294967295u, e.values[1].value);
  EXPECT_EQ("http_req_rate", e.values[2].metric);
  EXPECT_EQ(MetricKind::kGauge, e.values[2].kind);
  EXPECT_EQ(15u, e.values[2].value);
  EXPECT_EQ("bytes_out_cnt", e.values[3].metric);
  EXPECT_EQ(MetricKind::kCounter64, e.values[3].kind);
  EXPECT_EQ(uint64_t{1} << 40, e.values[3].value);
  EXPECT_EQ("gpc.2", e.values[4].metric);
  EXPECT_EQ(MetricKind::kCounter32, e.values[4].kind);
  EXPECT_EQ(9u, e.values[4].value);
}

}  // namespace
}  // namespace stickmeter::ingest
