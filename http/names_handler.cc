// GET /api/v1/names: the display names of a table's keys (--key-names), paged as /api/v1/keys
// is: ascending by key, `prefix`, `limit`, `after`, and a page ends once its JSON reaches
// kMaxListReplyBytes, with `next` set. The names come from the file read at start, not from the
// store: a table the store has not seen yet may have names, and a table without any answers an
// empty list.
#include "common/json_writer.h"
#include "http/routes.h"

namespace stickmeter::http::internal {

ApiResult<Response> HandleNames(const RouteContext& ctx) {
  API_ASSIGN_OR_RETURN(const Params params,
                       Params::Parse(ctx.query, {"table", "prefix", "limit", "after"}));
  API_ASSIGN_OR_RETURN(const std::string table, params.Required("table"));
  const std::string prefix = params.Get("prefix").value_or("");
  API_ASSIGN_OR_RETURN(const size_t limit, params.Limit(kDefaultKeysLimit, kMaxKeysLimit));
  const std::string after = params.Get("after").value_or("");
  // Written by hand, in the order the JSON serializer writes objects (by name), so the page is
  // measured in the bytes it is sent in, escapes included.
  std::string body = "{\"names\":[";
  bool truncated = false;
  std::string_view last;
  if (ctx.options.key_names) {
    auto [it, end] = ctx.options.key_names->Range(table, prefix, after);
    size_t count = 0;
    for (; it != end && std::string_view(it->key).starts_with(prefix); ++it) {
      if (count == limit || (count > 0 && body.size() >= kMaxListReplyBytes)) {
        truncated = true;
        break;
      }
      body += count == 0 ? "{\"key\":" : ",{\"key\":";
      AppendJsonString(body, it->key);
      body += ",\"name\":";
      AppendJsonString(body, it->name);
      body += '}';
      ++count;
      last = it->key;
    }
  }
  body += "],\"next\":";
  if (truncated) {
    AppendJsonString(body, last);
  } else {
    body += "null";
  }
  body += ",\"table\":";
  AppendJsonString(body, table);
  body += truncated ? ",\"truncated\":true}\n" : ",\"truncated\":false}\n";
  return JsonTextResponse(ctx.request.version(), std::move(body));
}

}  // namespace stickmeter::http::internal
