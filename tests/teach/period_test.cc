// Quota periods: calendar days and months in IANA zones, across DST changes and half-hour
// offsets; zone names are never paths.
#include "teach/period.h"

#include <gtest/gtest.h>

namespace stickmeter::teach {
namespace {

constexpr int64_t kHour = 3'600'000;

// Instants (Unix ms) of 2026 in UTC.
constexpr int64_t k0301 = 1'772'323'200'000;      // 2026-03-01T00:00Z
constexpr int64_t k0315Noon = 1'773'576'000'000;  // 2026-03-15T12:00Z
constexpr int64_t k0401 = 1'775'001'600'000;      // 2026-04-01T00:00Z
constexpr int64_t k0329Noon = 1'774'785'600'000;  // 2026-03-29T12:00Z
constexpr int64_t k1025Noon = 1'792'929'600'000;  // 2026-10-25T12:00Z
constexpr int64_t k0610h20 = 1'781'121'600'000;   // 2026-06-10T20:00Z
constexpr int64_t k0228h23 = 1'772'319'600'000;   // 2026-02-28T23:00Z
constexpr int64_t k0331h22 = 1'774'994'400'000;   // 2026-03-31T22:00Z

const date::time_zone* Zone(std::string_view name) {
  auto z = LocateZone(name);
  EXPECT_TRUE(z.ok()) << name << ": " << z.status().ToString();
  return z.ok() ? *z : nullptr;
}

TEST(PeriodTest, PeriodNames) {
  EXPECT_EQ(std::optional<Period>(Period::kMonth), PeriodByName("month"));
  EXPECT_EQ(std::optional<Period>(Period::kDay), PeriodByName("day"));
  EXPECT_FALSE(PeriodByName("week").has_value());
  EXPECT_FALSE(PeriodByName("Month").has_value());
  EXPECT_EQ("month", PeriodName(Period::kMonth));
  EXPECT_EQ("day", PeriodName(Period::kDay));
}

TEST(PeriodTest, UtcMonthAndDay) {
  const auto* utc = Zone("UTC");
  ASSERT_NE(nullptr, utc);
  PeriodRange m = PeriodAt(Period::kMonth, utc, k0315Noon);
  EXPECT_EQ(k0301, m.start_ms);
  EXPECT_EQ(k0401, m.end_ms);
  PeriodRange d = PeriodAt(Period::kDay, utc, k0315Noon);
  EXPECT_EQ(k0315Noon - 12 * kHour, d.start_ms);
  EXPECT_EQ(k0315Noon + 12 * kHour, d.end_ms);
}

TEST(PeriodTest, BoundaryInstantBelongsToTheNewPeriod) {
  const auto* utc = Zone("UTC");
  ASSERT_NE(nullptr, utc);
  PeriodRange april = PeriodAt(Period::kMonth, utc, k0401);
  EXPECT_EQ(k0401, april.start_ms);
  PeriodRange march = PeriodAt(Period::kMonth, utc, k0401 - 1);
  EXPECT_EQ(k0301, march.start_ms);
  EXPECT_EQ(k0401, march.end_ms);
  PeriodRange day = PeriodAt(Period::kDay, utc, k0401);
  EXPECT_EQ(k0401, day.start_ms);
  EXPECT_EQ(k0401 + 24 * kHour, day.end_ms);
  EXPECT_EQ(k0401 - 24 * kHour, PeriodAt(Period::kDay, utc, k0401 - 1).start_ms);
}

TEST(PeriodTest, BerlinAcrossDaylightSavingTime) {
  const auto* berlin = Zone("Europe/Berlin");
  ASSERT_NE(nullptr, berlin);
  // 2026-03-29: clocks go from 02:00 CET to 03:00 CEST; the day lasts 23 h.
  PeriodRange spring = PeriodAt(Period::kDay, berlin, k0329Noon);
  EXPECT_EQ(k0329Noon - 13 * kHour, spring.start_ms);  // 2026-03-28T23:00Z = 00:00 CET
  EXPECT_EQ(k0329Noon + 10 * kHour, spring.end_ms);    // 2026-03-29T22:00Z = 00:00 CEST
  EXPECT_EQ(23 * kHour, spring.end_ms - spring.start_ms);
  // 2026-10-25: back from 03:00 CEST to 02:00 CET; the day lasts 25 h.
  PeriodRange autumn = PeriodAt(Period::kDay, berlin, k1025Noon);
  EXPECT_EQ(k1025Noon - 14 * kHour, autumn.start_ms);  // 2026-10-24T22:00Z = 00:00 CEST
  EXPECT_EQ(k1025Noon + 11 * kHour, autumn.end_ms);    // 2026-10-25T23:00Z = 00:00 CET
  EXPECT_EQ(25 * kHour, autumn.end_ms - autumn.start_ms);
  // March in Berlin starts in CET and ends in CEST.
  PeriodRange march = PeriodAt(Period::kMonth, berlin, k0315Noon);
  EXPECT_EQ(k0228h23, march.start_ms);
  EXPECT_EQ(k0331h22, march.end_ms);
  // 2026-03-31T22:30Z is already April in Berlin.
  EXPECT_EQ(k0331h22, PeriodAt(Period::kMonth, berlin, k0331h22 + kHour / 2).start_ms);
  EXPECT_EQ(k0331h22, PeriodAt(Period::kMonth, berlin, k0331h22).start_ms);
  EXPECT_EQ(k0228h23, PeriodAt(Period::kMonth, berlin, k0331h22 - 1).start_ms);
}

TEST(PeriodTest, KolkataHalfHourOffset) {
  const auto* kolkata = Zone("Asia/Kolkata");
  ASSERT_NE(nullptr, kolkata);
  // 2026-06-10T20:00Z is 2026-06-11 01:30 IST (+05:30): the day began at 2026-06-10T18:30Z.
  PeriodRange d = PeriodAt(Period::kDay, kolkata, k0610h20);
  EXPECT_EQ(k0610h20 - kHour - kHour / 2, d.start_ms);
  EXPECT_EQ(d.start_ms + 24 * kHour, d.end_ms);
  // One ms before local midnight belongs to the day before.
  PeriodRange before = PeriodAt(Period::kDay, kolkata, d.start_ms - 1);
  EXPECT_EQ(d.start_ms, before.end_ms);
  // Its month began at 2026-06-01 00:00 IST = 2026-05-31T18:30Z.
  PeriodRange m = PeriodAt(Period::kMonth, kolkata, k0610h20);
  EXPECT_EQ(1'780'272'000'000 - 5 * kHour - kHour / 2, m.start_ms);
  EXPECT_EQ(1'782'864'000'000 - 5 * kHour - kHour / 2, m.end_ms);
}

TEST(PeriodTest, LocateZoneAcceptsOnlyIanaNames) {
  EXPECT_TRUE(LocateZone("UTC").ok());
  EXPECT_TRUE(LocateZone("Europe/Berlin").ok());
  EXPECT_TRUE(LocateZone("America/Argentina/Buenos_Aires").ok());
  using namespace std::string_view_literals;
  for (std::string_view bad :
       {"../etc/passwd"sv, "/etc/localtime"sv, "Europe/../../etc/passwd"sv, ""sv,
        "Mars/Olympus_Mons"sv, "Europe/Berlin "sv, "Europe\\Berlin"sv, "UTC\n"sv, "UTC\0x"sv}) {
    auto z = LocateZone(bad);
    ASSERT_FALSE(z.ok()) << bad;
    EXPECT_EQ(Status::Code::kInvalidArgument, z.status().code()) << bad;
  }
  EXPECT_FALSE(LocateZone(std::string(65, 'A')).ok());
}

}  // namespace
}  // namespace stickmeter::teach
