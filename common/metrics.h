// A process-wide registry of Prometheus metrics.
//
// Components register counters, gauges and histograms once (at construction) and keep the
// returned reference; updating one is a relaxed atomic operation, cheap enough for hot paths.
// References stay valid for the life of the process. Collectors are callbacks run at scrape
// time for values that are cheaper to read on demand (e.g. RocksDB sizes). Thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace stickmeter {

// `{name="value",...}` pairs, already sorted by the caller's choice of order.
using MetricLabels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void Inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Gauge {
 public:
  void Set(int64_t v) { value_.store(v, std::memory_order_relaxed); }
  void Add(int64_t n) { value_.fetch_add(n, std::memory_order_relaxed); }
  int64_t Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

// Fixed buckets in seconds, from 100 µs to 10 s.
class Histogram {
 public:
  static constexpr std::array<double, 12> kBounds = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                     0.01,   0.025,   0.05,   0.1,   1.0,    10.0};
  void Observe(double seconds) { Observe(seconds, 1); }
  // `count` observations of the same value, for the cost of one.
  void Observe(double seconds, uint64_t count);
  // Cumulative counts per bound, then +Inf; sum in microseconds.
  std::array<uint64_t, kBounds.size() + 1> Cumulative() const;
  uint64_t SumMicros() const { return sum_micros_.load(std::memory_order_relaxed); }

 private:
  std::array<std::atomic<uint64_t>, kBounds.size() + 1> buckets_{};
  std::atomic<uint64_t> sum_micros_{0};
};

class MetricsRegistry {
 public:
  static MetricsRegistry& Global();

  // Returns the metric with this name and labels, creating it on first use. `help` is kept from
  // the first registration of `name`.
  Counter& GetCounter(const std::string& name, const std::string& help, MetricLabels labels = {});
  Gauge& GetGauge(const std::string& name, const std::string& help, MetricLabels labels = {});
  Histogram& GetHistogram(const std::string& name, const std::string& help,
                          MetricLabels labels = {});

  // A collector appends complete exposition lines (with its own # HELP/# TYPE) to `out`.
  using Collector = std::function<void(std::string& out)>;
  void AddCollector(Collector collector);

  // Prometheus text exposition format 0.0.4.
  std::string RenderPrometheus() const;

 private:
  enum class Kind { kCounter, kGauge, kHistogram };
  struct Family {
    Kind kind;
    std::string help;
    std::map<MetricLabels, std::unique_ptr<Counter>> counters;
    std::map<MetricLabels, std::unique_ptr<Gauge>> gauges;
    std::map<MetricLabels, std::unique_ptr<Histogram>> histograms;
  };
  Family& FamilyFor(const std::string& name, const std::string& help, Kind kind);

  mutable std::mutex mutex_;
  std::map<std::string, Family> families_;  // GUARDED_BY(mutex_)
  std::vector<Collector> collectors_;       // GUARDED_BY(mutex_)
};

}  // namespace stickmeter
