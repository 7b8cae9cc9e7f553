// Catalog checks of the read handlers (http/api.cc) and the /api/v1/keys route: they tell a name
// the store has never seen from one that simply has no data in the range, so a misspelt key or
// source is answered 404 naming it instead of an empty 200 that reads as "zero usage", and a
// gauge given where only counters make sense is a 400 saying so.
//
// Thread-safety: free functions over the borrowed QueryService, safe on any thread (the server
// calls them on its query threads). Failure: every check returns its ApiError (http/api_util.h)
// with the parameter named first; store errors map as internal::FromStatus does. Not part of the
// http library's interface.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "http/api.h"
#include "http/api_util.h"
#include "tsdb/query.h"

namespace stickmeter::http::internal {

// The table's summary from the store's catalog; 404 "table: ..." when the store has no such
// table.
ApiResult<tsdb::TableSummary> FindTable(tsdb::QueryService& store, const std::string& table);

// 404 "key: ..." unless the store has seen `key` in `table` (at any time: a key without data in
// a range is known, and answers empty).
ApiCheck RequireKnownKey(tsdb::QueryService& store, const std::string& table,
                         const std::string& key);

// 404 "source: ..." unless `source` is one of the HAProxy nodes that sent `table`.
ApiCheck RequireKnownSource(const tsdb::TableSummary& table, const std::string& source);

// 400 "metric: ... is a gauge" when `metric` is one of the table's gauges; `why` ends the
// message ("the audit trail covers counters"). Unknown metrics are left to the store (404).
ApiCheck RequireNotGauge(const tsdb::TableSummary& table, const std::string& metric,
                         std::string_view why);

// The checks of one key's usage, series or audit: RequireKnownKey when `key` is given,
// RequireKnownSource when `source` is. The key is checked first: it is what users type.
ApiCheck RequireKnownNames(tsdb::QueryService& store, const std::string& table,
                           const std::optional<std::string>& key,
                           const std::optional<std::string>& source);

// GET /api/v1/keys: one page of a table's keys, resumed after the `after` cursor.
ApiResult<Response> HandleKeys(tsdb::QueryService& store, unsigned version, std::string_view query);

}  // namespace stickmeter::http::internal
