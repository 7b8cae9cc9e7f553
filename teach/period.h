// Quota periods by name, and the period that contains an instant (billing/calendar.h: the same
// calendar days and months as the API's and the export's).
//
// Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "billing/calendar.h"
#include "common/status.h"
#include "teach/quota.h"

namespace stickmeter::teach {

// "month" | "day".
std::optional<Period> PeriodByName(std::string_view name);

// An IANA zone ("UTC", "Europe/Berlin"); InvalidArgument for anything else (never a path).
using billing::LocateZone;

using billing::PeriodRange;
// The day or month of `period` in `zone` that contains `t_ms`.
PeriodRange PeriodAt(Period period, const date::time_zone* zone, int64_t t_ms);

}  // namespace stickmeter::teach
