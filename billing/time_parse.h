// Parsing and formatting of the times the HTTP API, the export and the CLI accept: part of
// billing because a billing period is made of them.
//
// A time is either RFC 3339 with any UTC offset (`2026-10-01T00:00:00+02:00`,
// `2026-10-01T00:00:00.250Z`) or an integer number of Unix milliseconds (`1790812800000`).
// Fractional seconds beyond milliseconds are truncated toward the past, so half-open ranges
// [from, to) stay half-open. Zones are IANA names resolved through Howard Hinnant's date/tz
// against the OS tzdb (/usr/share/zoneinfo); every conversion is DST-correct.
//
// Every time accepted lies in [kMinTimeMs, kMaxTimeMs], 1970-01-01T00:00:00Z to
// 9999-12-31T23:59:59.999Z: the store keys minutes, hours and days since the epoch in 32 bits, so
// a time outside that span would wrap around and land on other buckets (a crafted `to` could
// count a period twice).
//
// All functions are pure and thread-safe (date/tz's database is loaded once, under its own
// lock). Failures are InvalidArgument whose message names the offending text but not the
// parameter; callers prefix the parameter name.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "billing/calendar.h"
#include "common/status.h"

namespace date {
class time_zone;
}

namespace stickmeter::billing {

// The span of times the API and the CLI accept, in Unix ms (both ends included).
inline constexpr int64_t kMinTimeMs = 0;                  // 1970-01-01T00:00:00Z
inline constexpr int64_t kMaxTimeMs = 253402300799999LL;  // 9999-12-31T23:59:59.999Z

// Parses an RFC 3339 timestamp or integer Unix ms. Returns Unix ms, or InvalidArgument (also
// for a time outside [kMinTimeMs, kMaxTimeMs]).
Result<int64_t> ParseTime(std::string_view text);

// Ok when `unix_ms` is in [kMinTimeMs, kMaxTimeMs]; otherwise InvalidArgument saying so, with
// `text` (what the client sent) quoted.
Status CheckTimeInRange(int64_t unix_ms, std::string_view text);

// Half-open Unix ms range [start, end) of the calendar month `yyyy_mm` ("2026-10") in `zone`:
// from local midnight of the 1st to local midnight of the 1st of the next month. A local
// midnight that does not exist (a DST jump at 00:00) resolves to the instant the day begins.
struct MonthRange {
  int64_t start_ms = 0;
  int64_t end_ms = 0;
};
Result<MonthRange> ResolveMonth(std::string_view yyyy_mm, const date::time_zone* zone);

// RFC 3339 in `zone` with its offset at that instant: `2026-10-01T00:00:00+02:00`; UTC as
// `Z`. Milliseconds are printed only when non-zero. `zone` == nullptr means UTC.
std::string FormatRfc3339InZone(int64_t unix_ms, const date::time_zone* zone);

}  // namespace stickmeter::billing
