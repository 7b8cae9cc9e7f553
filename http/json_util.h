// Small JSON helpers shared by the API handlers and the export writer.
//
// Keys in HAProxy string tables are arbitrary bytes; JSON needs UTF-8. Every string that reaches
// a response goes through these helpers, which replace invalid UTF-8 with U+FFFD instead of
// throwing (nlohmann_json throws by default). Numbers are written in plain decimal, as
// std::to_chars writes them. Pure functions, thread-safe.
#pragma once

#include <charconv>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace stickmeter::http {

// Serializes `value` compactly; never throws on invalid UTF-8.
inline std::string DumpJson(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Appends `text` as a quoted JSON string.
inline void AppendJsonString(std::string& out, std::string_view text) {
  // Keys are nearly always printable ASCII without quotes or backslashes, which the serializer
  // copies unchanged: append those directly instead of building and dumping a json value per
  // row (half of the formatting time of a large JSON export).
  bool plain = true;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e || c == '"' || c == '\\') {
      plain = false;
      break;
    }
  }
  if (plain) {
    out += '"';
    out.append(text);
    out += '"';
    return;
  }
  out += DumpJson(nlohmann::json(std::string(text)));
}

// The most digits WriteDecimal writes (a '-' and 19 digits, or 20 digits).
inline constexpr size_t kMaxDecimalChars = 20;

namespace detail {
inline constexpr char kDigitPairs[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";
// Writes v < 10^8 as exactly 8 digits.
inline char* Write8Digits(char* out, uint32_t v) {
  const uint32_t hi = v / 10000, lo = v % 10000;
  std::memcpy(out, kDigitPairs + 2 * (hi / 100), 2);
  std::memcpy(out + 2, kDigitPairs + 2 * (hi % 100), 2);
  std::memcpy(out + 4, kDigitPairs + 2 * (lo / 100), 2);
  std::memcpy(out + 6, kDigitPairs + 2 * (lo % 100), 2);
  return out + 8;
}
}  // namespace detail

// Writes `v` in decimal at `out`, which has room for kMaxDecimalChars, and returns the end.
// Same bytes as std::to_chars; faster for the 13-digit millisecond times of series and exports,
// which it splits into 32-bit parts instead of dividing 64-bit values two digits at a time.
inline char* WriteDecimal(char* out, uint64_t v) {
  constexpr uint64_t k1e8 = 100'000'000;
  if (v < k1e8) return std::to_chars(out, out + 8, static_cast<uint32_t>(v)).ptr;
  if (v < k1e8 * k1e8) {
    out = std::to_chars(out, out + 8, static_cast<uint32_t>(v / k1e8)).ptr;
    return detail::Write8Digits(out, static_cast<uint32_t>(v % k1e8));
  }
  out = std::to_chars(out, out + 4, static_cast<uint32_t>(v / (k1e8 * k1e8))).ptr;
  out = detail::Write8Digits(out, static_cast<uint32_t>(v / k1e8 % k1e8));
  return detail::Write8Digits(out, static_cast<uint32_t>(v % k1e8));
}

inline char* WriteDecimal(char* out, int64_t v) {
  if (v >= 0) return WriteDecimal(out, static_cast<uint64_t>(v));
  *out++ = '-';
  return WriteDecimal(out, uint64_t{0} - static_cast<uint64_t>(v));
}

}  // namespace stickmeter::http
