// WriteHealth: the failed state's reason, metrics and retry delays; ProbeWritable on a full disk.
#include "tsdb/write_health.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>

#include "common/metrics.h"
#include "tests/support/small_disk.h"
#include "tests/tsdb/test_util.h"

namespace stickmeter::tsdb {
namespace {

TEST(WriteHealthTest, AnEpisodeKeepsItsReasonCountsErrorsAndBacksOff) {
  MetricsRegistry metrics;
  WriteHealth health(metrics);
  Gauge& failed = metrics.GetGauge("stickmeter_store_failed", "");
  Counter& errors = metrics.GetCounter("stickmeter_store_write_errors_total", "");
  EXPECT_TRUE(health.status().ok());
  EXPECT_EQ(0, failed.Value());
  EXPECT_NE(std::string::npos, metrics.RenderPrometheus().find("stickmeter_store_failed 0"));

  health.Failed(Status::IoError("disk full"));
  health.Failed(Status::IoError("disk still full"));
  EXPECT_EQ("disk full", health.status().message());
  EXPECT_EQ(1, failed.Value());
  EXPECT_EQ(2u, errors.Value());
  EXPECT_EQ(std::chrono::milliseconds(250), health.RetryDelay());
  for (int i = 0; i < 10; ++i) health.RetryFailed(Status::IoError("no room to reopen"));
  EXPECT_EQ("no room to reopen", health.status().message());
  EXPECT_EQ(std::chrono::milliseconds(4000), health.RetryDelay());

  health.Recovered();
  EXPECT_TRUE(health.status().ok());
  EXPECT_EQ(0, failed.Value());
  EXPECT_EQ(std::chrono::milliseconds(250), health.RetryDelay());
  EXPECT_EQ(2u, errors.Value());  // a counter: the history stays
}

TEST(WriteHealthTest, ProbeWritableFailsOnAFullDiskAndPassesOnceFreed) {
  testing::TempDir dir;
  EXPECT_TRUE(ProbeWritable(dir.path()).ok());
  stickmeter::testing::SmallDisk disk(8);
  if (!disk.mounted()) GTEST_SKIP() << disk.error();
  ASSERT_TRUE(disk.Fill());
  Status full = ProbeWritable(disk.Sub(""));
  EXPECT_NE(std::string::npos, full.message().find("no space left on the disk of"))
      << full.ToString();
  ASSERT_TRUE(disk.Free());
  EXPECT_TRUE(ProbeWritable(disk.Sub("")).ok());
  EXPECT_FALSE(std::filesystem::exists(disk.Sub("write-probe.tmp")));
}

}  // namespace
}  // namespace stickmeter::tsdb
