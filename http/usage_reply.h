// The rows of a GET /api/v1/usage reply, built from the store's rows as they are visited (in key
// order) while holding no more than the reply needs, so that a usage query over every key of a
// large table (keys may be up to 1 MiB each) costs memory bounded in bytes, not in keys:
// - order=key keeps only the requested page's rows, as JSON, and ends the page early once that
//   JSON reaches `max_bytes` (`next_offset` then says where the next page starts);
// - order=total keeps the best `offset + limit` rows by total, and drops the smallest once
//   their keys reach `max_bytes` (a page then ends at the last row kept; an offset past it is
//   refused, naming `offset`).
// A page always holds at least one row when there are rows at or after `offset`.
//
// Thread-safety: none; one builder per request, on the thread that runs the query. Failure: Finish
// returns an ApiError (400 naming `offset`) for an order=total page that lies past what `max_bytes`
// let it rank.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "http/api_util.h"

namespace stickmeter::http::internal {

class UsageReply {
 public:
  UsageReply(bool order_by_total, size_t offset, size_t limit, size_t max_bytes);

  // One row of the store's, in key order. Always true (every row is counted).
  bool Add(std::string_view key, uint64_t total);

  // The reply's fields after `to_ms` in the API's JSON (its keys in the order the API writes
  // them): `,"rows":[...],"table":..` is up to the caller; this returns `"rows":[..]`,
  // `total_rows` and `next_offset`, as `"next_offset":N,"rows":[...]` and `"total_rows":N`.
  struct Parts {
    std::string next_offset;  // a number or null
    std::string rows;         // a JSON array
    size_t total_rows = 0;
  };
  // Call once: the rows move into the result.
  ApiResult<Parts> Finish();

 private:
  struct Row {
    uint64_t total;
    std::string key;
  };
  static bool Better(const Row& a, const Row& b) {
    return a.total != b.total ? a.total > b.total : a.key < b.key;
  }
  void AppendRow(std::string_view key, uint64_t total);

  const bool by_total_;
  const size_t offset_, limit_, max_bytes_;
  size_t seen_ = 0;
  // The page so far, as a JSON array without its closing bracket (order=total: from Finish).
  std::string page_ = "[";
  size_t page_rows_ = 0;
  bool page_full_ = false;
  // order=total: a heap whose front is the worst row kept, and the bytes its rows count for.
  std::vector<Row> best_;
  size_t best_bytes_ = 0;
  size_t keep_;  // rows the heap may hold: offset + limit, less once over max_bytes
};

}  // namespace stickmeter::http::internal
