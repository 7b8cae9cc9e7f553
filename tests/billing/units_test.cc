// Byte units of the invoice export: exact decimals from integer arithmetic, rounded half up, up
// to the largest total a counter can have (2^64-1).
#include "billing/units.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "tests/support/status_matchers.h"

namespace stickmeter::billing {
namespace {

std::string In(uint64_t value, const std::string& unit) {
  auto u = ParseByteUnit(unit);
  EXPECT_TRUE(u.ok()) << unit;
  std::string out = "x";  // appends, never replaces
  AppendInUnit(out, value, u.ok() ? *u : ByteUnit{});
  return out.substr(1);
}

TEST(UnitsTest, BytesAreTheIntegerAsIs) {
  EXPECT_EQ("0", In(0, "B"));
  EXPECT_EQ("18446744073709551615", In(UINT64_MAX, "B"));
}

TEST(UnitsTest, DecimalUnitsAreExact) {
  EXPECT_EQ("0.000000", In(0, "GB"));
  EXPECT_EQ("1.000000", In(1'000'000'000, "GB"));
  EXPECT_EQ("1.234567", In(1'234'567'000, "GB"));
  EXPECT_EQ("0.001000", In(1, "kB"));
  EXPECT_EQ("12.345678", In(12'345'678, "MB"));
  EXPECT_EQ("1.000000", In(uint64_t{1} << 30, "GiB"));
  EXPECT_EQ("0.500000", In(uint64_t{1} << 39, "TiB"));
  EXPECT_EQ("1.000000", In(1024, "KiB"));
  EXPECT_EQ("1.000000", In(uint64_t{1} << 20, "MiB"));
  EXPECT_EQ("2.000000", In(uint64_t{2'000'000'000'000}, "TB"));
}

TEST(UnitsTest, RoundsHalfUp) {
  // 1 GB = 10^9 B: the 6th decimal is 1000 B; 500 B is exactly half of it.
  EXPECT_EQ("0.000000", In(499, "GB"));
  EXPECT_EQ("0.000001", In(500, "GB"));
  EXPECT_EQ("0.000001", In(1499, "GB"));
  EXPECT_EQ("0.000002", In(1500, "GB"));
  // The carry ripples into the integer part.
  EXPECT_EQ("1.000000", In(999'999'500, "GB"));
  EXPECT_EQ("0.999999", In(999'999'499, "GB"));
  // 1 GiB / 10^6 = 1073.741824 B: 536 B is under half, 537 B over.
  EXPECT_EQ("0.000000", In(536, "GiB"));
  EXPECT_EQ("0.000001", In(537, "GiB"));
  // 1 KiB / 10^6 = 0.001024 B: 1 B is 0.0009765625 KiB -> 0.000977.
  EXPECT_EQ("0.000977", In(1, "KiB"));
  // Exactly half at the 6th decimal of KiB: 2^-7 KiB = 8 B = 0.0078125 -> 0.007813.
  EXPECT_EQ("0.007813", In(8, "KiB"));
}

TEST(UnitsTest, LargestTotalsAreExact) {
  // 2^64-1 = 18446744073709551615.
  EXPECT_EQ("18446744073709551.615000", In(UINT64_MAX, "kB"));
  EXPECT_EQ("18446744073.709552", In(UINT64_MAX, "GB"));         // .7095516 rounds up
  EXPECT_EQ("18446744.073710", In(UINT64_MAX, "TB"));            // .07370955 rounds up
  EXPECT_EQ("18014398509481983.999023", In(UINT64_MAX, "KiB"));  // 2^54 - 2^-10
  EXPECT_EQ("17179869184.000000", In(UINT64_MAX, "GiB"));
  EXPECT_EQ("16777215.999998", In(UINT64_MAX - (uint64_t{1} << 21), "TiB"));
}

TEST(UnitsTest, UnknownUnitsNameTheParameter) {
  for (const char* bad : {"", "b", "gb", "GIB", "PB", "kiB", "G"}) {
    auto u = ParseByteUnit(bad);
    ASSERT_FALSE(u.ok()) << bad;
    EXPECT_EQ(0u, u.status().message().find("bytes_unit: ")) << u.status().message();
  }
  EXPECT_TRUE(IsByteMetric("bytes_out_cnt"));
  EXPECT_TRUE(IsByteMetric("bytes_in_cnt"));
  EXPECT_FALSE(IsByteMetric("bytes_out_rate"));
  EXPECT_FALSE(IsByteMetric("http_req_cnt"));
}

}  // namespace
}  // namespace stickmeter::billing
