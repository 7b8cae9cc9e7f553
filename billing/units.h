// Byte units of the invoice export (docs/exports.md, "Units"): a byte count printed in kB, MB,
// GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024) as an exact decimal with
// kUnitDecimals digits after the point, rounded half up, computed with integer arithmetic only
// (never through floating point, so the same count always prints the same text).
//
// Thread-safety: pure functions. Failure: ParseByteUnit returns InvalidArgument naming
// `bytes_unit`.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace stickmeter::billing {

// Digits after the decimal point of a value in a unit other than B.
inline constexpr int kUnitDecimals = 6;

struct ByteUnit {
  std::string name = "B";  // as written in the column header: "B", "GB", "GiB", ...
  uint64_t bytes = 1;      // bytes in one unit
};

// "B", "kB", "MB", "GB", "TB", "KiB", "MiB", "GiB", "TiB" (exact spelling).
Result<ByteUnit> ParseByteUnit(std::string_view text);

// Appends `value` bytes in `unit`: the integer as is for B; otherwise value / unit.bytes with
// exactly kUnitDecimals decimals, rounded half up (2^64-1 B in kB is
// 18446744073709551.615000; 1 B in GiB is 0.000000, 537 B in GiB is 0.000001).
void AppendInUnit(std::string& out, uint64_t value, const ByteUnit& unit);

// Whether the unit applies to a metric: the byte counters bytes_in_cnt and bytes_out_cnt.
bool IsByteMetric(std::string_view metric);

}  // namespace stickmeter::billing
