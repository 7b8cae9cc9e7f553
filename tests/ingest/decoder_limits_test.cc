// Decoder limits against hostile peers: tables per connection, table name length and server_key
// dictionary values are bounded, and table lookup does not slow down with many tables.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "ingest/codec.h"
#include "tests/ingest/test_util.h"

namespace stickmeter::ingest {
namespace {

using testing::Bytes;
using testing::FeedWhole;

TableDefinition Table(uint64_t id, std::string name, uint64_t bits = 0) {
  TableDefinition t;
  t.table_id = id;
  t.name = std::move(name);
  t.key_type = KeyType::kString;
  t.key_size = 33;
  t.data_bitfield = bits;
  return t;
}

std::string Define(const TableDefinition& t) {
  std::string s;
  AppendTableDefine(s, t);
  return s;
}

TEST(DecoderLimitsTest, TablesPerConnectionAreCapped) {
  DecoderLimits limits;
  limits.max_tables = 64;
  std::string s;
  for (uint64_t id = 1; id <= 64; ++id) s += Define(Table(id, "/t" + std::to_string(id)));
  // Redefining a known id is not a new table.
  s += Define(Table(7, "/again"));
  auto ok = FeedWhole(Bytes(s), limits);
  ASSERT_TRUE(ok.ok) << ok.error;
  auto over = FeedWhole(Bytes(s + Define(Table(65, "/one-too-many"))), limits);
  EXPECT_FALSE(over.ok);
  EXPECT_NE(over.error.find("more than 64 tables"), std::string::npos) << over.error;
}

// A DEFINE of ~40 bytes can declare three arrays of 100 values, each of which the decoder keeps
// (~100 bytes apiece): the values of all tables of a connection are bounded too, not only their
// number.
TEST(DecoderLimitsTest, StoredValuesOverAllTablesAreCapped) {
  auto arrays = [](uint64_t id) {
    TableDefinition t = Table(id, "/arrays" + std::to_string(id),
                              (uint64_t{1} << static_cast<int>(DataType::kGpt)) |
                                  (uint64_t{1} << static_cast<int>(DataType::kGpc)) |
                                  (uint64_t{1} << static_cast<int>(DataType::kGpcRate)));
    for (DataType d : {DataType::kGpt, DataType::kGpc, DataType::kGpcRate}) {
      t.nbelem[static_cast<size_t>(d)] = 100;
    }
    t.period_ms[static_cast<size_t>(DataType::kGpcRate)] = 1000;
    return t;
  };
  DecoderLimits limits;
  limits.max_defined_values = 900;
  std::string s = Define(arrays(1)) + Define(arrays(2)) + Define(arrays(3));  // 900 values
  // Redefining a table replaces its values rather than adding to them.
  s += Define(arrays(2));
  auto ok = FeedWhole(Bytes(s), limits);
  ASSERT_TRUE(ok.ok) << ok.error;
  auto over = FeedWhole(Bytes(s + Define(Table(4, "/one-more", 1u << 2))), limits);
  EXPECT_FALSE(over.ok);
  EXPECT_NE(over.error.find("more than 900 stored values"), std::string::npos) << over.error;
  // The default: a flood of such tables stops at 16,384 values, long before 1024 tables.
  std::string flood;
  for (uint64_t id = 1; id <= 1024; ++id) flood += Define(arrays(id));
  auto out = FeedWhole(Bytes(flood));
  EXPECT_FALSE(out.ok);
  EXPECT_NE(out.error.find("more than 16384 stored values"), std::string::npos) << out.error;
}

TEST(DecoderLimitsTest, DefaultCapClosesAFloodOfDefines) {
  // The reproduction: 160,000 DEFINEs of distinct ids. With the default cap the decoder stops at
  // table 1025, long before the flood costs anything.
  std::string s;
  for (uint64_t id = 1; id <= 160000; ++id) s += Define(Table(id, "t"));
  const auto start = std::chrono::steady_clock::now();
  auto out = FeedWhole(Bytes(s));
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_FALSE(out.ok);
  EXPECT_NE(out.error.find("more than 1024 tables"), std::string::npos) << out.error;
  EXPECT_LT(took, std::chrono::seconds(2));
}

TEST(DecoderLimitsTest, LookupStaysFastWithManyTables) {
  // Many tables, each redefined and switched to repeatedly: linear lookup made this quadratic.
  DecoderLimits limits;
  limits.max_tables = 50000;
  std::string s;
  for (uint64_t id = 1; id <= 50000; ++id) s += Define(Table(id, "t"));
  for (uint64_t id = 50000; id >= 1; --id) AppendTableSwitch(s, id);
  const auto start = std::chrono::steady_clock::now();
  auto out = FeedWhole(Bytes(s), limits);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(out.ok) << out.error;
  // Linear lookup: ~2.5e9 comparisons (many seconds); by hash well under one.
  EXPECT_LT(took, std::chrono::seconds(3));
}

TEST(DecoderLimitsTest, TableNameLengthIsCapped) {
  EXPECT_TRUE(FeedWhole(Bytes(Define(Table(1, std::string(256, 'n'))))).ok);
  auto out = FeedWhole(Bytes(Define(Table(1, std::string(257, 'n')))));
  EXPECT_FALSE(out.ok);
  EXPECT_NE(out.error.find("longer than 256"), std::string::npos) << out.error;
}

std::string DictUpdate(uint64_t slot, const std::string& value) {
  // UPDATE id=1, key "k", server_key entry: slot id, then (when defining) length + value.
  std::string entry;
  AppendVarint(entry, slot);
  if (!value.empty()) {
    AppendVarint(entry, value.size());
    entry += value;
  }
  std::string p = std::string("\x00\x00\x00\x01\x01k", 6);
  AppendVarint(p, entry.size());
  p += entry;
  std::string s;
  s.push_back(10);
  s.push_back(static_cast<char>(0x80));
  AppendVarint(s, p.size());
  return s + p;
}

TEST(DecoderLimitsTest, ServerKeyValuesAreCapped) {
  const uint64_t bit = uint64_t{1} << static_cast<int>(DataType::kServerKey);
  const std::string def = Define(Table(1, "/t", bit));
  EXPECT_TRUE(FeedWhole(Bytes(def + DictUpdate(3, std::string(1024, 's')))).ok);
  auto out = FeedWhole(Bytes(def + DictUpdate(3, std::string(1025, 's'))));
  EXPECT_FALSE(out.ok);
  EXPECT_NE(out.error.find("longer than 1024"), std::string::npos) << out.error;
}

}  // namespace
}  // namespace stickmeter::ingest
