// Helpers shared by the teach tests.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "teach/quota.h"

namespace stickmeter::teach::testing {

// A monthly UTC quota of table "/q": the key's own, or the default when `key` is nullopt.
inline Quota MakeQuota(std::optional<std::string> key, uint64_t limit,
                       std::string metric = "http_req_cnt") {
  Quota q;
  q.table = "/q";
  q.key = std::move(key);
  q.metric = std::move(metric);
  q.limit = limit;
  q.period = Period::kMonth;
  q.tz = "UTC";
  return q;
}

}  // namespace stickmeter::teach::testing
