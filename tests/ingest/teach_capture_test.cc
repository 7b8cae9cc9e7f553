// Teaching against a real capture (HAProxy 2.6, fixture f-both-directions): a test peer,
// tracker2, connected to HAProxy, taught it one entry of /quota, and HAProxy acknowledged it.
// Our encoder, through TaughtTables, must produce exactly the bytes tracker2 sent, and HAProxy's
// answer must decode as the ACK of that update, which Unwrap maps back to our sequence number.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/time.h"
#include "ingest/codec.h"
#include "ingest/taught_tables.h"
#include "tests/ingest/taught_peer.h"
#include "tests/ingest/test_util.h"

namespace stickmeter::ingest {
namespace {

using ::stickmeter::ingest::testing::Hex;

using testing::Decoded;
using testing::DecodeStream;
using testing::Unsigned;

const std::string kDir = std::string(STICKMETER_TEACH_FIXTURES_DIR) + "/f-both-directions";

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string Unhex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// The bytes tracker2 sent to teach its entry (session.2.jsonl, the one "sent" event).
std::string TaughtBytes() {
  std::ifstream in(kDir + "/session.2.jsonl");
  EXPECT_TRUE(in.good()) << "cannot read " << kDir << "/session.2.jsonl";
  std::string line, hex;
  int sent = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);
    if (j.value("event", "") != "sent") continue;
    ++sent;
    EXPECT_NE(std::string::npos, j.value("what", "").find("/quota"));
    hex = j.at("hex").get<std::string>();
  }
  EXPECT_EQ(1, sent);
  return Unhex(hex);
}

constexpr uint64_t kTableId = 7;
constexpr uint32_t kUpdateId = 100;
const std::string kKey = "learned-from-tracker2";

// /quota as tracker2 defined it: "type string len 64 expire 1h store gpc0,http_req_cnt".
TableDefinition QuotaTable() {
  TableDefinition d;
  d.table_id = kTableId;
  d.name = "/quota";
  d.key_type = KeyType::kString;
  d.key_size = 65;
  d.data_bitfield = (uint64_t{1} << static_cast<int>(DataType::kGpc0)) |
                    (uint64_t{1} << static_cast<int>(DataType::kHttpReqCnt));
  d.expire_ms = 3'600'000;
  return d;
}

std::vector<DataValue> QuotaValues(uint64_t gpc0, uint64_t req) {
  return {Unsigned(DataType::kGpc0, gpc0), Unsigned(DataType::kHttpReqCnt, req)};
}

TEST(TeachCaptureTest, CapturedTeachingDecodesAsExpected) {
  const std::string sent = TaughtBytes();
  ASSERT_FALSE(sent.empty());
  Decoded d = DecodeStream(Bytes(sent));
  ASSERT_TRUE(d.ok) << d.error;
  ASSERT_EQ(1u, d.defines.size());
  const TableDefinition want = QuotaTable();
  EXPECT_EQ(kTableId, d.defines[0].table_id);
  EXPECT_EQ(want.name, d.defines[0].name);
  EXPECT_EQ(want.key_type, d.defines[0].key_type);
  EXPECT_EQ(want.key_size, d.defines[0].key_size);
  EXPECT_EQ(want.data_bitfield, d.defines[0].data_bitfield);
  EXPECT_EQ(want.expire_ms, d.defines[0].expire_ms);
  ASSERT_EQ(1u, d.updates.size());
  EXPECT_EQ(StickTableType::kUpdate, d.updates[0].type);
  EXPECT_EQ(kUpdateId, d.updates[0].id);
  EXPECT_FALSE(d.updates[0].expire_ms.has_value());
  EXPECT_EQ(kKey, d.updates[0].key);
  EXPECT_EQ(41u, d.updates[0].U(DataType::kGpc0));
  EXPECT_EQ(42u, d.updates[0].U(DataType::kHttpReqCnt));
}

TEST(TeachCaptureTest, EncodersProduceTheCapturedBytes) {
  const std::string sent = TaughtBytes();
  std::string ours;
  AppendTableDefine(ours, QuotaTable());
  const std::vector<DataValue> values = QuotaValues(41, 42);
  AppendEntryUpdate(ours, QuotaTable(), StickTableType::kUpdate, kUpdateId, std::nullopt,
                    Bytes(kKey), values);
  EXPECT_EQ(Hex(sent), Hex(ours));
}

TEST(TeachCaptureTest, TaughtTablesCollectsTheCapturedBytes) {
  const std::string sent = TaughtBytes();
  // Wire id 7 is table index 6; update id 100 is sequence number 100: the entry is set 100
  // times (each Set replaces the value waiting), the last time with the captured values.
  TaughtTables t({"/t1", "/t2", "/t3", "/t4", "/t5", "/t6", "/quota"});
  ASSERT_EQ(kTableId, TaughtTables::WireId(6));
  TableDefinition def = QuotaTable();
  def.table_id = 0;  // Define assigns ours
  ASSERT_TRUE(t.Define(def));
  const int64_t now = NowUnixMs();
  for (uint64_t i = 1; i < kUpdateId; ++i) {
    t.Set("/quota", kKey, QuotaValues(i, i), std::nullopt, now, now);
  }
  t.Set("/quota", kKey, QuotaValues(41, 42), std::nullopt, now, now);
  ASSERT_EQ(kUpdateId, t.last_seq());

  TaughtTables::Cursor cursor;
  std::string ours;
  TaughtTables::Collected c = t.Collect(6, cursor, 1000, ours);
  EXPECT_EQ(1u, c.messages);
  EXPECT_EQ(Hex(sent), Hex(ours));
  EXPECT_EQ(kUpdateId, cursor.sent);

  // HAProxy's answer on that connection: the ACK of table 7, update 100.
  const std::string answer = ReadAll(kDir + "/stream.2.bin");
  ASSERT_FALSE(answer.empty());
  Decoded d = DecodeStream(Bytes(answer));
  ASSERT_TRUE(d.ok) << d.error;
  ASSERT_EQ(1u, d.acks.size());
  EXPECT_EQ(kTableId, d.acks[0].first);
  EXPECT_EQ(kUpdateId, d.acks[0].second);
  EXPECT_EQ(cursor.sent, TaughtTables::Unwrap(cursor.sent, d.acks[0].second));
  // The same ACK after our sequence wrapped past 2^32 maps to the number sent, not to 100.
  const uint64_t wrapped = (uint64_t{1} << 32) + kUpdateId;
  EXPECT_EQ(wrapped, TaughtTables::Unwrap(wrapped + 3, d.acks[0].second));
  // What HAProxy sent of its own table on that connection is not ours: table 1, its own ids.
  for (const auto& u : d.updates) EXPECT_EQ(1u, u.table_id);
}

}  // namespace
}  // namespace stickmeter::ingest
