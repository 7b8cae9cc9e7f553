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

}  // namespace
}  // namespace stickmeter
