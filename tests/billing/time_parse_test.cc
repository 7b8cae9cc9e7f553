#include "billing/time_parse.h"

#include <date/tz.h>
#include <gtest/gtest.h>

namespace stickmeter::billing {
namespace {

int64_t T(std::string_view text) {
  auto r = ParseTime(text);
  EXPECT_TRUE(r.ok()) << text << ": " << r.status().ToString();
  return r.ok() ? *r : 0;
}

const date::time_zone* Zone(std::string_view name) {
  auto z = LocateZone(name);
  EXPECT_TRUE(z.ok()) << name;
  return z.ok() ? *z : nullptr;
}

TEST(TimeParseTest, UnixMilliseconds) {
  EXPECT_EQ(1790812800000, T("1790812800000"));
  EXPECT_EQ(0, T("0"));
  EXPECT_EQ(253402300799999, T("253402300799999"));
}

TEST(TimeParseTest, Rfc3339WithOffsets) {
  EXPECT_EQ(1790812800000, T("2026-10-01T00:00:00Z"));
  EXPECT_EQ(1790812800000, T("2026-10-01t00:00:00z"));
  EXPECT_EQ(1790805600000, T("2026-10-01T00:00:00+02:00"));
  EXPECT_EQ(1790812800000 + 5 * 3600000, T("2026-10-01T00:00:00-05:00"));
  EXPECT_EQ(1790812800000 - (5 * 60 + 45) * 60000, T("2026-10-01T00:00:00+05:45"));
  EXPECT_EQ(1709210096789, T("2024-02-29T12:34:56.789Z"));
  EXPECT_EQ(1709210096789, T("2024-02-29T12:34:56.789999Z"));  // truncated, not rounded
  EXPECT_EQ(1709210096500, T("2024-02-29T12:34:56.5Z"));
  EXPECT_EQ(0, T("1970-01-01T01:00:00+01:00"));
  EXPECT_EQ(253402300799999, T("9999-12-31T23:59:59.999Z"));
}

// Only 1970-01-01 to 9999-12-31: the store keys minutes since the epoch in 32 bits, and a time
// outside the span would wrap onto other buckets. The reason says what the span is.
TEST(TimeParseTest, RejectsTimesOutsideTheSupportedSpan) {
  for (const char* outside :
       {"-1", "253402300800000", "9223372036854775807", "-9223372036854775808",
        "1969-12-31T23:59:59.999Z", "0000-01-01T00:00:00Z", "1970-01-01T00:59:59+01:00",
        "9999-12-31T23:59:59.999-00:01", "9999-12-31T23:00:00-05:00"}) {
    auto r = ParseTime(outside);
    ASSERT_FALSE(r.ok()) << outside << " -> " << *r;
    EXPECT_TRUE(r.status().IsInvalidArgument());
    EXPECT_NE(std::string::npos, r.status().message().find("outside the supported times"))
        << r.status().message();
    EXPECT_NE(std::string::npos, r.status().message().find(outside)) << r.status().message();
  }
  EXPECT_TRUE(CheckTimeInRange(kMinTimeMs, "0").ok());
  EXPECT_TRUE(CheckTimeInRange(kMaxTimeMs, "x").ok());
  EXPECT_FALSE(CheckTimeInRange(kMaxTimeMs + 1, "x").ok());
  EXPECT_FALSE(CheckTimeInRange(kMinTimeMs - 1, "x").ok());
}

TEST(TimeParseTest, RejectsMalformed) {
  for (const char* bad :
       {"", "yesterday", "2026-10-01", "2026-10-01T00:00:00", "2026-13-01T00:00:00Z",
        "2026-02-29T00:00:00Z", "2026-10-01T24:00:00Z", "2026-10-01T00:00:00+2:00",
        "2026-10-01T00:00:00.Z", "2026-10-01T00:00:00Zjunk", "12e5", "99999999999999999999",
        "2026-10-01T00:00:60Z", "--1"}) {
    auto r = ParseTime(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_TRUE(r.status().IsInvalidArgument());
    }
  }
}

// `from=2026-10-01T00:00:00+02:00` in a URL arrives with a space for the `+`: the message says
// how to write it.
TEST(TimeParseTest, PlusDecodedAsSpaceHintsAtPercentEncoding) {
  auto r = ParseTime("2026-10-01T00:00:00 02:00");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(std::string::npos, r.status().message().find("%2B")) << r.status().message();
  EXPECT_EQ(std::string::npos,
            ParseTime("2026-10-01T00:00:00+2:00").status().message().find("%2B"));
}

TEST(TimeParseTest, Zones) {
  EXPECT_TRUE(LocateZone("Europe/Berlin").ok());
  EXPECT_TRUE(LocateZone("UTC").ok());
  EXPECT_FALSE(LocateZone("Mars/Olympus").ok());
  EXPECT_FALSE(LocateZone("../../etc/passwd").ok());
  EXPECT_FALSE(LocateZone("/etc/localtime").ok());
  EXPECT_FALSE(LocateZone("").ok());
}

TEST(TimeParseTest, MonthsAcrossDst) {
  // Berlin: CEST (+02:00) on Oct 1, CET (+01:00) on Nov 1 (DST ends 2026-10-25).
  auto m = ResolveMonth("2026-10", Zone("Europe/Berlin"));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(T("2026-09-30T22:00:00Z"), m->start_ms);
  EXPECT_EQ(T("2026-10-31T23:00:00Z"), m->end_ms);
  // New York: EDT on Nov 1 at midnight (DST ends at 02:00 that day), EST on Dec 1.
  m = ResolveMonth("2026-11", Zone("America/New_York"));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(T("2026-11-01T04:00:00Z"), m->start_ms);
  EXPECT_EQ(T("2026-12-01T05:00:00Z"), m->end_ms);
  // March: New York springs forward on the 8th.
  m = ResolveMonth("2026-03", Zone("America/New_York"));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(T("2026-03-01T05:00:00Z"), m->start_ms);
  EXPECT_EQ(T("2026-04-01T04:00:00Z"), m->end_ms);
  m = ResolveMonth("2026-10", Zone("Asia/Kathmandu"));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(T("2026-09-30T18:15:00Z"), m->start_ms);
  m = ResolveMonth("2026-12", nullptr);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(T("2026-12-01T00:00:00Z"), m->start_ms);
  EXPECT_EQ(T("2027-01-01T00:00:00Z"), m->end_ms);
}

TEST(TimeParseTest, SkippedMidnightStartsTheDay) {
  // Paraguay moved its clocks from 00:00 to 01:00 on 2017-10-01: October began at 01:00 local.
  auto z = Zone("America/Asuncion");
  auto m = ResolveMonth("2017-10", z);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(T("2017-10-01T04:00:00Z"), m->start_ms);
  EXPECT_EQ("2017-10-01T01:00:00-03:00", FormatRfc3339InZone(m->start_ms, z));
}

TEST(TimeParseTest, MonthErrors) {
  for (const char* bad : {"2026-13", "2026-1", "26-10", "2026/10", "2026-10-01", "1969-12"}) {
    EXPECT_FALSE(ResolveMonth(bad, nullptr).ok()) << bad;
  }
}

TEST(TimeParseTest, FormatsInZone) {
  EXPECT_EQ("2026-10-01T00:00:00Z", FormatRfc3339InZone(T("2026-10-01T00:00:00Z"), nullptr));
  EXPECT_EQ("2026-10-01T00:00:00Z", FormatRfc3339InZone(T("2026-10-01T00:00:00Z"), Zone("UTC")));
  EXPECT_EQ("2026-10-01T00:00:00+02:00",
            FormatRfc3339InZone(T("2026-09-30T22:00:00Z"), Zone("Europe/Berlin")));
  EXPECT_EQ("2026-11-01T00:00:00+01:00",
            FormatRfc3339InZone(T("2026-10-31T23:00:00Z"), Zone("Europe/Berlin")));
  EXPECT_EQ("2026-10-01T00:00:00+05:45",
            FormatRfc3339InZone(T("2026-09-30T18:15:00Z"), Zone("Asia/Kathmandu")));
  EXPECT_EQ("2026-11-01T00:00:00-04:00",
            FormatRfc3339InZone(T("2026-11-01T04:00:00Z"), Zone("America/New_York")));
  EXPECT_EQ("2026-10-01T00:00:00.250Z", FormatRfc3339InZone(T("2026-10-01T00:00:00.25Z"), nullptr));
  EXPECT_EQ("1969-12-31T23:59:59.999Z", FormatRfc3339InZone(-1, nullptr));
  // Round trip through the parser in every zone.
  for (const char* zone : {"Europe/Berlin", "America/New_York", "Asia/Kathmandu", "UTC"}) {
    for (int64_t t = T("2026-10-24T00:00:00Z"); t < T("2026-11-03T00:00:00Z"); t += 1'234'567) {
      EXPECT_EQ(t, T(FormatRfc3339InZone(t, Zone(zone)))) << zone << " " << t;
    }
  }
}

}  // namespace
}  // namespace stickmeter::billing
