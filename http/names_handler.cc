// GET /api/v1/names: the display names of a table's keys (--key-names), paged as /api/v1/keys
// is: ascending by key, `prefix`, `limit`, `after`, and a page ends at kMaxListReplyBytes with
// `next` set. The names come from the file read at start, not from the store: a table the store
// has not seen yet may have names, and a table without any answers an empty list.
#include <nlohmann/json.hpp>

#include "http/routes.h"

namespace stickmeter::http::internal {

ApiResult<Response> HandleNames(const RouteContext& ctx) {
  API_ASSIGN_OR_RETURN(const Params params,
                       Params::Parse(ctx.query, {"table", "prefix", "limit", "after"}));
  API_ASSIGN_OR_RETURN(const std::string table, params.Required("table"));
  const std::string prefix = params.Get("prefix").value_or("");
  API_ASSIGN_OR_RETURN(const size_t limit, params.Limit(kDefaultKeysLimit, kMaxKeysLimit));
  const std::string after = params.Get("after").value_or("");
  nlohmann::json names = nlohmann::json::array();
  bool truncated = false;
  std::string last;
  if (ctx.options.key_names) {
    auto [it, end] = ctx.options.key_names->Range(table, prefix, after);
    size_t count = 0, bytes = 0;
    for (; it != end && std::string_view(it->key).starts_with(prefix); ++it) {
      if (count == limit || (count > 0 && bytes >= kMaxListReplyBytes)) {
        truncated = true;
        break;
      }
      names.push_back({{"key", it->key}, {"name", it->name}});
      bytes += it->key.size() + it->name.size() + kListRowOverheadBytes;
      ++count;
      last = it->key;
    }
  }
  nlohmann::json next = truncated ? nlohmann::json(last) : nlohmann::json(nullptr);
  return JsonResponse(ctx.request.version(), {{"table", table},
                                              {"names", std::move(names)},
                                              {"truncated", truncated},
                                              {"next", std::move(next)}});
}

}  // namespace stickmeter::http::internal
