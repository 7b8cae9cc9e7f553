// What the sink's lag metric shows once ClickHouse confirmed a batch: the age of the batch's last
// event while more waits behind it (a full batch), 0 once caught up, and 0 for backfill batches.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "sink/clickhouse_sink.h"

namespace stickmeter::sink {
namespace {

tsdb::FeedBatch BatchOf(int n, int64_t first_ms, bool backfill = false) {
  tsdb::FeedBatch b;
  for (int i = 0; i < n; ++i) {
    tsdb::FeedEvent e;
    e.seq = static_cast<uint64_t>(i + 1);
    e.t_ms = first_ms + i * 10;
    b.events.push_back(e);
  }
  b.backfill = backfill;
  return b;
}

TEST(SinkLagTest, AFullBatchLeavesTheAgeOfItsLastEvent) {
  ClickHouseSinkOptions o;
  o.max_rows = 3;
  const auto batch = BatchOf(3, 1'000'000);
  ASSERT_TRUE(internal::BatchIsFull(batch, 100, o));
  EXPECT_EQ(1'000'020, internal::LagFromAfterInsert(batch, true));
}

TEST(SinkLagTest, ABatchFullByBytesCountsAsFull) {
  ClickHouseSinkOptions o;
  o.max_rows = 50;
  o.max_bytes = 1000;
  const auto batch = BatchOf(2, 5'000);
  EXPECT_FALSE(internal::BatchIsFull(batch, 999, o));
  ASSERT_TRUE(internal::BatchIsFull(batch, 1000, o));
  EXPECT_EQ(5'010, internal::LagFromAfterInsert(batch, true));
}

TEST(SinkLagTest, APartBatchMeansCaughtUp) {
  ClickHouseSinkOptions o;
  o.max_rows = 3;
  const auto batch = BatchOf(2, 1'000'000);
  ASSERT_FALSE(internal::BatchIsFull(batch, 100, o));
  EXPECT_EQ(0, internal::LagFromAfterInsert(batch, false));
}

TEST(SinkLagTest, BackfillBatchesShowNoLag) {
  ClickHouseSinkOptions o;
  o.max_rows = 3;
  const auto batch = BatchOf(3, 1'000'000, /*backfill=*/true);
  ASSERT_TRUE(internal::BatchIsFull(batch, 100, o));
  EXPECT_EQ(0, internal::LagFromAfterInsert(batch, true));
}

}  // namespace
}  // namespace stickmeter::sink
