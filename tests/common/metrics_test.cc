#include "common/metrics.h"

#include <gtest/gtest.h>

namespace stickmeter {
namespace {

TEST(MetricsRegistryTest, RendersCountersGaugesAndHistograms) {
  MetricsRegistry registry;
  registry.GetCounter("t_updates_total", "Updates.", {{"peer", "lb1"}}).Inc(3);
  registry.GetCounter("t_updates_total", "Updates.", {{"peer", "lb1"}}).Inc(2);
  registry.GetGauge("t_peers", "Peers.").Set(2);
  Histogram& h = registry.GetHistogram("t_latency_seconds", "Latency.");
  h.Observe(0.0002);
  h.Observe(2.0);
  registry.AddCollector([](std::string& out) { out += "t_extra 1\n"; });
  std::string text = registry.RenderPrometheus();
  EXPECT_NE(text.find("# TYPE t_updates_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("t_updates_total{peer=\"lb1\"} 5\n"), std::string::npos);
  EXPECT_NE(text.find("t_peers 2\n"), std::string::npos);
  EXPECT_NE(text.find("t_latency_seconds_bucket{le=\"0.00025\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("t_latency_seconds_bucket{le=\"+Inf\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("t_latency_seconds_count 2\n"), std::string::npos);
  EXPECT_NE(text.find("t_extra 1\n"), std::string::npos);
}

// Observing a value N times at once is the same as N single observations: buckets, count, sum.
TEST(MetricsRegistryTest, ARunOfEqualObservationsCountsEachOfThem) {
  MetricsRegistry one_by_one, at_once;
  Histogram& a = one_by_one.GetHistogram("t_lag_seconds", "Lag.");
  Histogram& b = at_once.GetHistogram("t_lag_seconds", "Lag.");
  for (int i = 0; i < 7; ++i) a.Observe(0.012);
  a.Observe(3.5);
  b.Observe(0.012, 7);
  b.Observe(3.5, 1);
  b.Observe(9.0, 0);  // nothing observed
  EXPECT_EQ(one_by_one.RenderPrometheus(), at_once.RenderPrometheus());
  EXPECT_EQ(a.Cumulative(), b.Cumulative());
  EXPECT_EQ(8u, b.Cumulative().back());
}

}  // namespace
}  // namespace stickmeter
