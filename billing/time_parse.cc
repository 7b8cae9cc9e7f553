#include "billing/time_parse.h"

#include <date/date.h>
#include <date/tz.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <exception>

namespace stickmeter::billing {
namespace {

bool ParseDigits(std::string_view text, size_t pos, size_t count, int* out) {
  if (pos + count > text.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + count; ++i) {
    char c = text[i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

// The start of what a client sent, in quotes, for an error message. (Built by appending: GCC 12
// warns, wrongly, of overlapping copies in `"\"" + std::string(...)` at -O3.)
std::string Quoted(std::string_view text, size_t max_chars) {
  std::string out(1, '"');
  out.append(text.substr(0, max_chars));
  out += '"';
  return out;
}

Status BadTime(std::string_view text, std::string_view why) {
  return Status::InvalidArgument(Quoted(text, 64) + " is not a time (" + std::string(why) +
                                 "); use RFC 3339 like 2026-10-01T00:00:00+02:00 or Unix ms");
}

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

// ParseTime without the range check.
Result<int64_t> ParseUncheckedTime(std::string_view text) {
  if (text.empty()) return BadTime(text, "empty");
  // Integer Unix milliseconds.
  if (text.find_first_not_of("0123456789") == std::string_view::npos ||
      (text[0] == '-' && text.size() > 1 &&
       text.find_first_not_of("0123456789", 1) == std::string_view::npos)) {
    int64_t ms = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
    if (ec != std::errc() || ptr != text.data() + text.size()) {
      return BadTime(text, "out of range");
    }
    return ms;
  }
  // YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)
  int year, month, day, hour, minute, second;
  if (text.size() < 20 || !ParseDigits(text, 0, 4, &year) || text[4] != '-' ||
      !ParseDigits(text, 5, 2, &month) || text[7] != '-' || !ParseDigits(text, 8, 2, &day) ||
      (text[10] != 'T' && text[10] != 't' && text[10] != ' ') || !ParseDigits(text, 11, 2, &hour) ||
      text[13] != ':' || !ParseDigits(text, 14, 2, &minute) || text[16] != ':' ||
      !ParseDigits(text, 17, 2, &second)) {
    return BadTime(text, "malformed");
  }
  size_t pos = 19;
  int64_t millis = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    size_t digits = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      if (digits < 3) millis = millis * 10 + (text[pos] - '0');
      ++digits;
      ++pos;
    }
    if (digits == 0) return BadTime(text, "empty fraction");
    for (size_t d = digits; d < 3; ++d) millis *= 10;
  }
  int offset_minutes = 0;
  if (pos >= text.size()) return BadTime(text, "missing UTC offset");
  if (text[pos] == 'Z' || text[pos] == 'z') {
    ++pos;
  } else if (text[pos] == '+' || text[pos] == '-') {
    int oh, om;
    if (!ParseDigits(text, pos + 1, 2, &oh) || pos + 3 >= text.size() || text[pos + 3] != ':' ||
        !ParseDigits(text, pos + 4, 2, &om) || oh > 23 || om > 59) {
      return BadTime(text, "malformed UTC offset");
    }
    offset_minutes = (oh * 60 + om) * (text[pos] == '-' ? -1 : 1);
    pos += 6;
  } else if (text[pos] == ' ') {
    // A `+02:00` typed into a URL: a `+` in a query string means a space.
    return BadTime(text, "a space where the UTC offset's sign belongs: in a URL, write + as %2B");
  } else {
    return BadTime(text, "malformed UTC offset");
  }
  if (pos != text.size()) return BadTime(text, "trailing characters");
  if (month < 1 || month > 12 || hour > 23 || minute > 59 || second > 59) {
    return BadTime(text, "field out of range");
  }
  date::year_month_day ymd{date::year{year}, date::month{static_cast<unsigned>(month)},
                           date::day{static_cast<unsigned>(day)}};
  if (!ymd.ok()) return BadTime(text, "no such day");
  int64_t days = date::sys_days{ymd}.time_since_epoch().count();
  int64_t secs = days * 86400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
  return secs * 1000 + millis;
}

}  // namespace

Status CheckTimeInRange(int64_t unix_ms, std::string_view text) {
  if (unix_ms >= kMinTimeMs && unix_ms <= kMaxTimeMs) return Status::Ok();
  return Status::InvalidArgument(Quoted(text, 64) +
                                 " is outside the supported times, 1970-01-01T00:00:00Z to "
                                 "9999-12-31T23:59:59.999Z (Unix ms 0 to 253402300799999)");
}

Result<int64_t> ParseTime(std::string_view text) {
  auto t = ParseUncheckedTime(text);
  if (!t.ok()) return t;
  if (Status s = CheckTimeInRange(*t, text); !s.ok()) return s;
  return t;
}

Result<MonthRange> ResolveMonth(std::string_view yyyy_mm, const date::time_zone* zone) {
  int year, month;
  if (yyyy_mm.size() != 7 || !ParseDigits(yyyy_mm, 0, 4, &year) || yyyy_mm[4] != '-' ||
      !ParseDigits(yyyy_mm, 5, 2, &month) || month < 1 || month > 12 || year < 1970) {
    return Status::InvalidArgument(Quoted(yyyy_mm, 32) +
                                   " is not a month; use YYYY-MM like 2026-10");
  }
  date::year_month first{date::year{year}, date::month{static_cast<unsigned>(month)}};
  date::year_month next = first + date::months{1};
  auto to_ms = [zone](date::year_month ym) -> int64_t {
    date::local_days local{ym / date::day{1}};
    std::chrono::sys_time<std::chrono::milliseconds> sys;
    if (zone == nullptr) {
      sys = date::sys_days{ym / date::day{1}};
    } else {
      // choose::earliest maps a skipped midnight to the instant the local day begins.
      sys = std::chrono::time_point_cast<std::chrono::milliseconds>(
          zone->to_sys(local, date::choose::earliest));
    }
    return sys.time_since_epoch().count();
  };
  try {
    return MonthRange{to_ms(first), to_ms(next)};
  } catch (const std::exception& e) {
    return Status::InvalidArgument("month \"" + std::string(yyyy_mm) + "\": " + e.what());
  }
}

std::string FormatRfc3339InZone(int64_t unix_ms, const date::time_zone* zone) {
  int64_t offset_s = 0;
  bool utc = zone == nullptr || zone->name() == "UTC" || zone->name() == "Etc/UTC";
  std::chrono::sys_time<std::chrono::milliseconds> sys{std::chrono::milliseconds{unix_ms}};
  if (!utc) {
    try {
      offset_s = zone->get_info(sys).offset.count();
    } catch (const std::exception&) {
      offset_s = 0;
    }
  }
  int64_t local_ms = unix_ms + offset_s * 1000;
  int64_t days = FloorDiv(local_ms, 86400000);
  int64_t in_day = local_ms - days * 86400000;
  date::year_month_day ymd{date::sys_days{date::days{days}}};
  char buf[64];
  int n = std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d", int(ymd.year()),
                        unsigned(ymd.month()), unsigned(ymd.day()), int(in_day / 3600000),
                        int(in_day / 60000 % 60), int(in_day / 1000 % 60));
  std::string out(buf, n);
  if (in_day % 1000 != 0) {
    std::snprintf(buf, sizeof buf, ".%03d", int(in_day % 1000));
    out += buf;
  }
  if (utc) {
    out += 'Z';
  } else {
    int64_t abs_off = offset_s < 0 ? -offset_s : offset_s;
    std::snprintf(buf, sizeof buf, "%c%02d:%02d", offset_s < 0 ? '-' : '+', int(abs_off / 3600),
                  int(abs_off / 60 % 60));
    out += buf;
  }
  return out;
}

}  // namespace stickmeter::billing
