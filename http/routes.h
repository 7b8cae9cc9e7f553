// The route table of the API (docs/api.md): every path the server answers, with its methods,
// whether its handler reads the store (and so runs on the query pool), whether it needs the
// token, its label in the request metrics, and its handler. Api (http/api.cc) looks a request
// up here, applies the table's rules (Host, methods, CORS preflight, authentication) and calls
// the handler; an ApiError the handler returns becomes the JSON error reply there, in one place.
// Not part of the http library's interface.
//
// Thread-safety: the table is constant; handlers are free functions that may run concurrently
// on any thread (the I/O threads, or the query threads for `query` routes). Ownership: a
// handler borrows everything through its RouteContext, for the call only.
// Failure: a handler returns its refusal as an ApiError (400 naming the parameter, 404, 503...);
// no handler throws to refuse.
#pragma once

#include <optional>
#include <string_view>

#include "billing/export.h"
#include "http/api.h"
#include "http/api_util.h"
#include "http/server.h"
#include "tsdb/query.h"

namespace stickmeter::http::internal {

// What a handler may use.
struct RouteContext {
  const Request& request;
  std::string_view path;
  std::string_view query;  // the raw query string, without '?'
  const ServerOptions& options;
  tsdb::QueryService& store;
  const ServerHooks& hooks;
  // Set by the export handler only: the export the server streams after the headers.
  std::optional<billing::ResolvedExport>& export_job;
};

using Handler = ApiResult<Response> (*)(const RouteContext&);

// The methods of a route: GET and HEAD; exports GET only (they stream); quotas also PUT and
// DELETE. OPTIONS answers CORS preflights everywhere.
enum class Methods { kRead, kExport, kReadWrite };

struct Route {
  std::string_view path;
  bool prefix;  // matches every path starting with `path`, else exactly `path`
  Methods methods;
  bool query;              // reads the store or the quota service: runs on the query pool
  bool open;               // answered without the token (health, the UI's files)
  std::string_view label;  // the request metrics' `route` label
  Handler handler;         // nullptr: no such endpoint (404), before any other check
};

// The route of `path` (without the query string): the first row that matches, in table order;
// nullptr for a path that is not absolute.
const Route* FindRoute(std::string_view path);

bool MethodAllowed(boost::beast::http::verb method, Methods methods);

// The /api/v1/quotas routes (http/quota_handlers.cc).
ApiResult<Response> HandleQuotas(const RouteContext& ctx);
ApiResult<Response> HandleQuotaKeys(const RouteContext& ctx);
ApiResult<Response> HandleQuotaHistory(const RouteContext& ctx);

// GET /api/v1/names (http/names_handler.cc).
ApiResult<Response> HandleNames(const RouteContext& ctx);

}  // namespace stickmeter::http::internal
