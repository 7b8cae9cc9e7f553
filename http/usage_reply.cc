#include "http/usage_reply.h"

#include <algorithm>

#include "common/json_writer.h"
#include "http/api_util.h"

namespace stickmeter::http::internal {

UsageReply::UsageReply(bool order_by_total, size_t offset, size_t limit, size_t max_bytes)
    : by_total_(order_by_total),
      offset_(offset),
      limit_(limit),
      max_bytes_(max_bytes),
      keep_(limit > SIZE_MAX - offset ? SIZE_MAX : offset + limit) {}

void UsageReply::AppendRow(std::string_view key, uint64_t total) {
  if (page_rows_ > 0) page_ += ',';
  page_ += "{\"key\":";
  AppendJsonString(page_, key);
  page_ += ",\"total\":";
  AppendDecimal(page_, total);
  page_ += '}';
  ++page_rows_;
}

bool UsageReply::Add(std::string_view key, uint64_t total) {
  const size_t index = seen_++;
  if (!by_total_) {
    if (index < offset_ || page_full_) return true;
    AppendRow(key, total);
    page_full_ = page_rows_ == limit_ || page_.size() > max_bytes_;
    return true;
  }
  auto worse_first = [](const Row& a, const Row& b) { return Better(a, b); };
  if (best_.size() == keep_) {
    const Row& worst = best_.front();
    if (keep_ == 0 || total < worst.total || (total == worst.total && key >= worst.key)) {
      return true;  // not better than the worst row kept
    }
    std::pop_heap(best_.begin(), best_.end(), worse_first);
    best_bytes_ -= JsonStringBoundBytes(best_.back().key) + kListRowOverheadBytes;
    best_.pop_back();
  }
  best_.push_back(Row{total, std::string(key)});
  best_bytes_ += JsonStringBoundBytes(key) + kListRowOverheadBytes;
  std::push_heap(best_.begin(), best_.end(), worse_first);
  // Over the budget: the worst rows go, and no more than what is left is ever kept.
  while (best_bytes_ > max_bytes_ && best_.size() > 1) {
    std::pop_heap(best_.begin(), best_.end(), worse_first);
    best_bytes_ -= JsonStringBoundBytes(best_.back().key) + kListRowOverheadBytes;
    best_.pop_back();
    keep_ = best_.size();
  }
  return true;
}

ApiResult<UsageReply::Parts> UsageReply::Finish() {
  Parts parts;
  parts.total_rows = seen_;
  size_t next = seen_;
  if (by_total_) {
    std::sort(best_.begin(), best_.end(), Better);
    if (offset_ >= best_.size() && offset_ < seen_) {
      return BadRequest(
          "offset: " + std::to_string(offset_) + " is past the " + std::to_string(best_.size()) +
          " rows one reply can rank by total for keys this long; page with order=key");
    }
    for (size_t i = offset_; i < best_.size() && i - offset_ < limit_; ++i) {
      AppendRow(best_[i].key, best_[i].total);
    }
    next = offset_ + page_rows_;
  } else {
    next = std::min(offset_, seen_) + page_rows_;
  }
  page_ += ']';
  parts.rows = std::move(page_);  // a page over every key of a large table is megabytes
  parts.next_offset = next < seen_ ? std::to_string(next) : "null";
  return parts;
}

}  // namespace stickmeter::http::internal
