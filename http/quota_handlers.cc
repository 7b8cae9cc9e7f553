// The /api/v1/quotas routes: list, create or replace, delete, keys' standing, history. The body
// of a PUT is validated here field by field (types, ranges, unknown fields); what needs the
// tables (a metric the table counts, a taught table, a known time zone) is the QuotaService's
// to check, whose InvalidArgument messages name the field too.
#include <limits>
#include <set>

#include "common/json_writer.h"
#include "http/api_util.h"
#include "http/routes.h"

namespace stickmeter::http::internal {
namespace {

using nlohmann::json;

constexpr std::string_view kDisabled =
    "quotas: not enabled on this server; start it with `stickmeter serve --quota /table` to "
    "enforce quotas on a table";

std::string_view PeriodString(teach::Period period) {
  return period == teach::Period::kDay ? "day" : "month";
}

json QuotaJson(const teach::Quota& q) {
  return {{"table", q.table},
          {"key", q.key ? json(*q.key) : json(nullptr)},
          {"metric", q.metric},
          {"limit", q.limit},
          {"period", PeriodString(q.period)},
          {"tz", q.tz}};
}

json StatusJson(const teach::QuotaStatus& s) {
  json out = QuotaJson(s.quota);
  out["used"] = s.used;
  out["over"] = s.over;
  if (!s.quota.key) out["over_keys"] = s.over_keys;
  out["period_start"] = s.period_start_ms;
  out["period_end"] = s.period_end_ms;
  return out;
}

ApiError BadBody(std::string message) {
  return ApiError{bhttp::status::bad_request, "bad_body", std::move(message)};
}

std::string TypeName(const json& v) {
  if (v.is_number_float()) return "a fraction";
  if (v.is_number()) return "a number";
  return std::string("a JSON ") + v.type_name();
}

// A string field of the body; nullopt when absent (or null, if `null_ok`).
ApiResult<std::optional<std::string>> StringField(const json& body, const std::string& name,
                                                  bool null_ok) {
  auto it = body.find(name);
  if (it == body.end() || (null_ok && it->is_null())) return std::optional<std::string>();
  if (!it->is_string()) return BadRequest(name + ": must be a string, not " + TypeName(*it));
  std::string value = it->get<std::string>();
  if (value.empty()) {
    return BadRequest(
        name + (null_ok ? ": empty; omit it or give null for the table's default" : ": empty"));
  }
  return std::optional<std::string>(std::move(value));
}

ApiResult<teach::Quota> ParseQuota(const std::string& text, const std::string& billing_tz) {
  json body;
  // A field given twice is refused, as a repeated query parameter is (the parser would keep the
  // last one silently).
  std::set<std::string> seen;
  std::string twice;
  auto on_event = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1 && parsed.is_string() &&
        !seen.insert(parsed.get<std::string>()).second && twice.empty()) {
      twice = parsed.get<std::string>();
    }
    return true;
  };
  try {
    body = json::parse(text, on_event);
  } catch (const json::parse_error& e) {
    // e.what() is "[json.exception.parse_error.101] parse error at line 1, column 2: ...".
    std::string why = e.what();
    size_t at = why.find("] ");
    return BadBody("body: not valid JSON (" +
                   why.substr(at == std::string::npos ? 0 : at + 2, 200) + ")");
  }
  if (!body.is_object()) return BadBody("body: must be a JSON object, not " + TypeName(body));
  if (!twice.empty()) return BadRequest(twice.substr(0, 64) + ": given more than once");
  static const std::set<std::string> kFields = {"table", "key", "metric", "limit", "period", "tz"};
  for (const auto& [name, value] : body.items()) {
    if (!kFields.contains(name)) {
      return BadRequest(name.substr(0, 64) +
                        ": unknown field (a quota has table, key, metric, limit, period and tz)");
    }
  }
  teach::Quota q;
  q.tz = billing_tz;  // a quota that names no zone follows the server's billing
                      // zone
  API_ASSIGN_OR_RETURN(auto table, StringField(body, "table", false));
  if (!table) return BadRequest("table: missing");
  q.table = *table;
  API_ASSIGN_OR_RETURN(q.key, StringField(body, "key", true));
  API_ASSIGN_OR_RETURN(auto metric, StringField(body, "metric", false));
  if (!metric) return BadRequest("metric: missing");
  q.metric = *metric;
  auto limit = body.find("limit");
  if (limit == body.end()) return BadRequest("limit: missing");
  constexpr uint64_t kMaxLimit = std::numeric_limits<int64_t>::max();
  // nlohmann keeps the number's type: non-negative integers are unsigned, negative ones signed,
  // anything with a fraction, an exponent or beyond 2^64 a float.
  if (!limit->is_number_unsigned() || limit->get<uint64_t>() > kMaxLimit) {
    return BadRequest("limit: must be an integer from 0 to " + std::to_string(kMaxLimit) +
                      ", not " + limit->dump().substr(0, 40));
  }
  q.limit = limit->get<uint64_t>();
  API_ASSIGN_OR_RETURN(auto period, StringField(body, "period", false));
  if (period) {
    if (*period == "month") {
      q.period = teach::Period::kMonth;
    } else if (*period == "day") {
      q.period = teach::Period::kDay;
    } else {
      return BadRequest("period: \"" + period->substr(0, 32) + "\" is not month or day");
    }
  }
  API_ASSIGN_OR_RETURN(auto tz, StringField(body, "tz", false));
  if (tz) q.tz = *tz;
  return q;
}

}  // namespace

ApiResult<Response> HandleQuotas(const RouteContext& ctx) {
  const unsigned version = ctx.request.version();
  const bhttp::verb method = ctx.request.method();
  teach::QuotaService* const quotas = ctx.hooks.quotas;
  const bool write = method == bhttp::verb::put || method == bhttp::verb::delete_;
  if (write && quotas == nullptr) {
    return ApiError{bhttp::status::bad_request, "quotas_disabled", std::string(kDisabled)};
  }
  if (method == bhttp::verb::put) {
    API_TRY(Params::Parse(ctx.query, {}));
    if (ctx.request.body().size() > kMaxQuotaBodyBytes) {
      return ApiError{bhttp::status::payload_too_large, "body_too_large",
                      "body: larger than " + std::to_string(kMaxQuotaBodyBytes) + " bytes"};
    }
    API_ASSIGN_OR_RETURN(const teach::Quota quota,
                         ParseQuota(ctx.request.body(), ctx.options.billing_tz));
    API_ASSIGN_OR_RETURN(const teach::QuotaStatus status, quotas->Put(quota));
    return JsonResponse(version, StatusJson(status));
  }
  if (method == bhttp::verb::delete_) {
    API_ASSIGN_OR_RETURN(const Params params, Params::Parse(ctx.query, {"table", "metric", "key"}));
    API_ASSIGN_OR_RETURN(const std::string table, params.Required("table"));
    API_ASSIGN_OR_RETURN(const std::string metric, params.Required("metric"));
    API_ASSIGN_OR_RETURN(const std::optional<std::string> key, params.NonEmpty("key"));
    API_TRY(quotas->Delete(table, metric, key));
    Response res{bhttp::status::no_content, version};
    res.set(bhttp::field::cache_control, "no-store");
    return res;
  }
  API_ASSIGN_OR_RETURN(const Params params, Params::Parse(ctx.query, {"table", "key"}));
  API_ASSIGN_OR_RETURN(const auto table, params.NonEmpty("table"));
  API_ASSIGN_OR_RETURN(const auto key, params.NonEmpty("key"));
  json list = json::array();
  if (quotas != nullptr) {
    API_ASSIGN_OR_RETURN(const auto statuses, quotas->List(table, key));
    for (const auto& s : statuses) list.push_back(StatusJson(s));
  }
  return JsonResponse(version, {{"quotas", std::move(list)}, {"enabled", quotas != nullptr}});
}

ApiResult<Response> HandleQuotaKeys(const RouteContext& ctx) {
  teach::QuotaService* const quotas = ctx.hooks.quotas;
  API_ASSIGN_OR_RETURN(const Params params, Params::Parse(ctx.query, {"table", "key", "limit"}));
  API_ASSIGN_OR_RETURN(const auto table, params.NonEmpty("table"));
  API_ASSIGN_OR_RETURN(const auto key, params.NonEmpty("key"));
  API_ASSIGN_OR_RETURN(const size_t limit,
                       params.Limit(kDefaultQuotaKeysLimit, kMaxQuotaKeysLimit));
  json keys = json::array();
  bool truncated = false;
  if (quotas != nullptr) {
    API_ASSIGN_OR_RETURN(const auto standings, quotas->Keys(table, key, limit));
    size_t bytes = 0;  // the reply ends once its keys reach the budget of a page of keys
    for (const auto& k : standings) {
      if (bytes >= kMaxListReplyBytes) {
        truncated = true;
        break;
      }
      bytes += JsonStringBoundBytes(k.key) + JsonStringBoundBytes(k.table) + kListRowOverheadBytes;
      keys.push_back({{"table", k.table},
                      {"key", k.key},
                      {"metric", k.metric},
                      {"limit", k.limit},
                      {"used", k.used},
                      {"over", k.over},
                      {"default", k.is_default}});
    }
  }
  return JsonResponse(ctx.request.version(), {{"keys", std::move(keys)}, {"truncated", truncated}});
}

ApiResult<Response> HandleQuotaHistory(const RouteContext& ctx) {
  teach::QuotaService* const quotas = ctx.hooks.quotas;
  API_ASSIGN_OR_RETURN(const Params params, Params::Parse(ctx.query, {"table", "limit"}));
  API_ASSIGN_OR_RETURN(const auto table, params.NonEmpty("table"));
  API_ASSIGN_OR_RETURN(const size_t limit,
                       params.Limit(kDefaultQuotaHistoryLimit, kMaxQuotaHistoryLimit));
  json changes = json::array();
  if (quotas != nullptr) {
    API_ASSIGN_OR_RETURN(const auto history, quotas->History(table, limit));
    for (const auto& c : history) {
      changes.push_back({{"t", c.t_ms}, {"action", c.action}, {"quota", QuotaJson(c.quota)}});
    }
  }
  return JsonResponse(ctx.request.version(), {{"changes", std::move(changes)}});
}

}  // namespace stickmeter::http::internal
