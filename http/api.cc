#include "http/api.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <boost/beast/http/field.hpp>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <exception>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "billing/time_parse.h"
#include "common/json_writer.h"
#include "common/time.h"
#include "http/api_util.h"
#include "http/json_util.h"
#include "http/query_checks.h"
#include "http/usage_reply.h"

#if STICKMETER_HAVE_WEB
#include "web/assets.h"
#endif

namespace stickmeter::http {
namespace bhttp = boost::beast::http;
using nlohmann::json;

namespace {

using internal::ApiError;
using internal::BadRequest;
using internal::Fail;
using internal::HandleQuotas;
using internal::JsonResponse;
using internal::kJsonType;
using internal::Must;
using internal::Params;

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Appends `text` (a literal without its terminating NUL) at `out`.
template <size_t N>
char* Put(char* out, const char (&text)[N]) {
  std::memcpy(out, text, N - 1);
  return out + N - 1;
}

// The body of /api/v1/series, written by hand: a month at 1h is ~750 points, and an nlohmann
// object per point cost more than the store query. The body is sized for the longest possible
// points and written through a pointer, then cut to length: no append (and capacity check)
// per piece.
void WriteSeriesJson(const tsdb::Series& series, std::string& body) {
  // ,{"t":<int64>,"v":<uint64 or int64>}
  constexpr size_t kMaxPoint = 1 + 5 + kMaxDecimalChars + 5 + kMaxDecimalChars + 1;
  body.resize(64 + series.points.size() * kMaxPoint);
  char* const begin = body.data();
  char* out = begin;
  out = Put(out, "{\"step_ms\":");
  out = WriteDecimal(out, series.step_ms);
  out = series.gauge ? Put(out, ",\"gauge\":true,\"points\":[")
                     : Put(out, ",\"gauge\":false,\"points\":[");
  bool first = true;
  for (const auto& pt : series.points) {
    out = first ? Put(out, "{\"t\":") : Put(out, ",{\"t\":");
    first = false;
    out = WriteDecimal(out, pt.t_ms);
    out = Put(out, ",\"v\":");
    out = series.gauge ? WriteDecimal(out, static_cast<int64_t>(pt.v)) : WriteDecimal(out, pt.v);
    *out++ = '}';
  }
  out = Put(out, "]}\n");
  body.resize(static_cast<size_t>(out - begin));
}

// The methods of each route: GET and HEAD, exports GET only (they stream), quotas also take
// writes. `query`: the handler reads the store or the quota service, so it runs on the query
// pool (http/query_pool.h), never on an I/O thread.
enum class Methods { kRead, kExport, kReadWrite };
struct RouteInfo {
  std::string_view path;
  Methods methods;
  bool query;
};
constexpr RouteInfo kRoutes[] = {
    {"/api/v1/health", Methods::kRead, false},     {"/api/v1/info", Methods::kRead, false},
    {"/api/v1/peers", Methods::kRead, false},      {"/api/v1/tables", Methods::kRead, true},
    {"/api/v1/keys", Methods::kRead, true},        {"/api/v1/usage", Methods::kRead, true},
    {"/api/v1/series", Methods::kRead, true},      {"/api/v1/audit", Methods::kRead, true},
    {"/api/v1/export", Methods::kExport, true},    {"/api/v1/quotas", Methods::kReadWrite, true},
    {"/api/v1/quotas/keys", Methods::kRead, true}, {"/api/v1/quotas/history", Methods::kRead, true},
    {"/metrics", Methods::kRead, false},
};

const RouteInfo* FindRoute(std::string_view path) {
  for (const auto& r : kRoutes) {
    if (r.path == path) return &r;
  }
  return nullptr;
}

bool MethodAllowed(bhttp::verb method, Methods methods) {
  return method == bhttp::verb::get ||
         (method == bhttp::verb::head && methods != Methods::kExport) ||
         (methods == Methods::kReadWrite &&
          (method == bhttp::verb::put || method == bhttp::verb::delete_));
}

json TimeOrNull(int64_t ms) {
  if (ms == 0) return nullptr;
  return FormatRfc3339Utc(ms);
}

void Digest(std::string_view data, unsigned char* out) {
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out, &len, EVP_sha256(), nullptr);
}

}  // namespace

bool BearerMatches(std::string_view authorization, std::string_view token) {
  authorization = TrimSpaces(authorization);
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() < kScheme.size()) return false;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != kScheme[i]) return false;
  }
  std::string_view given = TrimSpaces(authorization.substr(kScheme.size()));
  // Comparing digests keeps the time independent of both the content and the length.
  unsigned char a[EVP_MAX_MD_SIZE], b[EVP_MAX_MD_SIZE];
  Digest(given, a);
  Digest(token, b);
  return CRYPTO_memcmp(a, b, 32) == 0;
}

Api::Api(const ServerOptions& options, tsdb::QueryService& store, const ServerHooks& hooks)
    : options_(options),
      hosts_(options.address, options.allowed_hosts),
      store_(store),
      hooks_(hooks) {}

bool Api::HostAccepted(const Request& request) const {
  // A token already keeps other sites' pages out: they cannot know it.
  if (options_.token) return true;
  auto it = request.find(bhttp::field::host);
  return hosts_.Allows(it == request.end() ? std::nullopt
                                           : std::optional<std::string_view>(it->value()));
}

std::string_view Api::CorsOrigin(const Request& request) const {
  if (options_.cors_origins.empty()) return {};
  auto origin = request.find(bhttp::field::origin);
  const std::string_view sent =
      origin == request.end() ? std::string_view() : std::string_view(origin->value());
  for (const std::string& allowed : options_.cors_origins) {
    if (allowed == "*") return allowed;
    if (!sent.empty() && allowed == sent) return sent;
  }
  return {};
}

Response Api::Error(unsigned version, bhttp::status status, std::string_view code,
                    std::string_view message) {
  Response res{status, version};
  res.set(bhttp::field::content_type, kJsonType);
  res.set(bhttp::field::cache_control, "no-store");
  SetSecurityHeaders(res);
  json body = {{"error", {{"code", code}, {"message", message}}}};
  res.body() = DumpJson(body);
  res.body() += '\n';
  return res;
}

// The request metrics' `route` label of a target: its endpoint, "ui" for paths outside /api/,
// "other" for unknown API paths. Bounded, and known before Route() runs, so a request refused
// by an exception (a 400, 404, 421, ...) is counted under its endpoint too.
static std::string RouteLabel(std::string_view target) {
  const std::string_view path = target.substr(0, target.find('?'));
  if (const RouteInfo* route = FindRoute(path)) return std::string(route->path);
  return !path.empty() && path.front() == '/' && !path.starts_with("/api/") ? "ui" : "other";
}

ApiReply Api::Handle(const Request& request) const {
  ApiReply reply;
  try {
    reply = Route(request);
  } catch (const ApiError& e) {
    reply.response = Error(request.version(), e.status, e.code, e.message);
    reply.route = RouteLabel(request.target());
  } catch (const std::exception& e) {
    reply.response = Error(request.version(), bhttp::status::internal_server_error, "internal",
                           std::string("internal error: ") + e.what());
    reply.route = RouteLabel(request.target());
  }
  Finish(request, reply);
  return reply;
}

bool Api::IsQuery(const Request& request) const {
  std::string_view target = request.target();
  const RouteInfo* route = FindRoute(target.substr(0, target.find('?')));
  if (route == nullptr || !route->query || !MethodAllowed(request.method(), route->methods) ||
      !HostAccepted(request)) {
    return false;
  }
  // A request without the right token is refused at once, without taking a query's place.
  if (!options_.token) return true;
  auto it = request.find(bhttp::field::authorization);
  return it != request.end() && BearerMatches(it->value(), *options_.token);
}

Response Api::Refuse(const Request& request, bhttp::status status, std::string_view code,
                     std::string_view message) const {
  ApiReply reply;
  reply.response = Error(request.version(), status, code, message);
  Finish(request, reply);
  return std::move(reply.response);
}

void Api::Finish(const Request& request, ApiReply& reply) const {
  Response& res = reply.response;
  SetSecurityHeaders(res);
  if (res.result() == bhttp::status::unauthorized) {
    res.set(bhttp::field::www_authenticate, "Bearer realm=\"stickmeter\"");
  }
  if (const std::string_view origin = CorsOrigin(request); !origin.empty()) {
    res.set(bhttp::field::access_control_allow_origin, origin);
    res.set(bhttp::field::access_control_expose_headers,
            "X-Stickmeter-Partial, X-Content-SHA256, Content-Disposition");
  }
  // The answer depends on the Origin when only some are allowed: caches must keep them apart.
  const auto& origins = options_.cors_origins;
  if (!origins.empty() && std::find(origins.begin(), origins.end(), "*") == origins.end()) {
    auto vary = res.find(bhttp::field::vary);
    res.set(bhttp::field::vary,
            vary == res.end() ? std::string("Origin") : std::string(vary->value()) + ", Origin");
  }
  if (!reply.export_job) {
    res.keep_alive(request.keep_alive());
    res.prepare_payload();
    if (request.method() == bhttp::verb::head) res.body().clear();  // keeps Content-Length
  }
}

ApiReply Api::Route(const Request& request) const {
  ApiReply reply;
  const unsigned version = request.version();
  std::string_view target = request.target();
  size_t qmark = target.find('?');
  std::string_view path = target.substr(0, qmark);
  std::string_view query = qmark == std::string_view::npos ? "" : target.substr(qmark + 1);
  if (!HostAccepted(request)) {
    // Before anything else, so a page under another name learns nothing, not even which paths
    // exist.
    auto host = request.find(bhttp::field::host);
    std::string name(host == request.end() ? std::string_view()
                                           : std::string_view(host->value()).substr(0, 128));
    throw ApiError{bhttp::status::misdirected_request, "wrong_host",
                   "host: \"" + name +
                       "\" does not name this server; list it with --http-host, or require a "
                       "token (--token-file)"};
  }
  if (path.empty() || path.front() != '/') BadRequest("target: not an absolute path");

  const RouteInfo* route = FindRoute(path);
  bool ui = route == nullptr && !path.starts_with("/api/");
  reply.route = route != nullptr ? std::string(route->path) : ui ? "ui" : "other";
  if (route == nullptr && !ui) {
    throw ApiError{bhttp::status::not_found, "not_found",
                   "path: no such endpoint \"" + std::string(path.substr(0, 128)) + "\""};
  }

  // Methods: GET everywhere, HEAD except for exports, PUT and DELETE for quotas, OPTIONS for
  // CORS preflights.
  const Methods methods = route != nullptr ? route->methods : Methods::kRead;
  const char* allow = methods == Methods::kExport      ? "GET"
                      : methods == Methods::kReadWrite ? "GET, HEAD, PUT, DELETE"
                                                       : "GET, HEAD";
  bhttp::verb method = request.method();
  if (method == bhttp::verb::options && !CorsOrigin(request).empty()) {
    reply.response = Response{bhttp::status::no_content, version};
    reply.response.set(bhttp::field::access_control_allow_methods, allow);
    reply.response.set(
        bhttp::field::access_control_allow_headers,
        methods == Methods::kReadWrite ? "Authorization, Content-Type" : "Authorization");
    reply.response.set(bhttp::field::access_control_max_age, "600");
    reply.response.set(bhttp::field::allow, allow);
    return reply;
  }
  if (!MethodAllowed(method, methods)) {
    reply.response = Error(
        version, bhttp::status::method_not_allowed, "method_not_allowed",
        "method: " + std::string(request.method_string()) + " is not allowed here; use " + allow);
    reply.response.set(bhttp::field::allow, allow);
    return reply;
  }

  // Authentication: everything but health and the UI's static files (which hold no data and
  // which a browser loads before it can send a token).
  bool open = ui || (route != nullptr && route->path == "/api/v1/health");
  if (options_.token && !open) {
    auto it = request.find(bhttp::field::authorization);
    bool good = it != request.end() && BearerMatches(it->value(), *options_.token);
    if (!good) {
      throw ApiError{bhttp::status::unauthorized, "unauthorized",
                     it == request.end() ? "authorization: missing bearer token"
                                         : "authorization: wrong bearer token"};
    }
  }

  if (ui) {
#if STICKMETER_HAVE_WEB
    // Query strings on UI files (cache busters) are ignored, never parsed.
    const web::Asset* asset = web::FindAsset(path);
    if (asset == nullptr) {
      throw ApiError{bhttp::status::not_found, "not_found",
                     "path: no such file \"" + std::string(path.substr(0, 128)) + "\""};
    }
    auto ae = request.find(bhttp::field::accept_encoding);
    const bool send_gzip = asset->gzipped && ae != request.end() && AcceptsGzip(ae->value());
    // The decompressed variant of a gzipped file is other bytes, so it gets its own validator.
    std::string etag(asset->etag);
    if (asset->gzipped && !send_gzip && etag.size() >= 2) etag.insert(etag.size() - 1, "-identity");
    Response res{bhttp::status::ok, version};
    res.set(bhttp::field::etag, etag);
    res.set(bhttp::field::cache_control, "no-cache");
    res.set(bhttp::field::vary, "Accept-Encoding");
    auto inm = request.find(bhttp::field::if_none_match);
    if (inm != request.end() && !etag.empty()) {
      std::string_view v = inm->value();
      if (v == "*" || v.find(etag) != std::string_view::npos) {
        res.result(bhttp::status::not_modified);
        reply.response = std::move(res);
        return reply;
      }
    }
    res.set(bhttp::field::content_type, asset->content_type);
    if (asset->gzipped) {
      if (send_gzip) {
        res.set(bhttp::field::content_encoding, "gzip");
        res.body() = std::string(asset->body);
      } else {
        auto plain = Gunzip(asset->body);
        if (!plain) {
          throw ApiError{bhttp::status::internal_server_error, "internal",
                         "embedded asset is not valid gzip"};
        }
        res.body() = std::move(*plain);
      }
    } else {
      res.body() = std::string(asset->body);
    }
    reply.response = std::move(res);
    return reply;
#else
    throw ApiError{bhttp::status::not_found, "not_found",
                   "path: the web UI is not built into this binary"};
#endif
  }

  std::string_view p = route->path;
  if (p.starts_with("/api/v1/quotas")) {
    reply.response = HandleQuotas(request, p, query, hooks_.quotas, options_.billing_tz);
  } else if (p == "/api/v1/health") {
    Params params(query, {});
    // A store whose writes fail acknowledges nothing: not healthy, until it has recovered.
    if (Status writes = store_.WriteStatus(); !writes.ok()) {
      const std::string why =
          "store writes fail, updates are not acknowledged: " + writes.ToString();
      reply.response = JsonResponse(
          version, {{"status", "failing"}, {"error", {{"code", "unavailable"}, {"message", why}}}});
      reply.response.result(bhttp::status::service_unavailable);
    } else {
      reply.response = JsonResponse(version, {{"status", "ok"}});
    }
  } else if (p == "/api/v1/info") {
    Params params(query, {});
    // Facts about the server that clients (the web UI) need: the billing zone of its months.
    reply.response = JsonResponse(version, {{"billing_tz", options_.billing_tz}});
  } else if (p == "/metrics") {
    Params params(query, {});
    Response res{bhttp::status::ok, version};
    res.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.set(bhttp::field::cache_control, "no-store");
    res.body() = MetricsRegistry::Global().RenderPrometheus();
    reply.response = std::move(res);
  } else if (p == "/api/v1/peers") {
    Params params(query, {});
    json peers = json::array();
    if (hooks_.peers) {
      for (const PeerInfo& peer : hooks_.peers()) {
        peers.push_back({{"name", peer.name},
                         {"direction", peer.direction},
                         {"address", peer.address},
                         {"connected", peer.connected},
                         {"since_ms", peer.since_ms},
                         {"since", TimeOrNull(peer.since_ms)},
                         {"last_message_ms", peer.last_message_ms},
                         {"last_message", TimeOrNull(peer.last_message_ms)},
                         {"updates", peer.updates},
                         {"last_error", peer.last_error},
                         {"warning", peer.warning}});
      }
    }
    json refused = json::array();
    if (hooks_.refused_peers) {
      for (const RefusedPeerInfo& peer : hooks_.refused_peers()) {
        refused.push_back({{"name", peer.name},
                           {"address", peer.address},
                           {"reason", peer.reason},
                           {"count", peer.count},
                           {"last_ms", peer.last_ms},
                           {"last", TimeOrNull(peer.last_ms)}});
      }
    }
    reply.response =
        JsonResponse(version, {{"peers", std::move(peers)}, {"refused", std::move(refused)}});
  } else if (p == "/api/v1/tables") {
    Params params(query, {});
    json tables = json::array();
    for (const auto& t : Must(store_.Tables())) {
      tables.push_back({{"name", t.name},
                        {"key_type", t.key_type},
                        {"key_size", t.key_size},
                        {"expire_ms", t.expire_ms},
                        {"data_types", t.data_types},
                        {"counter_metrics", t.counter_metrics},
                        {"gauge_metrics", t.gauge_metrics},
                        {"sources", t.sources}});
    }
    reply.response = JsonResponse(version, {{"tables", std::move(tables)}});
  } else if (p == "/api/v1/keys") {
    reply.response = internal::HandleKeys(store_, version, query);
  } else if (p == "/api/v1/usage") {
    Params params(query,
                  {"table", "metric", "from", "to", "key", "source", "order", "limit", "offset"});
    tsdb::UsageQuery q;
    q.table = params.Required("table");
    q.metric = params.Required("metric");
    std::tie(q.from_ms, q.to_ms) = params.Range();
    q.key = params.Get("key");
    q.source = params.NonEmpty("source");
    std::string order = params.Get("order").value_or("key");
    if (order != "key" && order != "total") {
      BadRequest("order: \"" + order.substr(0, 32) + "\" is not key or total");
    }
    size_t limit = params.Get("limit") ? params.Limit(0, kMaxUsageLimit) : SIZE_MAX;
    size_t offset = params.Count("offset");
    internal::RequireKnownNames(store_, q.table, q.key, q.source);
    // Rows are visited, not collected: the reply holds one page (or the best rows by total),
    // bounded in bytes whatever the number and length of the keys.
    internal::UsageReply page(order == "total", offset, limit, kMaxListReplyBytes);
    Must(store_.ForEachUsage(
        q, [&](std::string_view key, uint64_t total) { return page.Add(key, total); }));
    const internal::UsageReply::Parts parts = page.Finish();
    // The fields in the order the JSON serializer writes objects (by name), as other replies.
    std::string body = "{\"from_ms\":" + std::to_string(q.from_ms) + ",\"metric\":";
    AppendJsonString(body, q.metric);
    body += ",\"next_offset\":" + parts.next_offset + ",\"rows\":";
    body += parts.rows;
    body += ",\"table\":";
    AppendJsonString(body, q.table);
    body += ",\"to_ms\":" + std::to_string(q.to_ms) +
            ",\"total_rows\":" + std::to_string(parts.total_rows) + "}\n";
    reply.response = internal::JsonTextResponse(version, std::move(body));
  } else if (p == "/api/v1/series") {
    Params params(query, {"table", "metric", "key", "from", "to", "step", "source"});
    tsdb::SeriesQuery q;
    q.table = params.Required("table");
    q.metric = params.Required("metric");
    q.key = params.Get("key").value_or("");
    if (!params.Get("key")) BadRequest("key: missing");
    std::tie(q.from_ms, q.to_ms) = params.Range();
    std::string step = params.Get("step").value_or("auto");
    if (step == "1m") {
      q.step_ms = 60'000;
    } else if (step == "1h") {
      q.step_ms = 3'600'000;
    } else if (step == "1d") {
      q.step_ms = 86'400'000;
    } else if (step == "auto") {
      q.step_ms = 0;
    } else {
      BadRequest("step: \"" + step.substr(0, 32) + "\" is not 1m, 1h, 1d or auto");
    }
    if (q.step_ms != 0) {
      int64_t points = (q.to_ms - q.from_ms) / q.step_ms;
      if (points > kMaxSeriesPoints) {
        BadRequest("step: " + step + " over this range gives " + std::to_string(points) +
                   " points (at most " + std::to_string(kMaxSeriesPoints) +
                   "); use a coarser step or auto");
      }
    }
    q.source = params.NonEmpty("source");
    internal::RequireKnownNames(store_, q.table, q.key, q.source);
    tsdb::Series series = Must(store_.GetSeries(q));
    reply.response = Response{bhttp::status::ok, version};
    reply.response.set(bhttp::field::content_type, kJsonType);
    reply.response.set(bhttp::field::cache_control, "no-store");
    WriteSeriesJson(series, reply.response.body());
  } else if (p == "/api/v1/audit") {
    Params params(query, {"table", "key", "from", "to", "limit", "metric", "after"});
    tsdb::AuditQuery q;
    q.table = params.Required("table");
    if (!params.Get("key")) BadRequest("key: missing");
    q.key = *params.Get("key");
    std::tie(q.from_ms, q.to_ms) = params.Range();
    q.limit = params.Limit(kDefaultAuditLimit, kMaxAuditLimit);
    q.metric = params.NonEmpty("metric");
    if (auto after = params.Get("after")) {
      // The cursor is "<t_ms>:<seq>", as returned in `next`.
      size_t colon = after->find(':');
      int64_t t = 0;
      uint64_t seq = 0;
      bool ok = colon != std::string::npos && colon > 0;
      if (ok) {
        auto r1 = std::from_chars(after->data(), after->data() + colon, t);
        auto r2 = std::from_chars(after->data() + colon + 1, after->data() + after->size(), seq);
        ok = r1.ec == std::errc() && r1.ptr == after->data() + colon && r2.ec == std::errc() &&
             r2.ptr == after->data() + after->size() && colon + 1 < after->size() &&
             t >= billing::kMinTimeMs && t <= billing::kMaxTimeMs;
      }
      if (!ok) BadRequest("after: \"" + after->substr(0, 48) + "\" is not a cursor (t_ms:seq)");
      q.after = std::make_pair(t, seq);
    }
    internal::RequireKnownNames(store_, q.table, q.key, std::nullopt);
    if (q.metric) {
      internal::RequireNotGauge(internal::FindTable(store_, q.table), *q.metric,
                                "the audit trail covers counters (use series for a gauge)");
    }
    auto events = Must(store_.Audit(q));
    json list = json::array();
    for (const auto& e : events) {
      list.push_back({{"t", e.t_ms},
                      {"seq", e.seq},
                      {"source", e.source},
                      {"metric", e.metric},
                      {"value", e.value},
                      {"delta", e.delta},
                      {"reason", e.reason}});
    }
    json next = nullptr;
    if (events.size() == q.limit && !events.empty()) {
      next = std::to_string(events.back().t_ms) + ":" + std::to_string(events.back().seq);
    }
    reply.response = JsonResponse(version, {{"events", std::move(list)}, {"next", next}});
  } else if (p == "/api/v1/export") {
    Params params(query, {"table", "metric", "period", "tz", "from", "to", "format", "per_source",
                          "excel_safe"});
    billing::ExportRequest er;
    er.period = params.NonEmpty("period");
    er.tz = params.Get("tz").value_or(options_.billing_tz);
    er.from_ms = params.OptionalTime("from");
    er.to_ms = params.OptionalTime("to");
    er.table = params.NonEmpty("table");
    er.metric = params.NonEmpty("metric");
    er.format = params.Get("format").value_or("csv");
    auto per_source = params.Get("per_source");
    if (per_source && *per_source != "true" && *per_source != "false") {
      BadRequest("per_source: \"" + per_source->substr(0, 32) + "\" is not true or false");
    }
    er.per_source = per_source && *per_source == "true";
    // 1 as well as true: a spreadsheet user types the short form.
    if (auto excel = params.Get("excel_safe")) {
      if (*excel != "true" && *excel != "1" && *excel != "false" && *excel != "0") {
        BadRequest("excel_safe: \"" + excel->substr(0, 32) + "\" is not 1, true, 0 or false");
      }
      er.excel_safe = *excel == "true" || *excel == "1";
    }
    er.now_ms = NowUnixMs();
    if (!er.period && !er.from_ms && !er.to_ms) BadRequest("period: missing (or give from and to)");
    billing::ResolvedExport resolved = Must(billing::ResolveExport(er));
    Status s = billing::CheckExportFilters(store_, resolved);
    if (!s.ok()) Fail(s);
    Response res{bhttp::status::ok, version};
    res.set(bhttp::field::content_type, resolved.content_type());
    res.set(bhttp::field::content_disposition,
            "attachment; filename=\"" + resolved.file_name() + "\"");
    res.set(bhttp::field::cache_control, "no-store");
    res.set("X-Stickmeter-Partial", resolved.partial ? "true" : "false");
    reply.response = std::move(res);
    reply.export_job = std::move(resolved);
  }
  return reply;
}

}  // namespace stickmeter::http
