// Quotas: usage limits per key (or per table, as the default of its keys) over a calendar
// period, enforced by HAProxy from the flags stickmeter teaches it (docs/quotas.md).
//
// QuotaService is what the HTTP API consumes; the teacher (teach/teacher.h) implements it. A
// quota is identified by (table, metric, key), `key` absent for the table's default. A key's
// own quota of a metric wins over the table's default of that metric.
//
// Thread-safety: every method may be called from any thread.
// Failures: InvalidArgument whose message starts with the name of the bad field
// ("limit: must be ...") for a bad quota; NotFound for deleting what does not exist; IoError
// from the store.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace stickmeter::teach {

enum class Period { kMonth, kDay };

struct Quota {
  std::string table;               // the source table as on the wire, "/q"
  std::optional<std::string> key;  // nullopt: the default of every key of the table
  std::string metric;              // a counter: "http_req_cnt", "gpc0", "gpc.1", ...
  uint64_t limit = 0;              // the key is over quota once its usage reaches this
  Period period = Period::kMonth;
  std::string tz = "UTC";  // IANA zone the period's calendar is in
};

struct QuotaStatus {
  Quota quota;
  // For a key's own quota: that key's usage in the current period, and whether it reached the
  // limit. For a table default: the number of keys it governs that are over, in `over_keys`.
  uint64_t used = 0;
  bool over = false;
  uint64_t over_keys = 0;
  int64_t period_start_ms = 0;  // the current period, [start, end)
  int64_t period_end_ms = 0;
};

// One key's standing against the quotas that govern it (its own, else the table defaults).
struct KeyQuotaStatus {
  std::string table;
  std::string key;
  std::string metric;
  uint64_t limit = 0;
  uint64_t used = 0;
  bool over = false;
  bool is_default = false;  // governed by the table's default quota
};

struct QuotaChange {
  int64_t t_ms = 0;
  std::string action;  // "put" | "delete"
  Quota quota;         // as put, or as it was when deleted
};

std::string_view PeriodName(Period period);

class QuotaService {
 public:
  virtual ~QuotaService() = default;
  // Creates or replaces the quota (table, metric, key). Returns it as listed.
  virtual Result<QuotaStatus> Put(const Quota& quota) = 0;
  virtual Status Delete(const std::string& table, const std::string& metric,
                        const std::optional<std::string>& key) = 0;
  // Quotas of `table` (every table if nullopt); with `key`, that key's own quotas and the
  // defaults of its table.
  virtual Result<std::vector<QuotaStatus>> List(const std::optional<std::string>& table,
                                                const std::optional<std::string>& key) = 0;
  // Keys governed by a quota in `table` (every taught table if nullopt), `key` only if given,
  // over quota first, then by usage relative to the limit, at most `limit` rows.
  virtual Result<std::vector<KeyQuotaStatus>> Keys(const std::optional<std::string>& table,
                                                   const std::optional<std::string>& key,
                                                   size_t limit) = 0;
  // Changes of quotas, oldest first, the last `limit` of them.
  virtual Result<std::vector<QuotaChange>> History(const std::optional<std::string>& table,
                                                   size_t limit) = 0;
};

}  // namespace stickmeter::teach
