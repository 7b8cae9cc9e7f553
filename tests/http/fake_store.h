// An in-memory QueryService for the http tests: holds a list of audit events and derives every
// answer from them (usage, series, export, keys) exactly as the QueryService contract states,
// so the tests can check the HTTP layer against sums they compute independently.
// Thread-safe (a mutex around everything); owns its data.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>

#include "tsdb/query.h"

namespace stickmeter::http::testing {

struct FakeEvent {
  std::string table, key, source, metric;
  int64_t t_ms = 0;
  uint64_t value = 0, delta = 0;
  std::string reason = "increment";
};

class FakeStore : public tsdb::QueryService {
 public:
  void AddTable(tsdb::TableSummary t) {
    std::lock_guard<std::mutex> lock(mu_);
    tables_.push_back(std::move(t));
  }
  void Add(FakeEvent e) {
    std::lock_guard<std::mutex> lock(mu_);
    e.reason = e.reason.empty() ? "increment" : e.reason;
    events_.push_back(std::move(e));
    sorted_ = false;
  }
  // Makes every later call fail with `s` (fault injection).
  void FailWith(Status s) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_ = std::move(s);
  }
  int export_calls() const { return export_calls_; }
  // Makes Export sleep this long before each row, so tests can act while an export runs.
  void SlowExport(std::chrono::microseconds per_row) { export_row_delay_us_ = per_row.count(); }
  // Makes Export fail with `s` after emitting `rows` rows, as a store failing mid-stream would.
  void FailExportAfter(size_t rows, Status s) {
    std::lock_guard<std::mutex> lock(mu_);
    export_fail_after_ = rows;
    export_fail_ = std::move(s);
  }

  Result<std::vector<tsdb::UsageRow>> Usage(const tsdb::UsageQuery& q) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto s = Check(q.table, q.metric); !s.ok()) return s;
    std::map<std::string, uint64_t> totals;
    for (const auto& e : events_) {
      if (e.table != q.table || e.metric != q.metric || e.t_ms < q.from_ms || e.t_ms >= q.to_ms)
        continue;
      if (q.key && e.key != *q.key) continue;
      if (q.source && e.source != *q.source) continue;
      totals[e.key] += e.delta;
    }
    std::vector<tsdb::UsageRow> rows;
    for (auto& [k, v] : totals)
      if (v != 0) rows.push_back({k, v});
    return rows;
  }

  Result<tsdb::Series> GetSeries(const tsdb::SeriesQuery& q) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto s = Check(q.table, q.metric); !s.ok()) return s;
    tsdb::Series series;
    series.step_ms = q.step_ms != 0 ? q.step_ms : 3'600'000;
    std::map<int64_t, uint64_t> steps;
    for (const auto& e : events_) {
      if (e.table != q.table || e.metric != q.metric || e.key != q.key || e.t_ms < q.from_ms ||
          e.t_ms >= q.to_ms)
        continue;
      if (q.source && e.source != *q.source) continue;
      int64_t t = e.t_ms - ((e.t_ms % series.step_ms) + series.step_ms) % series.step_ms;
      steps[t] += e.delta;
    }
    for (auto& [t, v] : steps) series.points.push_back({t, v});
    return series;
  }

  Result<std::vector<tsdb::AuditEvent>> Audit(const tsdb::AuditQuery& q) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!fail_.ok()) return fail_;
    if (!HasTable(q.table)) return Status::NotFound("table: no table \"" + q.table + "\"");
    Sort();
    std::vector<tsdb::AuditEvent> out;
    for (size_t i = 0; i < events_.size() && out.size() < q.limit; ++i) {
      const auto& e = events_[i];
      if (e.table != q.table || e.key != q.key || e.t_ms < q.from_ms || e.t_ms >= q.to_ms) continue;
      if (q.metric && e.metric != *q.metric) continue;
      uint64_t seq = i;
      if (q.after && std::make_pair(e.t_ms, seq) <= *q.after) continue;
      out.push_back({e.t_ms, seq, e.source, e.metric, e.value, e.delta, e.reason});
    }
    return out;
  }

  Result<std::vector<tsdb::TableSummary>> Tables() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!fail_.ok()) return fail_;
    return tables_;
  }

  Result<std::vector<std::string>> Keys(const std::string& table, const std::string& prefix,
                                        size_t limit) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!fail_.ok()) return fail_;
    if (!HasTable(table)) return Status::NotFound("table: no table \"" + table + "\"");
    std::set<std::string> keys;
    for (const auto& e : events_)
      if (e.table == table && e.key.starts_with(prefix)) keys.insert(e.key);
    std::vector<std::string> out(keys.begin(), keys.end());
    if (out.size() > limit) out.resize(limit);
    return out;
  }

  Status Export(const tsdb::ExportQuery& q,
                const std::function<bool(const tsdb::ExportRow&)>& emit) override {
    std::map<std::tuple<std::string, std::string, std::string, std::string>, uint64_t> totals;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++export_calls_;
      if (!fail_.ok()) return fail_;
      for (const auto& e : events_) {
        if (e.t_ms < q.from_ms || e.t_ms >= q.to_ms) continue;
        if (q.table && e.table != *q.table) continue;
        if (q.metric && e.metric != *q.metric) continue;
        if (!IsCounter(e.table, e.metric)) continue;
        totals[{e.table, e.key, e.metric, q.per_source ? e.source : ""}] += e.delta;
      }
    }
    size_t emitted = 0;
    for (auto& [k, v] : totals) {
      if (v == 0) continue;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (!export_fail_.ok() && emitted == export_fail_after_) return export_fail_;
      }
      ++emitted;
      if (int64_t us = export_row_delay_us_.load(); us > 0) {
        std::this_thread::sleep_for(std::chrono::microseconds(us));
      }
      tsdb::ExportRow row{std::get<0>(k), std::get<1>(k), std::get<2>(k), std::get<3>(k), v};
      if (!emit(row)) return Status::Ok();
    }
    return Status::Ok();
  }

  Result<tsdb::StoreStats> Stats() override { return tsdb::StoreStats{}; }
  // Coverage as if every source of the events was connected from its first event on, always.
  Result<tsdb::Coverage> GetCoverage(const tsdb::CoverageQuery& q) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!fail_.ok()) return fail_;
    std::map<std::string, int64_t> first;
    for (const auto& e : events_) {
      auto [it, fresh] = first.try_emplace(e.source, e.t_ms);
      if (!fresh) it->second = std::min(it->second, e.t_ms);
    }
    if (q.source && first.count(*q.source) == 0) {
      return Status::NotFound("source: unknown source \"" + *q.source + "\"");
    }
    tsdb::Coverage c;
    c.from_ms = q.from_ms;
    c.to_ms = q.to_ms;
    const auto status_from = [&](int64_t since) {
      if (since >= q.to_ms) return tsdb::CoverageStatus::kNone;
      return since <= q.from_ms ? tsdb::CoverageStatus::kComplete : tsdb::CoverageStatus::kPartial;
    };
    for (const auto& [source, since] : first) {
      if (q.source && source != *q.source) continue;
      tsdb::SourceCoverage s;
      s.source = source;
      s.first_seen_ms = since;
      s.connected = true;
      s.status = status_from(since);
      if (c.first_seen_ms == 0 || since < c.first_seen_ms) c.first_seen_ms = since;
      c.sources.push_back(std::move(s));
    }
    c.status = c.first_seen_ms == 0 ? tsdb::CoverageStatus::kNone : status_from(c.first_seen_ms);
    if (c.status != tsdb::CoverageStatus::kNone) {
      c.covered_ms = q.to_ms - std::max(q.from_ms, c.first_seen_ms);
    }
    return c;
  }

 private:
  bool HasTable(const std::string& name) const {
    for (const auto& t : tables_)
      if (t.name == name) return true;
    return false;
  }
  bool IsCounter(const std::string& table, const std::string& metric) const {
    for (const auto& t : tables_)
      if (t.name == table)
        return std::find(t.counter_metrics.begin(), t.counter_metrics.end(), metric) !=
               t.counter_metrics.end();
    return false;
  }
  Status Check(const std::string& table, const std::string& metric) const {
    if (!fail_.ok()) return fail_;
    if (!HasTable(table)) return Status::NotFound("table: no table \"" + table + "\"");
    for (const auto& t : tables_) {
      if (t.name != table) continue;
      bool known = std::count(t.counter_metrics.begin(), t.counter_metrics.end(), metric) +
                       std::count(t.gauge_metrics.begin(), t.gauge_metrics.end(), metric) >
                   0;
      if (!known) return Status::NotFound("metric: no metric \"" + metric + "\"");
    }
    return Status::Ok();
  }
  void Sort() {
    if (sorted_) return;
    std::stable_sort(events_.begin(), events_.end(),
                     [](const FakeEvent& a, const FakeEvent& b) { return a.t_ms < b.t_ms; });
    sorted_ = true;
  }

  std::mutex mu_;
  std::vector<tsdb::TableSummary> tables_;
  std::vector<FakeEvent> events_;
  bool sorted_ = false;
  Status fail_;
  size_t export_fail_after_ = 0;
  Status export_fail_;
  int export_calls_ = 0;
  std::atomic<int64_t> export_row_delay_us_{0};
};

// A table "/quota" of string keys with counters gpc0 and http_req_cnt and gauge conn_cur.
inline tsdb::TableSummary QuotaTable() {
  tsdb::TableSummary t;
  t.name = "/quota";
  t.key_type = "string";
  t.key_size = 65;
  t.expire_ms = 86'400'000;
  t.data_types = {"gpc0", "http_req_cnt", "conn_cur"};
  t.counter_metrics = {"gpc0", "http_req_cnt"};
  t.gauge_metrics = {"conn_cur"};
  t.sources = {"lb1", "lb2"};
  return t;
}

}  // namespace stickmeter::http::testing
