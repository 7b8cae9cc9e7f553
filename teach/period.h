// Quota periods: the calendar day or month, in an IANA time zone, that contains an instant.
//
// Pure functions, thread-safe (date/tz loads its database once, under its own lock).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "common/status.h"
#include "teach/quota.h"

namespace date {
class time_zone;
}

namespace stickmeter::teach {

// "month" | "day".
std::optional<Period> PeriodByName(std::string_view name);

// An IANA zone ("UTC", "Europe/Berlin"); InvalidArgument for anything else (never a path).
Result<const date::time_zone*> FindZone(std::string_view name);

// [start, end) in Unix ms of the period of kind `period` in `zone` that contains `t_ms`: from
// local midnight to local midnight (a midnight skipped by a DST jump is the instant the day
// begins).
struct PeriodRange {
  int64_t start_ms = 0;
  int64_t end_ms = 0;
};
PeriodRange PeriodAt(Period period, const date::time_zone* zone, int64_t t_ms);

}  // namespace stickmeter::teach
