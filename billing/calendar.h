// IANA time zones and calendar periods: what a billing period is, wherever it is needed (the
// HTTP API's and the export's `tz` and `period`, a quota's period).
//
// Zones are resolved through Howard Hinnant's date/tz against the OS tzdb (/usr/share/zoneinfo);
// every conversion is DST-correct. A local midnight that does not exist (a DST jump at 00:00) is
// the instant the local day begins.
//
// Pure functions, thread-safe (date/tz loads its database once, under its own lock). A zone
// pointer stays valid for the life of the process.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/status.h"

namespace date {
class time_zone;
}

namespace stickmeter::billing {

// An IANA zone name ("UTC", "Europe/Berlin"). InvalidArgument naming the text for anything
// else; a name is never used as a path.
Result<const date::time_zone*> LocateZone(std::string_view name);

enum class CalendarUnit { kDay, kMonth };

// [start, end) in Unix ms.
struct PeriodRange {
  int64_t start_ms = 0;
  int64_t end_ms = 0;
};

// The calendar day or month in `zone` that contains `t_ms`: from local midnight to local
// midnight.
PeriodRange CalendarPeriodAt(CalendarUnit unit, const date::time_zone* zone, int64_t t_ms);

}  // namespace stickmeter::billing
