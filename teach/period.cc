// Implementation of period.h.
#include "teach/period.h"

#include <string>

namespace stickmeter::teach {

std::string_view PeriodName(Period period) { return period == Period::kDay ? "day" : "month"; }

std::optional<Period> PeriodByName(std::string_view name) {
  if (name == "month") return Period::kMonth;
  if (name == "day") return Period::kDay;
  return std::nullopt;
}

PeriodRange PeriodAt(Period period, const date::time_zone* zone, int64_t t_ms) {
  return billing::CalendarPeriodAt(
      period == Period::kDay ? billing::CalendarUnit::kDay : billing::CalendarUnit::kMonth, zone,
      t_ms);
}

}  // namespace stickmeter::teach
