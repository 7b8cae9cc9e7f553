#include "common/metrics.h"

#include <cstdio>

namespace stickmeter {
namespace {

std::string EscapeLabelValue(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string RenderLabels(const MetricLabels& labels, const std::string& extra = {}) {
  if (labels.empty() && extra.empty()) return {};
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out += ',';
    first = false;
    out += k + "=\"" + EscapeLabelValue(v) + "\"";
  }
  if (!extra.empty()) {
    if (!first) out += ',';
    out += extra;
  }
  out += '}';
  return out;
}

std::string FormatBound(double b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", b);
  return buf;
}

}  // namespace

void Histogram::Observe(double seconds, uint64_t count) {
  if (count == 0) return;
  size_t i = 0;
  while (i < kBounds.size() && seconds > kBounds[i]) ++i;
  buckets_[i].fetch_add(count, std::memory_order_relaxed);
  double micros = seconds * 1e6;
  sum_micros_.fetch_add(micros > 0 ? static_cast<uint64_t>(micros) * count : 0,
                        std::memory_order_relaxed);
}

std::array<uint64_t, Histogram::kBounds.size() + 1> Histogram::Cumulative() const {
  std::array<uint64_t, kBounds.size() + 1> out{};
  uint64_t running = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    out[i] = running;
  }
  return out;
}

MetricsRegistry& MetricsRegistry::Global() {
  static MetricsRegistry* registry = new MetricsRegistry();
  return *registry;
}

MetricsRegistry::Family& MetricsRegistry::FamilyFor(const std::string& name,
                                                    const std::string& help, Kind kind) {
  auto [it, inserted] = families_.try_emplace(name);
  if (inserted) {
    it->second.kind = kind;
    it->second.help = help;
  }
  return it->second;
}

Counter& MetricsRegistry::GetCounter(const std::string& name, const std::string& help,
                                     MetricLabels labels) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto& slot = FamilyFor(name, help, Kind::kCounter).counters[std::move(labels)];
  if (!slot) slot = std::make_unique<Counter>();
  return *slot;
}

Gauge& MetricsRegistry::GetGauge(const std::string& name, const std::string& help,
                                 MetricLabels labels) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto& slot = FamilyFor(name, help, Kind::kGauge).gauges[std::move(labels)];
  if (!slot) slot = std::make_unique<Gauge>();
  return *slot;
}

Histogram& MetricsRegistry::GetHistogram(const std::string& name, const std::string& help,
                                         MetricLabels labels) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto& slot = FamilyFor(name, help, Kind::kHistogram).histograms[std::move(labels)];
  if (!slot) slot = std::make_unique<Histogram>();
  return *slot;
}

void MetricsRegistry::AddCollector(Collector collector) {
  std::lock_guard<std::mutex> lock(mutex_);
  collectors_.push_back(std::move(collector));
}

std::string MetricsRegistry::RenderPrometheus() const {
  std::string out;
  std::vector<Collector> collectors;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [name, family] : families_) {
      const char* type = family.kind == Kind::kCounter ? "counter"
                         : family.kind == Kind::kGauge ? "gauge"
                                                       : "histogram";
      out += "# HELP " + name + " " + family.help + "\n";
      out += "# TYPE " + name + " " + type + "\n";
      for (const auto& [labels, c] : family.counters) {
        out += name + RenderLabels(labels) + " " + std::to_string(c->Value()) + "\n";
      }
      for (const auto& [labels, g] : family.gauges) {
        out += name + RenderLabels(labels) + " " + std::to_string(g->Value()) + "\n";
      }
      for (const auto& [labels, h] : family.histograms) {
        auto cumulative = h->Cumulative();
        for (size_t i = 0; i < Histogram::kBounds.size(); ++i) {
          out += name + "_bucket" +
                 RenderLabels(labels, "le=\"" + FormatBound(Histogram::kBounds[i]) + "\"") + " " +
                 std::to_string(cumulative[i]) + "\n";
        }
        out += name + "_bucket" + RenderLabels(labels, "le=\"+Inf\"") + " " +
               std::to_string(cumulative.back()) + "\n";
        char sum[40];
        std::snprintf(sum, sizeof sum, "%.6f", static_cast<double>(h->SumMicros()) / 1e6);
        out += name + "_sum" + RenderLabels(labels) + " " + sum + "\n";
        out +=
            name + "_count" + RenderLabels(labels) + " " + std::to_string(cumulative.back()) + "\n";
      }
    }
    collectors = collectors_;
  }
  for (const auto& collect : collectors) collect(out);
  return out;
}

}  // namespace stickmeter
