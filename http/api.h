// Request routing and the JSON handlers of docs/api.md, independent of any socket.
//
// Api::Handle() maps one parsed request to one response: the JSON endpoints under /api/v1,
// /metrics, and the web UI's files, each a row of the route table (http/routes.h) whose handler
// returns its response or its refusal as a value. An export answers with headers only and a
// ResolvedExport for the server to stream (billing/export.h). Every parameter is validated; errors
// are `{"error":{"code":"...","message":"<parameter>: <why>"}}` with the status mapping documented
// in docs/api.md, built in Handle() alone. No exception escapes Handle().
//
// Thread-safety: every method is const and may run concurrently on any thread (the server
// calls Handle() on its I/O threads and, for queries, on its query threads). The store and
// the hooks are borrowed and must outlive the Api.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "billing/export.h"
#include "common/metrics.h"
#include "http/guards.h"
#include "http/server.h"
#include "tsdb/query.h"

namespace stickmeter::http {

namespace internal {
template <typename T>
class ApiResult;
}  // namespace internal

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;

// Limits on query results.
inline constexpr size_t kMaxKeysLimit = 100'000;  // keys?limit=
inline constexpr size_t kDefaultKeysLimit = 1'000;
inline constexpr size_t kMaxAuditLimit = 10'000;  // audit?limit=
inline constexpr size_t kDefaultAuditLimit = 1'000;
inline constexpr size_t kMaxQuotaKeysLimit = 10'000;  // quotas/keys?limit=
inline constexpr size_t kDefaultQuotaKeysLimit = 100;
inline constexpr size_t kMaxQuotaHistoryLimit = 10'000;  // quotas/history?limit=
inline constexpr size_t kDefaultQuotaHistoryLimit = 100;
inline constexpr size_t kMaxQuotaBodyBytes = 16 * 1024;  // PUT /api/v1/quotas
inline constexpr int64_t kMaxSeriesPoints = 100'000;     // (to - from) / step
inline constexpr size_t kMaxUsageLimit = 100'000;        // usage?limit= (default: every row)
// What one page of keys (usage, keys) holds, counting each key's bytes as JSON
// (JsonStringBoundBytes: a control byte takes six) and kListRowOverheadBytes: keys may be up to 1
// MiB, so a page ends early past it (with the cursor or offset of the next page), and a reply's
// memory is bounded in bytes, not only in rows.
inline constexpr size_t kMaxListReplyBytes = 8u << 20;
inline constexpr size_t kListRowOverheadBytes = 48;

struct ApiReply {
  Response response;
  // When set, `response` holds the headers of a 200 whose body is this export, to be streamed
  // by the caller; the caller adds the body framing and the X-Content-SHA256 trailer.
  std::optional<billing::ResolvedExport> export_job;
  // Bounded label for the request metrics: the route ("/api/v1/usage"), "ui" or "other".
  std::string route;
};

class Api {
 public:
  Api(const ServerOptions& options, tsdb::QueryService& store, const ServerHooks& hooks);

  ApiReply Handle(const Request& request) const;

  // True when answering `request` reads the store or the quota service (usage, series, audit,
  // tables, keys, quotas, export resolution) and it is allowed and authenticated: the server
  // runs such a request on its query pool. Everything else (health, peers, metrics, the UI's
  // files, every refusal) is answered at once on the I/O thread.
  bool IsQuery(const Request& request) const;

  // The error response Handle() would send for a refusal decided outside it (503 busy,
  // 504 timeout): JSON error shape, CORS headers, keep-alive and Content-Length set.
  Response Refuse(const Request& request, boost::beast::http::status status, std::string_view code,
                  std::string_view message) const;

  // A complete error response in the API's JSON shape, with the security headers of
  // SetSecurityHeaders (http/guards.h).
  static Response Error(unsigned version, boost::beast::http::status status, std::string_view code,
                        std::string_view message);

 private:
  // The table's rules, then the route's handler; `export_job` is set by the export's.
  internal::ApiResult<Response> Route(const Request& request,
                                      std::optional<billing::ResolvedExport>& export_job) const;
  void Finish(const Request& request, ApiReply& reply) const;
  // False when the request must be refused 421 (see ServerOptions::allowed_hosts).
  bool HostAccepted(const Request& request) const;
  // The Access-Control-Allow-Origin for this request ("*" or its Origin), or empty when CORS
  // does not allow it (see ServerOptions::cors_origins).
  std::string_view CorsOrigin(const Request& request) const;

  const ServerOptions& options_;
  const HostPolicy hosts_;
  tsdb::QueryService& store_;
  const ServerHooks& hooks_;
};

// True when `header` (an Accept-Encoding value) accepts gzip.
bool AcceptsGzip(std::string_view header);

// Decompresses a gzip member. Returns nullopt on malformed input.
std::optional<std::string> Gunzip(std::string_view data);

// Constant-time check of an Authorization header against `Bearer <token>`.
bool BearerMatches(std::string_view authorization, std::string_view token);

}  // namespace stickmeter::http
