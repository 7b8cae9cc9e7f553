// Implementation of query_checks.h.
#include "http/query_checks.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <vector>

#include "common/json_writer.h"
#include "http/api_util.h"

namespace stickmeter::http::internal {

using nlohmann::json;

namespace {

// Names are echoed back in messages; a pasted megabyte must not come back whole.
std::string Quoted(const std::string& name) {
  return "\"" + (name.size() > 128 ? name.substr(0, 128) + "..." : name) + "\"";
}

ApiError NotFound(std::string message) {
  return ApiError{bhttp::status::not_found, "not_found", std::move(message)};
}

bool Contains(const std::vector<std::string>& list, const std::string& name) {
  return std::find(list.begin(), list.end(), name) != list.end();
}

}  // namespace

ApiResult<tsdb::TableSummary> FindTable(tsdb::QueryService& store, const std::string& table) {
  API_ASSIGN_OR_RETURN(auto tables, store.Tables());
  for (auto& t : tables) {
    if (t.name == table) return std::move(t);
  }
  return NotFound("table: unknown table " + Quoted(table));
}

ApiCheck RequireKnownKey(tsdb::QueryService& store, const std::string& table,
                         const std::string& key) {
  // A key is the smallest string that starts with itself: when the table has it, it is the
  // first key of that prefix.
  API_ASSIGN_OR_RETURN(auto keys, store.Keys(table, key, 1));
  if (keys.empty() || keys.front() != key) {
    return NotFound("key: unknown key " + Quoted(key) + " in table " + Quoted(table) +
                    " (never seen from any HAProxy node; check the spelling)");
  }
  return std::nullopt;
}

ApiCheck RequireKnownSource(const tsdb::TableSummary& table, const std::string& source) {
  if (Contains(table.sources, source)) return std::nullopt;
  std::string known;
  for (const auto& s : table.sources) known += (known.empty() ? "" : ", ") + s;
  return NotFound("source: unknown source " + Quoted(source) + " for table " + Quoted(table.name) +
                  " (its sources: " + (known.empty() ? "none yet" : known) + ")");
}

ApiCheck RequireNotGauge(const tsdb::TableSummary& table, const std::string& metric,
                         std::string_view why) {
  if (!Contains(table.gauge_metrics, metric)) return std::nullopt;
  return BadRequest("metric: " + Quoted(metric) + " is a gauge; " + std::string(why));
}

ApiCheck RequireKnownNames(tsdb::QueryService& store, const std::string& table,
                           const std::optional<std::string>& key,
                           const std::optional<std::string>& source) {
  if (key) API_TRY(RequireKnownKey(store, table, *key));
  if (source) {
    API_ASSIGN_OR_RETURN(const tsdb::TableSummary summary, FindTable(store, table));
    API_TRY(RequireKnownSource(summary, *source));
  }
  return std::nullopt;
}

ApiResult<Response> HandleKeys(tsdb::QueryService& store, unsigned version,
                               std::string_view query) {
  API_ASSIGN_OR_RETURN(const Params params,
                       Params::Parse(query, {"table", "prefix", "limit", "after"}));
  API_ASSIGN_OR_RETURN(const std::string table, params.Required("table"));
  const std::string prefix = params.Get("prefix").value_or("");
  API_ASSIGN_OR_RETURN(const size_t limit, params.Limit(kDefaultKeysLimit, kMaxKeysLimit));
  std::optional<std::string> cursor = params.Get("after");
  // Keys may be up to the table's key size (1 MiB on the wire): they are read in batches no
  // larger in bytes than what is left of the page's budget, and the page ends once its keys
  // reach kMaxListReplyBytes, with `next` set as for a full page.
  API_ASSIGN_OR_RETURN(const tsdb::TableSummary summary, FindTable(store, table));
  // As JSON, a key of key_size bytes takes at most 6 bytes a byte (\u00xx) and its quotes.
  const size_t longest = 6 * size_t{summary.key_size} + 2 + kListRowOverheadBytes;
  std::vector<std::string> keys;
  size_t bytes = 0;
  bool truncated = false;
  while (keys.size() < limit) {
    const size_t room = kMaxListReplyBytes > bytes ? kMaxListReplyBytes - bytes : 0;
    const size_t batch =
        std::clamp<size_t>(room / longest, 1, std::min<size_t>(limit - keys.size(), 4096));
    // One more than asked tells whether another page follows without a second query.
    API_ASSIGN_OR_RETURN(auto got, cursor ? store.KeysAfter(table, prefix, *cursor, batch + 1)
                                          : store.Keys(table, prefix, batch + 1));
    const bool more = got.size() > batch;
    if (more) got.resize(batch);
    for (auto& key : got) {
      if (keys.size() == limit || (!keys.empty() && bytes >= kMaxListReplyBytes)) {
        truncated = true;
        break;
      }
      bytes += JsonStringBoundBytes(key) + kListRowOverheadBytes;
      keys.push_back(std::move(key));
    }
    if (truncated || !more) break;
    cursor = keys.back();
    if (keys.size() == limit || bytes >= kMaxListReplyBytes) {
      truncated = true;
      break;
    }
  }
  json next = truncated ? json(keys.back()) : json(nullptr);
  return JsonResponse(version, {{"table", table},
                                {"keys", std::move(keys)},
                                {"truncated", truncated},
                                {"next", std::move(next)}});
}

}  // namespace stickmeter::http::internal
