// Implementation of calendar.h.
#include "billing/calendar.h"

#include <date/tz.h>

#include <chrono>
#include <string>

namespace stickmeter::billing {

Result<const date::time_zone*> LocateZone(std::string_view name) {
  // Only IANA-shaped names: the lookup must never be a path into the filesystem.
  if (name.empty() || name.size() > 64 || name.find("..") != std::string_view::npos ||
      name.front() == '/' ||
      name.find_first_not_of(
          "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+-/") !=
          std::string_view::npos) {
    // Built by appending: GCC 12 warns, wrongly, of overlapping copies in "\"" + std::string.
    std::string message(1, '"');
    message.append(name.substr(0, 64));
    message += "\" is not an IANA time zone name";
    return Status::InvalidArgument(message);
  }
  try {
    return date::locate_zone(name);
  } catch (const std::exception&) {
    return Status::InvalidArgument("unknown time zone \"" + std::string(name) + "\"");
  }
}

PeriodRange CalendarPeriodAt(CalendarUnit unit, const date::time_zone* zone, int64_t t_ms) {
  using std::chrono::milliseconds;
  const date::sys_time<milliseconds> sys{milliseconds{t_ms}};
  const auto local_day = date::floor<date::days>(zone->to_local(sys));
  date::local_days start = local_day, end = local_day + date::days{1};
  if (unit == CalendarUnit::kMonth) {
    const date::year_month_day ymd{local_day};
    const date::year_month first = ymd.year() / ymd.month();
    start = date::local_days{first / date::day{1}};
    end = date::local_days{(first + date::months{1}) / date::day{1}};
  }
  auto to_ms = [zone](date::local_days d) {
    // choose::earliest maps a skipped midnight to the instant the local day begins.
    return std::chrono::time_point_cast<milliseconds>(zone->to_sys(d, date::choose::earliest))
        .time_since_epoch()
        .count();
  };
  return PeriodRange{to_ms(start), to_ms(end)};
}

}  // namespace stickmeter::billing
