// The route table (routes.h) and the handlers of the read endpoints: health, info, peers, metrics,
// tables, keys, usage, series, audit, coverage and export. The quota handlers are in
// quota_handlers.cc, the UI's files in static_files.cc.
#include "http/routes.h"

#include <charconv>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

#include "billing/coverage.h"
#include "billing/time_parse.h"
#include "common/json_writer.h"
#include "common/metrics.h"
#include "common/time.h"
#include "http/query_checks.h"
#include "http/static_files.h"
#include "http/usage_reply.h"

namespace stickmeter::http::internal {
namespace {

using nlohmann::json;

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
  if (!series.gauge) {
    out = Put(out, ",\"gauge\":false,\"points\":[");
  } else if (series.agg == tsdb::GaugeAgg::kLast) {
    out = Put(out, ",\"gauge\":true,\"agg\":\"last\",\"points\":[");
  } else {
    out = Put(out, ",\"gauge\":true,\"agg\":\"max\",\"points\":[");
  }
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

json TimeOrNull(int64_t ms) {
  if (ms == 0) return nullptr;
  return FormatRfc3339Utc(ms);
}

ApiResult<Response> Health(const RouteContext& ctx) {
  API_TRY(Params::Parse(ctx.query, {}));
  const unsigned version = ctx.request.version();
  // A store whose writes fail acknowledges nothing: not healthy, until it has recovered.
  if (Status writes = ctx.store.WriteStatus(); !writes.ok()) {
    const std::string why = "store writes fail, updates are not acknowledged: " + writes.ToString();
    Response res = JsonResponse(
        version, {{"status", "failing"}, {"error", {{"code", "unavailable"}, {"message", why}}}});
    res.result(bhttp::status::service_unavailable);
    return res;
  }
  return JsonResponse(version, {{"status", "ok"}});
}

ApiResult<Response> Info(const RouteContext& ctx) {
  API_TRY(Params::Parse(ctx.query, {}));
  // Facts about the server that clients (the web UI) need: the billing zone of its months.
  return JsonResponse(ctx.request.version(), {{"billing_tz", ctx.options.billing_tz}});
}

ApiResult<Response> Metrics(const RouteContext& ctx) {
  API_TRY(Params::Parse(ctx.query, {}));
  Response res{bhttp::status::ok, ctx.request.version()};
  res.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
  res.set(bhttp::field::cache_control, "no-store");
  res.body() = MetricsRegistry::Global().RenderPrometheus();
  return res;
}

ApiResult<Response> Peers(const RouteContext& ctx) {
  API_TRY(Params::Parse(ctx.query, {}));
  json peers = json::array();
  if (ctx.hooks.peers) {
    for (const PeerInfo& peer : ctx.hooks.peers()) {
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
  if (ctx.hooks.refused_peers) {
    for (const RefusedPeerInfo& peer : ctx.hooks.refused_peers()) {
      refused.push_back({{"name", peer.name},
                         {"address", peer.address},
                         {"reason", peer.reason},
                         {"count", peer.count},
                         {"last_ms", peer.last_ms},
                         {"last", TimeOrNull(peer.last_ms)}});
    }
  }
  return JsonResponse(ctx.request.version(),
                      {{"peers", std::move(peers)}, {"refused", std::move(refused)}});
}

ApiResult<Response> Tables(const RouteContext& ctx) {
  API_TRY(Params::Parse(ctx.query, {}));
  API_ASSIGN_OR_RETURN(const auto summaries, ctx.store.Tables());
  json tables = json::array();
  for (const auto& t : summaries) {
    tables.push_back({{"name", t.name},
                      {"key_type", t.key_type},
                      {"key_size", t.key_size},
                      {"expire_ms", t.expire_ms},
                      {"data_types", t.data_types},
                      {"counter_metrics", t.counter_metrics},
                      {"gauge_metrics", t.gauge_metrics},
                      {"sources", t.sources}});
  }
  return JsonResponse(ctx.request.version(), {{"tables", std::move(tables)}});
}

ApiResult<Response> Keys(const RouteContext& ctx) {
  return HandleKeys(ctx.store, ctx.request.version(), ctx.query);
}

// `agg=max|last`: how a gauge's samples become a value (usage and series).
ApiResult<std::optional<tsdb::GaugeAgg>> ParseGaugeAgg(const Params& params) {
  const std::optional<std::string> agg = params.Get("agg");
  if (!agg) return std::optional<tsdb::GaugeAgg>{};
  if (*agg == "max") return std::optional<tsdb::GaugeAgg>{tsdb::GaugeAgg::kMax};
  if (*agg == "last") return std::optional<tsdb::GaugeAgg>{tsdb::GaugeAgg::kLast};
  return BadRequest("agg: \"" + agg->substr(0, 32) + "\" is not max or last");
}

// `key` of usage and series: absent for every key of the table. Empty is refused rather than
// looked up as a key, which would answer 404 for what is a malformed request.
ApiResult<std::optional<std::string>> OptionalKey(const Params& params) {
  std::optional<std::string> key = params.Get("key");
  if (key && key->empty()) return BadRequest("key: empty; leave it out for the whole table");
  return key;
}

ApiResult<Response> Usage(const RouteContext& ctx) {
  API_ASSIGN_OR_RETURN(const Params params,
                       Params::Parse(ctx.query, {"table", "metric", "from", "to", "key", "source",
                                                 "order", "limit", "offset", "agg"}));
  tsdb::UsageQuery q;
  API_ASSIGN_OR_RETURN(q.table, params.Required("table"));
  API_ASSIGN_OR_RETURN(q.metric, params.Required("metric"));
  API_ASSIGN_OR_RETURN(std::tie(q.from_ms, q.to_ms), params.Range());
  API_ASSIGN_OR_RETURN(q.key, OptionalKey(params));
  API_ASSIGN_OR_RETURN(q.source, params.NonEmpty("source"));
  std::string order = params.Get("order").value_or("key");
  if (order != "key" && order != "total") {
    return BadRequest("order: \"" + order.substr(0, 32) + "\" is not key or total");
  }
  size_t limit = SIZE_MAX;
  if (params.Get("limit")) {
    API_ASSIGN_OR_RETURN(limit, params.Limit(0, kMaxUsageLimit));
  }
  API_ASSIGN_OR_RETURN(const size_t offset, params.Count("offset"));
  API_ASSIGN_OR_RETURN(q.gauge_agg, ParseGaugeAgg(params));
  API_TRY(RequireKnownNames(ctx.store, q.table, q.key, q.source));
  // Rows are visited, not collected: the reply holds one page (or the best rows by total),
  // bounded in bytes whatever the number and length of the keys.
  UsageReply page(order == "total", offset, limit, kMaxListReplyBytes);
  API_TRY(ctx.store.ForEachUsage(
      q, [&](std::string_view key, uint64_t total) { return page.Add(key, total); }));
  API_ASSIGN_OR_RETURN(UsageReply::Parts parts, page.Finish());
  // The fields in the order the JSON serializer writes objects (by name), as other replies.
  std::string head = "{";
  if (q.gauge_agg)
    head += q.gauge_agg == tsdb::GaugeAgg::kLast ? "\"agg\":\"last\"," : "\"agg\":\"max\",";
  head += "\"from_ms\":" + std::to_string(q.from_ms) + ",\"metric\":";
  AppendJsonString(head, q.metric);
  head += ",\"next_offset\":" + parts.next_offset + ",\"rows\":";
  // The rows are the bulk (megabytes over every key of a large table): the body is built
  // around them rather than copied from them.
  std::string body = std::move(parts.rows);
  body.insert(0, head);
  body += ",\"table\":";
  AppendJsonString(body, q.table);
  body += ",\"to_ms\":" + std::to_string(q.to_ms) +
          ",\"total_rows\":" + std::to_string(parts.total_rows) + "}\n";
  return JsonTextResponse(ctx.request.version(), std::move(body));
}

ApiResult<Response> Series(const RouteContext& ctx) {
  API_ASSIGN_OR_RETURN(
      const Params params,
      Params::Parse(ctx.query, {"table", "metric", "key", "from", "to", "step", "source", "agg"}));
  tsdb::SeriesQuery q;
  API_ASSIGN_OR_RETURN(q.table, params.Required("table"));
  API_ASSIGN_OR_RETURN(q.metric, params.Required("metric"));
  // Without a key: every key of the table summed (tsdb::QueryService::GetSeries).
  API_ASSIGN_OR_RETURN(const std::optional<std::string> key, OptionalKey(params));
  q.key = key.value_or("");
  API_ASSIGN_OR_RETURN(std::tie(q.from_ms, q.to_ms), params.Range());
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
    return BadRequest("step: \"" + step.substr(0, 32) + "\" is not 1m, 1h, 1d or auto");
  }
  if (q.step_ms != 0) {
    int64_t points = (q.to_ms - q.from_ms) / q.step_ms;
    if (points > kMaxSeriesPoints) {
      return BadRequest("step: " + step + " over this range gives " + std::to_string(points) +
                        " points (at most " + std::to_string(kMaxSeriesPoints) +
                        "); use a coarser step or auto");
    }
  }
  API_ASSIGN_OR_RETURN(q.source, params.NonEmpty("source"));
  API_ASSIGN_OR_RETURN(q.gauge_agg, ParseGaugeAgg(params));
  API_TRY(RequireKnownNames(ctx.store, q.table, key, q.source));
  API_ASSIGN_OR_RETURN(const tsdb::Series series, ctx.store.GetSeries(q));
  Response res{bhttp::status::ok, ctx.request.version()};
  res.set(bhttp::field::content_type, kJsonType);
  res.set(bhttp::field::cache_control, "no-store");
  WriteSeriesJson(series, res.body());
  return res;
}

// The audit cursor "<t_ms>:<seq>", as returned in `next`.
ApiResult<std::pair<int64_t, uint64_t>> ParseAuditCursor(const std::string& after) {
  size_t colon = after.find(':');
  int64_t t = 0;
  uint64_t seq = 0;
  bool ok = colon != std::string::npos && colon > 0;
  if (ok) {
    auto r1 = std::from_chars(after.data(), after.data() + colon, t);
    auto r2 = std::from_chars(after.data() + colon + 1, after.data() + after.size(), seq);
    ok = r1.ec == std::errc() && r1.ptr == after.data() + colon && r2.ec == std::errc() &&
         r2.ptr == after.data() + after.size() && colon + 1 < after.size() &&
         t >= billing::kMinTimeMs && t <= billing::kMaxTimeMs;
  }
  if (!ok) return BadRequest("after: \"" + after.substr(0, 48) + "\" is not a cursor (t_ms:seq)");
  return std::make_pair(t, seq);
}

ApiResult<Response> Audit(const RouteContext& ctx) {
  API_ASSIGN_OR_RETURN(const Params params, Params::Parse(ctx.query, {"table", "key", "from", "to",
                                                                      "limit", "metric", "after"}));
  tsdb::AuditQuery q;
  API_ASSIGN_OR_RETURN(q.table, params.Required("table"));
  // Required, like table: an audit trail is one key's.
  API_ASSIGN_OR_RETURN(q.key, params.Required("key"));
  API_ASSIGN_OR_RETURN(std::tie(q.from_ms, q.to_ms), params.Range());
  API_ASSIGN_OR_RETURN(q.limit, params.Limit(kDefaultAuditLimit, kMaxAuditLimit));
  API_ASSIGN_OR_RETURN(q.metric, params.NonEmpty("metric"));
  if (auto after = params.Get("after")) {
    API_ASSIGN_OR_RETURN(q.after, ParseAuditCursor(*after));
  }
  API_TRY(RequireKnownNames(ctx.store, q.table, q.key, std::nullopt));
  if (q.metric) {
    API_ASSIGN_OR_RETURN(const tsdb::TableSummary table, FindTable(ctx.store, q.table));
    API_TRY(RequireNotGauge(table, *q.metric,
                            "the audit trail covers counters (use series for a gauge)"));
  }
  API_ASSIGN_OR_RETURN(const auto events, ctx.store.Audit(q));
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
  return JsonResponse(ctx.request.version(), {{"events", std::move(list)}, {"next", next}});
}

// Data completeness over a range, or a billing period as the export takes it (billing/coverage.h
// writes the object).
ApiResult<Response> CoverageOf(const RouteContext& ctx) {
  API_ASSIGN_OR_RETURN(const Params params,
                       Params::Parse(ctx.query, {"from", "to", "period", "tz", "source"}));
  tsdb::CoverageQuery q;
  if (params.Get("period")) {
    billing::ExportRequest er;
    API_ASSIGN_OR_RETURN(er.period, params.NonEmpty("period"));
    er.tz = params.Get("tz").value_or(ctx.options.billing_tz);
    API_ASSIGN_OR_RETURN(er.from_ms, params.OptionalTime("from"));
    API_ASSIGN_OR_RETURN(er.to_ms, params.OptionalTime("to"));
    API_ASSIGN_OR_RETURN(const billing::ResolvedExport period, billing::ResolveExport(er));
    q.from_ms = period.from_ms;
    q.to_ms = period.to_ms;
  } else {
    if (params.Get("tz")) return BadRequest("tz: applies to period only");
    API_ASSIGN_OR_RETURN(std::tie(q.from_ms, q.to_ms), params.Range());
  }
  API_ASSIGN_OR_RETURN(q.source, params.NonEmpty("source"));
  q.now_ms = NowUnixMs();
  API_ASSIGN_OR_RETURN(const tsdb::Coverage coverage, ctx.store.GetCoverage(q));
  std::string body;
  billing::AppendCoverageJson(body, coverage);
  body += '\n';
  return JsonTextResponse(ctx.request.version(), std::move(body));
}

// The headers of the export; its body is streamed by the server (http/server_export.cc).
ApiResult<Response> Export(const RouteContext& ctx) {
  API_ASSIGN_OR_RETURN(
      const Params params,
      Params::Parse(ctx.query, {"table", "metric", "period", "tz", "from", "to", "format",
                                "per_source", "excel_safe", "layout", "bytes_unit"}));
  billing::ExportRequest er;
  API_ASSIGN_OR_RETURN(er.period, params.NonEmpty("period"));
  er.tz = params.Get("tz").value_or(ctx.options.billing_tz);
  API_ASSIGN_OR_RETURN(er.from_ms, params.OptionalTime("from"));
  API_ASSIGN_OR_RETURN(er.to_ms, params.OptionalTime("to"));
  API_ASSIGN_OR_RETURN(er.table, params.NonEmpty("table"));
  API_ASSIGN_OR_RETURN(er.metric, params.NonEmpty("metric"));
  er.format = params.Get("format").value_or("csv");
  auto per_source = params.Get("per_source");
  if (per_source && *per_source != "true" && *per_source != "false") {
    return BadRequest("per_source: \"" + per_source->substr(0, 32) + "\" is not true or false");
  }
  er.per_source = per_source && *per_source == "true";
  // 1 as well as true: a spreadsheet user types the short form.
  if (auto excel = params.Get("excel_safe")) {
    if (*excel != "true" && *excel != "1" && *excel != "false" && *excel != "0") {
      return BadRequest("excel_safe: \"" + excel->substr(0, 32) + "\" is not 1, true, 0 or false");
    }
    er.excel_safe = *excel == "true" || *excel == "1";
  }
  er.layout = params.Get("layout").value_or("rows");
  er.bytes_unit = params.Get("bytes_unit");
  er.names = ctx.options.key_names;
  er.now_ms = NowUnixMs();
  if (!er.period && !er.from_ms && !er.to_ms) {
    return BadRequest("period: missing (or give from and to)");
  }
  API_ASSIGN_OR_RETURN(billing::ResolvedExport resolved, billing::ResolveExport(er));
  API_TRY(billing::CheckExportFilters(ctx.store, resolved));
  resolved.coverage =
      billing::ExportCoverage(ctx.store, resolved.from_ms, resolved.to_ms, er.now_ms);
  Response res{bhttp::status::ok, ctx.request.version()};
  res.set(bhttp::field::content_type, resolved.content_type());
  res.set(bhttp::field::content_disposition,
          "attachment; filename=\"" + resolved.file_name() + "\"");
  res.set(bhttp::field::cache_control, "no-store");
  res.set("X-Stickmeter-Partial", resolved.partial ? "true" : "false");
  if (resolved.coverage) {
    res.set("X-Stickmeter-Coverage", tsdb::CoverageStatusName(resolved.coverage->status));
  }
  ctx.export_job = std::move(resolved);
  return res;
}

// Every endpoint; the first match wins, so the two catch-alls come last: unknown paths under /api/
// are 404s (never UI files), everything else is the UI's.
constexpr Route kRoutes[] = {
    // path, prefix, methods, query, open, label, handler
    {"/api/v1/health", false, Methods::kRead, false, true, "/api/v1/health", Health},
    {"/api/v1/info", false, Methods::kRead, false, false, "/api/v1/info", Info},
    {"/api/v1/peers", false, Methods::kRead, false, false, "/api/v1/peers", Peers},
    {"/api/v1/tables", false, Methods::kRead, true, false, "/api/v1/tables", Tables},
    {"/api/v1/keys", false, Methods::kRead, true, false, "/api/v1/keys", Keys},
    {"/api/v1/usage", false, Methods::kRead, true, false, "/api/v1/usage", Usage},
    {"/api/v1/series", false, Methods::kRead, true, false, "/api/v1/series", Series},
    {"/api/v1/audit", false, Methods::kRead, true, false, "/api/v1/audit", Audit},
    {"/api/v1/export", false, Methods::kExport, true, false, "/api/v1/export", Export},
    {"/api/v1/coverage", false, Methods::kRead, true, false, "/api/v1/coverage", CoverageOf},
    // Not the store's, but a page can be megabytes of JSON: built on the query pool.
    {"/api/v1/names", false, Methods::kRead, true, false, "/api/v1/names", HandleNames},
    {"/api/v1/quotas", false, Methods::kReadWrite, true, false, "/api/v1/quotas", HandleQuotas},
    {"/api/v1/quotas/keys", false, Methods::kRead, true, false, "/api/v1/quotas/keys",
     HandleQuotaKeys},
    {"/api/v1/quotas/history", false, Methods::kRead, true, false, "/api/v1/quotas/history",
     HandleQuotaHistory},
    {"/metrics", false, Methods::kRead, false, false, "/metrics", Metrics},
    {"/api/", true, Methods::kRead, false, false, "other", nullptr},
    // The UI's files hold no data, and a browser loads them before it can send a token.
    {"/", true, Methods::kRead, false, true, "ui", ServeStaticFile},
};

}  // namespace

const Route* FindRoute(std::string_view path) {
  for (const Route& r : kRoutes) {
    if (r.prefix ? path.starts_with(r.path) : path == r.path) return &r;
  }
  return nullptr;
}

bool MethodAllowed(bhttp::verb method, Methods methods) {
  return method == bhttp::verb::get ||
         (method == bhttp::verb::head && methods != Methods::kExport) ||
         (methods == Methods::kReadWrite &&
          (method == bhttp::verb::put || method == bhttp::verb::delete_));
}

}  // namespace stickmeter::http::internal
