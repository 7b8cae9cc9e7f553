// Writing JSON by hand: the string escaper and number formatting of every reply, export and
// decoder output that is not built as an nlohmann::json value (those that are go through
// http/json_util.h's DumpJson, whose bytes these match).
//
// Keys in HAProxy string tables are arbitrary bytes; JSON needs UTF-8. AppendJsonString writes
// valid UTF-8 through unchanged, escapes '"', '\\' and the control characters U+0000..U+001F
// (\b \t \n \f \r, otherwise \u00xx in lowercase hex) and handles bytes that are not UTF-8 as
// the caller asks: replaced by U+FFFD (the API and the exports: one per maximal invalid
// subpart, exactly as nlohmann_json's error_handler_t::replace), or escaped byte by byte as
// \u00xx (the decoder, whose readers want the original bytes recognisable). Everything else,
// DEL and U+2028/U+2029 included, is copied: JSON allows them raw, and the replies are never
// embedded in a script. Numbers are plain decimal, the bytes std::to_chars writes.
//
// Speed matters: an export writes millions of keys. Nothing here allocates beyond growing the
// output string, and runs of plain bytes are appended at once.
//
// Pure functions, thread-safe; nothing fails (every input has an output).
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace stickmeter {

// What AppendJsonString does with bytes that are not valid UTF-8.
enum class InvalidUtf8 {
  kReplace,      // U+FFFD, once per maximal invalid subpart (docs/api.md, docs/exports.md)
  kEscapeBytes,  // \u00xx per byte: U+0080..U+00FF stand for the raw bytes 0x80..0xff
};

// Appends `text` as a quoted JSON string.
void AppendJsonString(std::string& out, std::string_view text,
                      InvalidUtf8 invalid = InvalidUtf8::kReplace);

// A bound on the bytes AppendJsonString writes for `text` with InvalidUtf8::kReplace, quotes
// included, for budgets of replies: a control byte counts 6 (\u00xx), '"' and '\\' 2, a byte
// above 0x7f 3 (what a U+FFFD takes; valid UTF-8 takes one byte per byte).
size_t JsonStringBoundBytes(std::string_view text);

// The most digits WriteDecimal writes (a '-' and 19 digits, or 20 digits).
inline constexpr size_t kMaxDecimalChars = 20;

namespace json_detail {
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
}  // namespace json_detail

// Writes `v` in decimal at `out`, which has room for kMaxDecimalChars, and returns the end.
// Same bytes as std::to_chars; faster for the 13-digit millisecond times of series and exports,
// which it splits into 32-bit parts instead of dividing 64-bit values two digits at a time.
inline char* WriteDecimal(char* out, uint64_t v) {
  constexpr uint64_t k1e8 = 100'000'000;
  if (v < k1e8) return std::to_chars(out, out + 8, static_cast<uint32_t>(v)).ptr;
  if (v < k1e8 * k1e8) {
    out = std::to_chars(out, out + 8, static_cast<uint32_t>(v / k1e8)).ptr;
    return json_detail::Write8Digits(out, static_cast<uint32_t>(v % k1e8));
  }
  out = std::to_chars(out, out + 4, static_cast<uint32_t>(v / (k1e8 * k1e8))).ptr;
  out = json_detail::Write8Digits(out, static_cast<uint32_t>(v / k1e8 % k1e8));
  return json_detail::Write8Digits(out, static_cast<uint32_t>(v % k1e8));
}

inline char* WriteDecimal(char* out, int64_t v) {
  if (v >= 0) return WriteDecimal(out, static_cast<uint64_t>(v));
  *out++ = '-';
  return WriteDecimal(out, uint64_t{0} - static_cast<uint64_t>(v));
}

// Appends `v` in decimal (WriteDecimal's bytes).
inline void AppendDecimal(std::string& out, uint64_t v) {
  char buf[kMaxDecimalChars];
  out.append(buf, static_cast<size_t>(WriteDecimal(buf, v) - buf));
}
inline void AppendDecimal(std::string& out, int64_t v) {
  char buf[kMaxDecimalChars];
  out.append(buf, static_cast<size_t>(WriteDecimal(buf, v) - buf));
}

}  // namespace stickmeter
