// Implementation of teacher.h: the teacher's thread, and the quota API.
#include "teach/teacher.h"

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

#include "common/log.h"
#include "common/thread_setup.h"
#include "common/time.h"

namespace stickmeter::teach {
namespace {

constexpr std::string_view kLog = "teach";
constexpr std::string_view kQuotaPrefix = "quota/";
// Without changes the thread still wakes this often: rates change slope, entries expire,
// periods end.
constexpr int64_t kIdleWakeMs = 50;
// How often contributions of expired entries are looked for.
constexpr int64_t kExpireScanMs = 1000;
// How soon a usage read that failed is tried again.
constexpr int64_t kRetryLoadMs = 1000;
// How long a Put of a new metric, period or zone waits for its usage to be read.
constexpr auto kBaseWait = std::chrono::seconds(10);

bool ValidTableName(std::string_view name) {
  if (name.empty() || name.size() > 255) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return static_cast<unsigned char>(c) > ' ' && c != '='; });
}

bool IsCounterMetric(std::string_view m) {
  static constexpr std::string_view kCounters[] = {
      "gpc0",         "gpc1",          "conn_cnt",     "sess_cnt",      "http_req_cnt",
      "http_err_cnt", "http_fail_cnt", "bytes_in_cnt", "bytes_out_cnt", "glitch_cnt"};
  for (auto c : kCounters) {
    if (m == c) return true;
  }
  if (!m.starts_with("gpc.") || m.size() < 5 || m.size() > 6) return false;
  return std::all_of(m.begin() + 4, m.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
         !(m.size() == 6 && m[4] == '0');
}

std::string SettingName(const std::string& table, const std::string& metric,
                        const std::optional<std::string>& key) {
  return std::string(kQuotaPrefix) + table + "\n" + metric + "\n" + (key ? "=" + *key : "*");
}

std::string QuotaJson(const Quota& q) {
  nlohmann::json j = {{"table", q.table},
                      {"metric", q.metric},
                      {"limit", q.limit},
                      {"period", PeriodName(q.period)},
                      {"tz", q.tz}};
  j["key"] = q.key ? nlohmann::json(*q.key) : nlohmann::json(nullptr);
  return j.dump();
}

Result<Quota> ParseQuotaJson(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return Status::InvalidArgument("stored quota is not JSON");
  Quota q;
  try {
    q.table = j.at("table").get<std::string>();
    q.metric = j.at("metric").get<std::string>();
    q.limit = j.at("limit").get<uint64_t>();
    q.tz = j.at("tz").get<std::string>();
    if (!j.at("key").is_null()) q.key = j.at("key").get<std::string>();
    auto period = PeriodByName(j.at("period").get<std::string>());
    if (!period) return Status::InvalidArgument("stored quota has an unknown period");
    q.period = *period;
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("stored quota: ") + e.what());
  }
  return q;
}

}  // namespace

Result<std::pair<std::string, std::string>> ParseTeachPair(std::string_view text,
                                                           std::string_view suffix) {
  const size_t eq = text.find('=');
  std::string source(text.substr(0, eq));
  std::string taught = eq == std::string_view::npos ? source + std::string(suffix)
                                                    : std::string(text.substr(eq + 1));
  if (!ValidTableName(source) || !ValidTableName(taught)) {
    // Appended, not `"'" + std::string(text) + ...`: GCC 12 warns falsely (-Wrestrict) at -O3.
    return Status::InvalidArgument(
        std::string("'").append(text).append("' is not SRC[=DST] with table names as on the wire"));
  }
  if (source == taught) {
    return Status::InvalidArgument(
        std::string("'").append(text).append("' teaches a table into itself"));
  }
  return std::make_pair(std::move(source), std::move(taught));
}

Status CheckTeachPairs(const TeacherOptions& options) {
  std::vector<std::string> sources, taught;
  for (const auto* list : {&options.aggregate, &options.quota}) {
    for (const auto& [s, t] : *list) {
      sources.push_back(s);
      if (std::find(taught.begin(), taught.end(), t) != taught.end()) {
        return Status::InvalidArgument("table " + t + " is taught twice");
      }
      taught.push_back(t);
    }
  }
  for (const auto& t : taught) {
    if (std::find(sources.begin(), sources.end(), t) != sources.end()) {
      return Status::InvalidArgument("table " + t +
                                     " is taught and also a source: it would teach itself");
    }
  }
  return Status::Ok();
}

std::vector<std::string> TaughtNames(const TeacherOptions& options) {
  std::vector<std::string> names;
  for (const auto& [s, t] : options.aggregate) names.push_back(t);
  for (const auto& [s, t] : options.quota) names.push_back(t);
  return names;
}

Teacher::Teacher(TeacherOptions options, tsdb::Store& store, ingest::TaughtTables& taught)
    : options_(std::move(options)),
      store_(store),
      taught_(taught),
      over_keys_(MetricsRegistry::Global().GetGauge(
          "stickmeter_quota_keys_over", "Keys that reached a quota, over every quota table")) {
  for (const auto& [s, t] : options_.aggregate) aggregators_.emplace_back(s, t);
  for (const auto& [s, t] : options_.quota) books_.emplace_back(s, t);
}

Teacher::~Teacher() { Stop(); }

bool Teacher::Observes(const std::string& table) const {
  for (const auto* list : {&options_.aggregate, &options_.quota}) {
    for (const auto& [s, t] : *list) {
      if (s == table) return true;
    }
  }
  return false;
}

void Teacher::OnCommitted(tsdb::CommittedGroup group) {
  {
    std::lock_guard lock(inbox_mu_);
    inbox_.push_back(std::move(group));
  }
  inbox_cv_.notify_one();
}

QuotaBook* Teacher::BookFor(const std::string& table) {
  for (QuotaBook& b : books_) {
    if (b.source_table() == table) return &b;
  }
  return nullptr;
}

void Teacher::DefineFromCatalog() {
  auto tables = store_.Tables();
  if (!tables.ok()) return;
  std::lock_guard lock(mu_);
  for (const auto& t : *tables) {
    if (QuotaBook* book = BookFor(t.name)) {
      if (auto def = book->SetLayout(t.key_type, t.key_size, t.expire_ms)) taught_.Define(*def);
    }
  }
}

Status Teacher::Start() {
  DefineFromCatalog();
  auto stored = store_.Settings(kQuotaPrefix);
  if (!stored.ok()) return stored.status();
  {
    std::lock_guard lock(mu_);
    const int64_t now = NowUnixMs();
    for (const auto& [name, value] : *stored) {
      auto q = ParseQuotaJson(value);
      if (!q.ok()) return q.status();
      QuotaBook* book = BookFor(q->table);
      if (book == nullptr) {
        LogWarn(kLog, "quota of table " + q->table + " kept but not enforced: start with --quota " +
                          q->table);
        continue;
      }
      auto zone = LocateZone(q->tz);
      if (!zone.ok())
        return Status::InvalidArgument("stored quota: tz: " + zone.status().message());
      if (auto base = book->Put(*q, *zone, now)) {
        base_loads_.push_back({static_cast<size_t>(book - books_.data()), *base});
      }
    }
  }
  if (Status s = LoadBases(); !s.ok()) return s;
  {
    std::lock_guard lock(mu_);
    FlushAll(NowUnixMs());
  }
  taught_.Publish();
  thread_ = std::thread([this] {
    SetUpThisThread("sm-teacher");
    Loop();
  });
  return Status::Ok();
}

void Teacher::Stop() {
  {
    std::lock_guard lock(inbox_mu_);
    stopping_ = true;
  }
  inbox_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Status Teacher::LoadBases() {
  std::vector<BaseLoad> loads;
  {
    std::lock_guard lock(mu_);
    if (base_loads_.empty() || NowUnixMs() < retry_loads_at_ms_) return Status::Ok();
    loads.swap(base_loads_);
  }
  // Everything received before each cut is committed once Flush returns, so the usage read
  // below holds it; what commits later (received at or after the cut) the observer adds.
  store_.Flush();
  // Rows of `metric` over [from, to) of the book's source table; a table not seen yet has none.
  auto read = [&](const BaseLoad& load, int64_t from_ms, int64_t to_ms,
                  std::vector<std::pair<std::string, uint64_t>>& rows, bool zero) -> Status {
    if (to_ms <= from_ms) return Status::Ok();
    tsdb::UsageQuery q;
    {
      std::lock_guard lock(mu_);
      q.table = books_[load.book].source_table();
    }
    q.metric = load.request.metric;
    q.from_ms = from_ms;
    q.to_ms = to_ms;
    auto usage = store_.Usage(q);
    if (!usage.ok()) {
      if (usage.status().code() == Status::Code::kNotFound) return Status::Ok();
      return usage.status().WithContext("reading the usage of " + q.table + " " + q.metric +
                                        " for its quotas");
    }
    for (const auto& row : *usage) rows.emplace_back(row.key, zero ? 0 : row.total);
    return Status::Ok();
  };
  Status failed = Status::Ok();
  std::vector<BaseLoad> retry;
  for (const BaseLoad& load : loads) {
    std::vector<std::pair<std::string, uint64_t>> rows;
    // The keys with usage in the period before, at 0: a node keeps the flag it was taught then
    // until the entry expires, and a refused customer adds no usage that would teach it again.
    Status s = read(load, load.request.previous_from_ms, load.request.from_ms, rows, true);
    if (s.ok()) s = read(load, load.request.from_ms, load.request.cut_ms, rows, false);
    if (!s.ok()) {
      // Not a base of 0, which would lift every flag for the rest of the period: the tracker
      // stays without one (its keys untaught) and the read is tried again.
      if (failed.ok()) failed = s;
      retry.push_back(load);
      continue;
    }
    std::lock_guard lock(mu_);
    books_[load.book].SetBase(load.request.tracker, rows, load.request.from_ms);
    ++bases_loaded_;
  }
  {
    std::lock_guard lock(mu_);
    if (!retry.empty()) {
      base_loads_.insert(base_loads_.begin(), retry.begin(), retry.end());
      retry_loads_at_ms_ = NowUnixMs() + kRetryLoadMs;
      if (!loads_failing_) LogError(kLog, failed.message() + " (tried again every second)");
    } else if (loads_failing_) {
      LogInfo(kLog, "usage for quotas read again");
    }
    loads_failing_ = !retry.empty();
  }
  base_cv_.notify_all();
  return failed;
}

void Teacher::Apply(const tsdb::CommittedGroup& group) {
  size_t next_key = 0;  // into group.entry_keys
  for (const auto& batch : group.batches) {
    if (batch.source_restarted) {
      for (Aggregator& a : aggregators_) a.RestartSource(batch.source);
    }
    for (const auto& tu : batch.tables) {
      if (!tu.table) continue;
      const ingest::TableInfo& info = *tu.table;
      const size_t first_key = next_key;
      next_key += tu.entries.size();
      if (next_key > group.entry_keys.size()) return;  // not from the store: nothing to trust
      for (Aggregator& a : aggregators_) {
        if (a.source_table() != info.name) continue;
        if (auto def = a.Layout(tu.table, NowUnixMs())) taught_.Define(*def);
        const uint32_t source = a.SourceId(batch.source);
        for (size_t e = 0; e < tu.entries.size(); ++e) {
          a.Apply(source, tu.entries[e], group.entry_keys[first_key + e]);
        }
      }
      if (QuotaBook* book = BookFor(info.name)) {
        if (auto def = book->SetLayout(info.key_type, info.key_size, info.expire_ms)) {
          taught_.Define(*def);
        }
      }
    }
  }
  const ingest::TableInfo* last_table = nullptr;
  QuotaBook* book = nullptr;
  for (const auto& d : group.deltas) {
    // Deltas come table by table: resolve the book once per run of the same table.
    const ingest::TableInfo* table = group.table_of(d).table.get();
    if (table != last_table) {
      last_table = table;
      book = BookFor(table->name);
    }
    if (book == nullptr) continue;
    const ingest::EntryUpdate& entry = group.entry_of(d);
    book->Apply(entry.key, group.value_of(d).metric, d.delta, entry.received_ms, d.key);
  }
}

int64_t NextWindowMs(const TeacherOptions& options, size_t taught) {
  if (options.max_taught_per_second == 0) return options.window_ms;
  const auto spread = static_cast<int64_t>(std::min<uint64_t>(taught, UINT64_MAX / 1000) * 1000 /
                                           options.max_taught_per_second);
  return std::clamp(spread, options.window_ms, std::max(options.window_ms, options.max_window_ms));
}

size_t Teacher::FlushAll(int64_t now_ms) {
  if (now_ms - last_expire_ms_ >= kExpireScanMs) {
    for (Aggregator& a : aggregators_) a.Expire(now_ms, taught_);
    last_expire_ms_ = now_ms;
  }
  size_t taught = 0;
  for (Aggregator& a : aggregators_) taught += a.Flush(now_ms, taught_);
  uint64_t over = 0;
  for (QuotaBook& b : books_) {
    taught += b.Flush(now_ms, taught_);
    over += b.over_keys();
  }
  over_keys_.Set(static_cast<int64_t>(over));
  return taught;
}

void Teacher::Loop() {
  int64_t last_flush = 0;
  int64_t window_ms = options_.window_ms;  // NextWindowMs of the recent flushes
  size_t taught_per_flush = 0;             // entries taught by the recent flushes
  int64_t last_refresh = NowUnixMs();
  bool pending = false;                      // applied changes not taught yet
  std::vector<tsdb::CommittedGroup> groups;  // emptied each turn, its room kept for the inbox
  for (;;) {
    {
      std::unique_lock lock(inbox_mu_);
      const int64_t wait_ms =
          pending ? std::max<int64_t>(0, last_flush + window_ms - NowUnixMs()) : kIdleWakeMs;
      // Groups are applied as they come, while the window only delays teaching them: a group
      // left in the inbox for a whole window is cold in the cache by then, and a window's worth
      // of batches (tens of MiB at full ingest) held at once makes the heap grow and shrink.
      inbox_cv_.wait_for(lock, std::chrono::milliseconds(wait_ms),
                         [&] { return stopping_ || wake_ || !inbox_.empty(); });
      if (stopping_) return;
      wake_ = false;
      groups.swap(inbox_);
    }
    (void)LoadBases();  // a failure is logged, and tried again
    const int64_t now = NowUnixMs();
    bool taught = false;  // something for the sessions to send
    {
      std::lock_guard lock(mu_);
      for (const auto& g : groups) Apply(g);
      pending = pending || !groups.empty();
      if (now - last_flush >= window_ms) {
        // Smoothed, so that one burst (nodes connecting, every key first taught) does not
        // stretch the windows right after it.
        taught_per_flush = (3 * taught_per_flush + FlushAll(now)) / 4;
        window_ms = NextWindowMs(options_, taught_per_flush);
        last_flush = now;
        pending = false;
        taught = true;
      }
    }
    for (auto& g : groups) store_.Recycle(std::move(g));
    groups.clear();
    if (now - last_refresh >= options_.refresh_ms) {
      taught_.TouchAll(0);
      last_refresh = now;
      taught = true;
    }
    if (taught) taught_.Publish();
  }
}

// ---- QuotaService ----

Status Teacher::Validate(const Quota& q, const date::time_zone** zone) {
  QuotaBook* book = BookFor(q.table);
  if (book == nullptr) {
    return Status::InvalidArgument(
        "table: " + q.table + " has no quotas taught; start stickmeter with --quota " + q.table);
  }
  if (!IsCounterMetric(q.metric)) {
    return Status::InvalidArgument("metric: '" + q.metric +
                                   "' is not a counter (gpc0, gpc1, gpc.N, http_req_cnt, "
                                   "bytes_out_cnt, ...)");
  }
  if (q.key && q.key->empty()) return Status::InvalidArgument("key: must not be empty");
  auto z = LocateZone(q.tz);
  if (!z.ok()) return Status::InvalidArgument("tz: " + z.status().message());
  *zone = *z;
  return Status::Ok();
}

Result<QuotaStatus> Teacher::Put(const Quota& quota) {
  std::lock_guard change(change_mu_);
  const date::time_zone* zone = nullptr;
  {
    std::lock_guard lock(mu_);
    if (Status s = Validate(quota, &zone); !s.ok()) return s;
  }
  if (Status s = store_.WriteSetting(SettingName(quota.table, quota.metric, quota.key),
                                     QuotaJson(quota), NowUnixMs());
      !s.ok()) {
    return s;
  }
  std::unique_lock lock(mu_);
  QuotaBook* book = BookFor(quota.table);
  // A new tracker's base holds what was received up to its put's millisecond, the commits
  // applied later the rest. A delta of that very millisecond may have been applied before the
  // tracker existed, so the put waits for the next millisecond: a delta received from then on
  // is applied after the tracker exists (applying one needs mu_, held here).
  const int64_t now = NowUnixMs();
  while (NowUnixMs() <= now) std::this_thread::sleep_for(std::chrono::microseconds(100));
  if (auto base = book->Put(quota, zone, now)) {
    base_loads_.push_back({static_cast<size_t>(book - books_.data()), *base});
    const uint64_t ticket = bases_loaded_ + base_loads_.size();
    {
      std::lock_guard inbox(inbox_mu_);
      wake_ = true;
    }
    inbox_cv_.notify_one();
    base_cv_.wait_for(lock, kBaseWait, [&] { return bases_loaded_ >= ticket; });
  } else {
    std::lock_guard inbox(inbox_mu_);
    wake_ = true;
    inbox_cv_.notify_one();
  }
  auto status = book->Find(quota.metric, quota.key);
  if (!status) return Status::Internal("quota vanished while being put");
  return *status;
}

Status Teacher::Delete(const std::string& table, const std::string& metric,
                       const std::optional<std::string>& key) {
  std::lock_guard change(change_mu_);
  {
    std::lock_guard lock(mu_);
    QuotaBook* book = BookFor(table);
    if (book == nullptr || !book->Find(metric, key)) {
      return Status::NotFound("no quota of " + metric + " for " +
                              (key ? "key '" + *key + "'" : std::string("the default")) +
                              " in table " + table);
    }
  }
  if (Status s = store_.WriteSetting(SettingName(table, metric, key), std::nullopt, NowUnixMs());
      !s.ok()) {
    return s;
  }
  {
    std::lock_guard lock(mu_);
    BookFor(table)->Delete(metric, key);
  }
  {
    std::lock_guard inbox(inbox_mu_);
    wake_ = true;
  }
  inbox_cv_.notify_one();
  return Status::Ok();
}

Result<std::vector<QuotaStatus>> Teacher::List(const std::optional<std::string>& table,
                                               const std::optional<std::string>& key) {
  std::lock_guard lock(mu_);
  std::vector<QuotaStatus> out;
  for (const QuotaBook& b : books_) {
    if (table && b.source_table() != *table) continue;
    auto rows = b.List(key);
    out.insert(out.end(), rows.begin(), rows.end());
  }
  return out;
}

Result<std::vector<KeyQuotaStatus>> Teacher::Keys(const std::optional<std::string>& table,
                                                  const std::optional<std::string>& key,
                                                  size_t limit) {
  std::vector<KeyQuotaStatus> out;
  {
    std::lock_guard lock(mu_);
    for (const QuotaBook& b : books_) {
      if (table && b.source_table() != *table) continue;
      for (KeyQuotaStatus& row : b.Keys()) {
        if (!key || row.key == *key) out.push_back(std::move(row));
      }
    }
  }
  // Over quota first, then nearest to the limit, then by key.
  auto share = [](const KeyQuotaStatus& k) {
    return k.limit == 0 ? 1e300 : double(k.used) / double(k.limit);
  };
  std::sort(out.begin(), out.end(), [&](const auto& a, const auto& b) {
    if (a.over != b.over) return a.over;
    if (share(a) != share(b)) return share(a) > share(b);
    return std::tie(a.table, a.key, a.metric) < std::tie(b.table, b.key, b.metric);
  });
  if (out.size() > limit) out.resize(limit);
  return out;
}

Result<std::vector<QuotaChange>> Teacher::History(const std::optional<std::string>& table,
                                                  size_t limit) {
  const std::string prefix = std::string(kQuotaPrefix) + (table ? *table + "\n" : "");
  auto changes = store_.SettingHistory(prefix, limit);
  if (!changes.ok()) return changes.status();
  std::vector<QuotaChange> out;
  for (const auto& c : *changes) {
    auto q = ParseQuotaJson(c.value);
    if (!q.ok()) return q.status();
    out.push_back(QuotaChange{c.t_ms, c.deleted ? "delete" : "put", std::move(*q)});
  }
  return out;
}

}  // namespace stickmeter::teach
