// The /api/v1/quotas routes: list, create or replace, delete, keys' standing, history. The body
// of a PUT is validated here field by field (types, ranges, unknown fields); what needs the
// tables (a metric the table counts, a taught table, a known time zone) is the QuotaService's
// to check, whose InvalidArgument messages name the field too.
#include <limits>
#include <set>

#include "http/api_util.h"

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

[[noreturn]] void BadBody(std::string message) {
  throw ApiError{bhttp::status::bad_request, "bad_body", std::move(message)};
}

std::string TypeName(const json& v) {
  if (v.is_number_float()) return "a fraction";
  if (v.is_number()) return "a number";
  return std::string("a JSON ") + v.type_name();
}

// A string field of the body; nullopt when absent (or null, if `null_ok`).
std::optional<std::string> StringField(const json& body, const std::string& name, bool null_ok) {
  auto it = body.find(name);
  if (it == body.end() || (null_ok && it->is_null())) return std::nullopt;
  if (!it->is_string()) BadRequest(name + ": must be a string, not " + TypeName(*it));
  std::string value = it->get<std::string>();
  if (value.empty()) {
    BadRequest(name +
               (null_ok ? ": empty; omit it or give null for the table's default" : ": empty"));
  }
  return value;
}

teach::Quota ParseQuota(const std::string& text, const std::string& billing_tz) {
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
    BadBody("body: not valid JSON (" + why.substr(at == std::string::npos ? 0 : at + 2, 200) + ")");
  }
  if (!body.is_object()) BadBody("body: must be a JSON object, not " + TypeName(body));
  if (!twice.empty()) BadRequest(twice.substr(0, 64) + ": given more than once");
  static const std::set<std::string> kFields = {"table", "key", "metric", "limit", "period", "tz"};
  for (const auto& [name, value] : body.items()) {
    if (!kFields.contains(name)) {
      BadRequest(name.substr(0, 64) +
                 ": unknown field (a quota has table, key, metric, limit, period and tz)");
    }
  }
  teach::Quota q;
  q.tz = billing_tz;  // a quota that names no zone follows the server's billing zone
  auto table = StringField(body, "table", false);
  if (!table) BadRequest("table: missing");
  q.table = *table;
  q.key = StringField(body, "key", true);
  auto metric = StringField(body, "metric", false);
  if (!metric) BadRequest("metric: missing");
  q.metric = *metric;
  auto limit = body.find("limit");
  if (limit == body.end()) BadRequest("limit: missing");
  constexpr uint64_t kMaxLimit = std::numeric_limits<int64_t>::max();
  // nlohmann keeps the number's type: non-negative integers are unsigned, negative ones signed,
  // anything with a fraction, an exponent or beyond 2^64 a float.
  if (!limit->is_number_unsigned() || limit->get<uint64_t>() > kMaxLimit) {
    BadRequest("limit: must be an integer from 0 to " + std::to_string(kMaxLimit) + ", not " +
               limit->dump().substr(0, 40));
  }
  q.limit = limit->get<uint64_t>();
  if (auto period = StringField(body, "period", false)) {
    if (*period == "month") {
      q.period = teach::Period::kMonth;
    } else if (*period == "day") {
      q.period = teach::Period::kDay;
    } else {
      BadRequest("period: \"" + period->substr(0, 32) + "\" is not month or day");
    }
  }
  if (auto tz = StringField(body, "tz", false)) q.tz = *tz;
  return q;
}

}  // namespace

Response HandleQuotas(const Request& request, std::string_view path, std::string_view query,
                      teach::QuotaService* quotas, const std::string& billing_tz) {
  const unsigned version = request.version();
  const bhttp::verb method = request.method();
  const bool write = method == bhttp::verb::put || method == bhttp::verb::delete_;
  if (write && quotas == nullptr) {
    throw ApiError{bhttp::status::bad_request, "quotas_disabled", std::string(kDisabled)};
  }

  if (path == "/api/v1/quotas" && method == bhttp::verb::put) {
    Params params(query, {});
    if (request.body().size() > kMaxQuotaBodyBytes) {
      throw ApiError{bhttp::status::payload_too_large, "body_too_large",
                     "body: larger than " + std::to_string(kMaxQuotaBodyBytes) + " bytes"};
    }
    teach::Quota quota = ParseQuota(request.body(), billing_tz);
    return JsonResponse(version, StatusJson(Must(quotas->Put(quota))));
  }
  if (path == "/api/v1/quotas" && method == bhttp::verb::delete_) {
    Params params(query, {"table", "metric", "key"});
    std::string table = params.Required("table");
    std::string metric = params.Required("metric");
    std::optional<std::string> key = params.NonEmpty("key");
    Status s = quotas->Delete(table, metric, key);
    if (!s.ok()) Fail(s);
    Response res{bhttp::status::no_content, version};
    res.set(bhttp::field::cache_control, "no-store");
    return res;
  }
  if (path == "/api/v1/quotas") {
    Params params(query, {"table", "key"});
    auto table = params.NonEmpty("table");
    auto key = params.NonEmpty("key");
    json list = json::array();
    if (quotas != nullptr) {
      for (const auto& s : Must(quotas->List(table, key))) list.push_back(StatusJson(s));
    }
    return JsonResponse(version, {{"quotas", std::move(list)}, {"enabled", quotas != nullptr}});
  }
  if (path == "/api/v1/quotas/keys") {
    Params params(query, {"table", "limit"});
    auto table = params.NonEmpty("table");
    size_t limit = params.Limit(kDefaultQuotaKeysLimit, kMaxQuotaKeysLimit);
    json keys = json::array();
    bool truncated = false;
    if (quotas != nullptr) {
      size_t bytes = 0;  // the reply ends once its keys reach the budget of a page of keys
      for (const auto& k : Must(quotas->Keys(table, limit))) {
        if (bytes >= kMaxListReplyBytes) {
          truncated = true;
          break;
        }
        bytes += k.key.size() + k.table.size() + kListRowOverheadBytes;
        keys.push_back({{"table", k.table},
                        {"key", k.key},
                        {"metric", k.metric},
                        {"limit", k.limit},
                        {"used", k.used},
                        {"over", k.over},
                        {"default", k.is_default}});
      }
    }
    return JsonResponse(version, {{"keys", std::move(keys)}, {"truncated", truncated}});
  }
  // /api/v1/quotas/history
  Params params(query, {"table", "limit"});
  auto table = params.NonEmpty("table");
  size_t limit = params.Limit(kDefaultQuotaHistoryLimit, kMaxQuotaHistoryLimit);
  json changes = json::array();
  if (quotas != nullptr) {
    for (const auto& c : Must(quotas->History(table, limit))) {
      changes.push_back({{"t", c.t_ms}, {"action", c.action}, {"quota", QuotaJson(c.quota)}});
    }
  }
  return JsonResponse(version, {{"changes", std::move(changes)}});
}

}  // namespace stickmeter::http::internal
