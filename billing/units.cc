#include "billing/units.h"

#include "common/json_writer.h"

namespace stickmeter::billing {

Result<ByteUnit> ParseByteUnit(std::string_view text) {
  static constexpr struct {
    std::string_view name;
    uint64_t bytes;
  } kUnits[] = {
      {"B", 1},
      {"kB", 1000},
      {"MB", 1000 * 1000},
      {"GB", 1000 * 1000 * 1000},
      {"TB", uint64_t{1000} * 1000 * 1000 * 1000},
      {"KiB", uint64_t{1} << 10},
      {"MiB", uint64_t{1} << 20},
      {"GiB", uint64_t{1} << 30},
      {"TiB", uint64_t{1} << 40},
  };
  for (const auto& u : kUnits) {
    if (u.name == text) return ByteUnit{std::string(u.name), u.bytes};
  }
  return Status::InvalidArgument("bytes_unit: \"" + std::string(text.substr(0, 32)) +
                                 "\" is not B, kB, MB, GB, TB, KiB, MiB, GiB or TiB");
}

void AppendInUnit(std::string& out, uint64_t value, const ByteUnit& unit) {
  if (unit.bytes <= 1) {
    AppendDecimal(out, value);
    return;
  }
  uint64_t scale = 1;
  for (int i = 0; i < kUnitDecimals; ++i) scale *= 10;
  // value * scale / bytes, rounded half up, in 128 bits: value * 10^6 exceeds 64 bits.
  const unsigned __int128 scaled = static_cast<unsigned __int128>(value) * scale;
  unsigned __int128 q = scaled / unit.bytes;
  const unsigned __int128 rem = scaled % unit.bytes;
  if (rem * 2 >= unit.bytes) ++q;
  // q < 2^64 * 10^6 / 1000: the integer part fits 64 bits, the fraction is below 10^6.
  AppendDecimal(out, static_cast<uint64_t>(q / scale));
  out += '.';
  const std::string frac = std::to_string(static_cast<uint64_t>(q % scale));
  out.append(static_cast<size_t>(kUnitDecimals) - frac.size(), '0');
  out += frac;
}

bool IsByteMetric(std::string_view metric) {
  return metric == "bytes_in_cnt" || metric == "bytes_out_cnt";
}

}  // namespace stickmeter::billing
