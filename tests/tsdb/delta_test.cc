// The counting rules of docs/counting.md, one at a time, on the pure delta function.
#include "tsdb/delta.h"

#include <gtest/gtest.h>

#include <string>

namespace stickmeter::tsdb {
namespace {

using format::SeriesValue;

// "delta/reason -> last@ms,conn,epoch", e.g. "5/increment -> 10@2000,1,0".
std::string Render(const DeltaResult& r) {
  return std::to_string(r.delta) + "/" + std::string(format::ReasonName(r.reason)) + " -> " +
         std::to_string(r.next.last) + "@" + std::to_string(r.next.last_ms) + "," +
         std::to_string(r.next.connection_id) + "," + std::to_string(r.next.epoch);
}

DeltaInput In(uint64_t value, int64_t t, uint64_t conn = 1, uint32_t epoch = 0,
              uint64_t expire_ms = 0, bool c32 = true) {
  return DeltaInput{value, c32, t, conn, epoch, expire_ms, 1000};
}

TEST(DeltaEngineTest, FirstValueCountsWhole) {
  EXPECT_EQ("7/first -> 7@1000,1,0", Render(ComputeDelta(std::nullopt, In(7, 1000))));
}

TEST(DeltaEngineTest, IncrementAndRepeatYieldsNothing) {
  SeriesValue prev{10, 1000, 1, 0};
  EXPECT_EQ("5/increment -> 15@2000,1,0", Render(ComputeDelta(prev, In(15, 2000))));
  EXPECT_EQ("0/increment -> 10@3000,1,0", Render(ComputeDelta(prev, In(10, 3000))));
}

TEST(DeltaEngineTest, RestartEpochCountsFromZero) {
  SeriesValue prev{10, 1000, 1, 0};
  // Even a value above the last one is counted whole: the new process started from 0.
  EXPECT_EQ("12/restart -> 12@2000,2,1", Render(ComputeDelta(prev, In(12, 2000, 2, 1))));
  EXPECT_EQ("3/restart -> 3@2000,2,1", Render(ComputeDelta(prev, In(3, 2000, 2, 1))));
}

TEST(DeltaEngineTest, ExpiredOnSameConnectionOnly) {
  SeriesValue prev{10, 1000, 1, 0};
  // expire 10 s + 1 s margin: a gap of 11.001 s on the same connection means a new entry.
  EXPECT_EQ("12/expired -> 12@12001,1,0", Render(ComputeDelta(prev, In(12, 12001, 1, 0, 10000))));
  // Exactly expire + margin is not yet expired.
  EXPECT_EQ("2/increment -> 12@12000,1,0", Render(ComputeDelta(prev, In(12, 12000, 1, 0, 10000))));
  // After a reconnect arrival times say nothing: increment decides.
  EXPECT_EQ("2/increment -> 12@99000,2,0", Render(ComputeDelta(prev, In(12, 99000, 2, 0, 10000))));
  // expire 0 never expires.
  EXPECT_EQ("2/increment -> 12@9999999,1,0", Render(ComputeDelta(prev, In(12, 9999999, 1, 0, 0))));
}

TEST(DeltaEngineTest, WrapOfCounter32) {
  SeriesValue prev{4294967290u, 1000, 1, 0};
  EXPECT_EQ("10/wrap -> 4@2000,1,0", Render(ComputeDelta(prev, In(4, 2000))));
  // The same drop on a 64-bit counter is a reset.
  EXPECT_EQ("4/reset -> 4@2000,1,0",
            Render(ComputeDelta(prev, In(4, 2000, 1, 0, 0, /*c32=*/false))));
}

TEST(DeltaEngineTest, ResetWhenLastInLowerHalf) {
  SeriesValue prev{1000, 1000, 1, 0};
  EXPECT_EQ("3/reset -> 3@2000,1,0", Render(ComputeDelta(prev, In(3, 2000))));
}

TEST(DeltaEngineTest, NoWrapWhenEntryMayHaveExpiredAcrossReconnect) {
  SeriesValue prev{4294967290u, 1000, 1, 0};
  // Reconnected and the gap exceeds expire: the entry may have been recreated -> reset.
  EXPECT_EQ("4/reset -> 4@60000,2,0", Render(ComputeDelta(prev, In(4, 60000, 2, 0, 10000))));
  // Within expire on another connection: still a wrap.
  EXPECT_EQ("10/wrap -> 4@5000,2,0", Render(ComputeDelta(prev, In(4, 5000, 2, 0, 10000))));
}

TEST(DeltaEngineTest, RuleOrderRestartBeforeExpired) {
  SeriesValue prev{10, 1000, 1, 0};
  EXPECT_EQ("5/restart -> 5@90000,1,1", Render(ComputeDelta(prev, In(5, 90000, 1, 1, 10000))));
}

}  // namespace
}  // namespace stickmeter::tsdb
