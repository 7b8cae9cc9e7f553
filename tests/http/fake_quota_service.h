// An in-memory QuotaService for the http tests. It checks what a real one checks against its
// tables — the table is taught, the metric is a counter of that table, the time zone exists —
// with InvalidArgument messages that start with the field, and derives every status from usage
// the test sets per (table, key, metric). Thread-safe (a mutex around everything).
#pragma once

#include <date/tz.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <tuple>

#include "billing/time_parse.h"
#include "teach/quota.h"

namespace stickmeter::http::testing {

class FakeQuotaService : public teach::QuotaService {
 public:
  // Makes `table` taught, counting `metrics`.
  void Teach(const std::string& table, std::set<std::string> metrics) {
    std::lock_guard<std::mutex> lock(mu_);
    tables_[table] = std::move(metrics);
  }
  // The usage of `key` in the current period.
  void SetUsed(const std::string& table, const std::string& key, const std::string& metric,
               uint64_t used) {
    std::lock_guard<std::mutex> lock(mu_);
    used_[{table, key, metric}] = used;
  }
  void SetNow(int64_t now_ms) {
    std::lock_guard<std::mutex> lock(mu_);
    now_ms_ = now_ms;
  }
  // Makes every later call fail with `s` (fault injection).
  void FailWith(Status s) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_ = std::move(s);
  }

  Result<teach::QuotaStatus> Put(const teach::Quota& q) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!fail_.ok()) return fail_;
    auto table = tables_.find(q.table);
    if (table == tables_.end()) {
      return Status::InvalidArgument("table: \"" + q.table +
                                     "\" is not taught (start stickmeter serve --quota " + q.table +
                                     ")");
    }
    if (!table->second.contains(q.metric)) {
      return Status::InvalidArgument("metric: \"" + q.metric + "\" is not a counter of " + q.table);
    }
    auto zone = billing::LocateZone(q.tz);
    if (!zone.ok()) return zone.status().WithContext("tz");
    const teach::Quota& stored = quotas_[{q.table, q.metric, q.key}] = q;
    history_.push_back({now_ms_, "put", q});
    return StatusOf(stored);
  }

  Status Delete(const std::string& table, const std::string& metric,
                const std::optional<std::string>& key) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!fail_.ok()) return fail_;
    auto it = quotas_.find({table, metric, key});
    if (it == quotas_.end()) {
      return Status::NotFound("quota: none for table " + table + ", metric " + metric +
                              (key ? ", key " + *key : ", the table's default"));
    }
    history_.push_back({now_ms_, "delete", it->second});
    quotas_.erase(it);
    return Status::Ok();
  }

  Result<std::vector<teach::QuotaStatus>> List(const std::optional<std::string>& table,
                                               const std::optional<std::string>& key) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!fail_.ok()) return fail_;
    std::vector<teach::QuotaStatus> out;
    for (const auto& [id, q] : quotas_) {
      if (table && q.table != *table) continue;
      if (key && q.key && *q.key != *key) continue;
      out.push_back(StatusOf(q));
    }
    return out;
  }

  Result<std::vector<teach::KeyQuotaStatus>> Keys(const std::optional<std::string>& table,
                                                  const std::optional<std::string>& only_key,
                                                  size_t limit) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!fail_.ok()) return fail_;
    std::vector<teach::KeyQuotaStatus> out;
    for (const auto& [id, used] : used_) {
      const auto& [t, key, metric] = id;
      if ((table && t != *table) || (only_key && key != *only_key)) continue;
      const teach::Quota* q = Governing(t, key, metric);
      if (q == nullptr) continue;
      out.push_back({t, key, metric, q->limit, used, used >= q->limit, !q->key});
    }
    std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
      if (a.over != b.over) return a.over;
      // used/limit descending, without floating point: a.used * b.limit > b.used * a.limit.
      return static_cast<unsigned __int128>(a.used) * b.limit >
             static_cast<unsigned __int128>(b.used) * a.limit;
    });
    if (out.size() > limit) out.resize(limit);
    return out;
  }

  Result<std::vector<teach::QuotaChange>> History(const std::optional<std::string>& table,
                                                  size_t limit) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!fail_.ok()) return fail_;
    std::vector<teach::QuotaChange> out;
    for (const auto& c : history_) {
      if (!table || c.quota.table == *table) out.push_back(c);
    }
    if (out.size() > limit) out.erase(out.begin(), out.end() - static_cast<ptrdiff_t>(limit));
    return out;
  }

 private:
  using Id = std::tuple<std::string, std::string, std::optional<std::string>>;

  // The key's own quota of `metric`, else the table's default. REQUIRES(mu_)
  const teach::Quota* Governing(const std::string& table, const std::string& key,
                                const std::string& metric) const {
    auto own = quotas_.find({table, metric, key});
    if (own != quotas_.end()) return &own->second;
    auto def = quotas_.find({table, metric, std::nullopt});
    return def == quotas_.end() ? nullptr : &def->second;
  }

  teach::QuotaStatus StatusOf(const teach::Quota& q) const {  // REQUIRES(mu_)
    teach::QuotaStatus s;
    s.quota = q;
    if (q.key) {
      auto it = used_.find({q.table, *q.key, q.metric});
      s.used = it == used_.end() ? 0 : it->second;
      s.over = s.used >= q.limit;
    } else {
      for (const auto& [id, used] : used_) {
        const auto& [t, key, metric] = id;
        if (t == q.table && metric == q.metric && Governing(t, key, metric) == &q &&
            used >= q.limit) {
          ++s.over_keys;
        }
      }
    }
    // The current calendar period in the quota's zone.
    const date::time_zone* zone = *billing::LocateZone(q.tz);
    auto local =
        date::make_zoned(
            zone, date::sys_time<std::chrono::milliseconds>(std::chrono::milliseconds(now_ms_)))
            .get_local_time();
    auto day = date::floor<date::days>(local);
    date::local_days start = day, end = day + date::days(1);
    if (q.period == teach::Period::kMonth) {
      date::year_month_day ymd(day);
      start = date::local_days(ymd.year() / ymd.month() / 1);
      end = date::local_days((ymd.year() / ymd.month() + date::months(1)) / 1);
    }
    auto ms = [zone](date::local_days d) {
      return std::chrono::duration_cast<std::chrono::milliseconds>(
                 zone->to_sys(d, date::choose::earliest).time_since_epoch())
          .count();
    };
    s.period_start_ms = ms(start);
    s.period_end_ms = ms(end);
    return s;
  }

  std::mutex mu_;
  std::map<std::string, std::set<std::string>> tables_;                         // GUARDED_BY(mu_)
  std::map<Id, teach::Quota> quotas_;                                           // GUARDED_BY(mu_)
  std::map<std::tuple<std::string, std::string, std::string>, uint64_t> used_;  // GUARDED_BY(mu_)
  std::vector<teach::QuotaChange> history_;                                     // GUARDED_BY(mu_)
  int64_t now_ms_ = 1'790'812'800'000;  // 2026-10-01T00:00:00Z; GUARDED_BY(mu_)
  Status fail_;                         // GUARDED_BY(mu_)
};

}  // namespace stickmeter::http::testing
