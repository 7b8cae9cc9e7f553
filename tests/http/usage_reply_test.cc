// The usage reply's page builder (http/usage_reply.h) without a store: pages in key order and by
// total hold the right rows, end early at the byte budget with the right next offset, and an
// order=total page past what the budget could rank is a 400 naming `offset`.
#include "http/usage_reply.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "http/api_util.h"

namespace stickmeter::http::internal {
namespace {

using nlohmann::json;

struct Row {
  std::string key;
  uint64_t total;
};

// Rows in key order with totals that repeat (ties are ordered by key).
std::vector<Row> SomeRows(int n, size_t key_bytes = 0) {
  std::vector<Row> rows;
  for (int i = 0; i < n; ++i) {
    char name[16];
    std::snprintf(name, sizeof name, "k%04d", i);
    std::string key = name;
    if (key_bytes > key.size()) key.append(key_bytes - key.size(), 'x');
    rows.push_back({key, static_cast<uint64_t>((i * 37) % 11)});
  }
  return rows;
}

struct Page {
  json rows;
  json next_offset;
  size_t total_rows;
};

// The page, or the refusal Finish returned.
ApiResult<Page> TryBuild(const std::vector<Row>& rows, bool by_total, size_t offset, size_t limit,
                         size_t max_bytes) {
  UsageReply reply(by_total, offset, limit, max_bytes);
  for (const auto& r : rows) EXPECT_TRUE(reply.Add(r.key, r.total));
  API_ASSIGN_OR_RETURN(const UsageReply::Parts parts, reply.Finish());
  return Page{json::parse(parts.rows), json::parse(parts.next_offset), parts.total_rows};
}

Page Build(const std::vector<Row>& rows, bool by_total, size_t offset, size_t limit,
           size_t max_bytes) {
  auto page = TryBuild(rows, by_total, offset, limit, max_bytes);
  if (!page.ok()) {
    ADD_FAILURE() << "refused: " << std::move(page).error().message;
    return Page{json(), json(), 0};
  }
  return std::move(page).value();
}

std::vector<Row> ByTotal(std::vector<Row> rows) {
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    return a.total != b.total ? a.total > b.total : a.key < b.key;
  });
  return rows;
}

// Follows next_offset from 0 and returns every row of every page.
std::vector<Row> AllPages(const std::vector<Row>& rows, bool by_total, size_t limit,
                          size_t max_bytes, size_t* pages) {
  std::vector<Row> out;
  size_t offset = 0;
  *pages = 0;
  for (;;) {
    Page p = Build(rows, by_total, offset, limit, max_bytes);
    ++*pages;
    EXPECT_EQ(rows.size(), p.total_rows);
    for (const auto& r : p.rows) out.push_back({r["key"], r["total"]});
    if (p.next_offset.is_null()) break;
    EXPECT_EQ(offset + p.rows.size(), p.next_offset.get<size_t>());
    offset = p.next_offset.get<size_t>();
    if (*pages > rows.size()) break;  // never loops for ever
  }
  return out;
}

void ExpectSameRows(const std::vector<Row>& want, const std::vector<Row>& got) {
  ASSERT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(want[i].key, got[i].key) << i;
    EXPECT_EQ(want[i].total, got[i].total) << i;
  }
}

TEST(UsageReplyTest, PagesInKeyOrderAndByTotalHoldEveryRowOnce) {
  const auto rows = SomeRows(50);
  size_t pages = 0;
  ExpectSameRows(rows, AllPages(rows, false, 7, 1 << 20, &pages));
  EXPECT_EQ(8u, pages);
  ExpectSameRows(ByTotal(rows), AllPages(rows, true, 7, 1 << 20, &pages));
  EXPECT_EQ(8u, pages);
  // Without a limit: one page of every row.
  ExpectSameRows(ByTotal(rows), AllPages(rows, true, SIZE_MAX, 1 << 20, &pages));
  EXPECT_EQ(1u, pages);
  // An offset past the last row: no rows, no next page.
  Page past = Build(rows, true, 60, 5, 1 << 20);
  EXPECT_TRUE(past.rows.empty());
  EXPECT_TRUE(past.next_offset.is_null());
  EXPECT_EQ(50u, past.total_rows);
}

TEST(UsageReplyTest, LongKeysEndAPageAtTheByteBudget) {
  // 40 keys of 100 KiB with a budget of 1 MiB: ~10 keys a page, never more than the budget and
  // one key.
  const auto rows = SomeRows(40, 100 << 10);
  const size_t budget = 1 << 20;
  UsageReply first(false, 0, SIZE_MAX, budget);
  for (const auto& r : rows) first.Add(r.key, r.total);
  auto finished = first.Finish();
  ASSERT_TRUE(finished.ok());
  const UsageReply::Parts& parts = *finished;
  EXPECT_LE(parts.rows.size(), budget + (100 << 10) + 64);
  EXPECT_EQ("11", parts.next_offset);  // 11 rows of ~100 KiB pass 1 MiB
  size_t pages = 0;
  ExpectSameRows(rows, AllPages(rows, false, SIZE_MAX, budget, &pages));
  EXPECT_EQ(4u, pages);
}

TEST(UsageReplyTest, ByTotalKeepsTheBestRowsWithinTheBudgetAndRefusesDeeperPages) {
  const auto rows = SomeRows(40, 100 << 10);
  const size_t budget = 1 << 20;  // ~10 rows of 100 KiB
  const auto best = ByTotal(rows);
  Page p = Build(rows, true, 0, SIZE_MAX, budget);
  ASSERT_FALSE(p.rows.empty());
  ASSERT_FALSE(p.next_offset.is_null());
  const size_t kept = p.next_offset.get<size_t>();
  EXPECT_EQ(kept, p.rows.size());
  EXPECT_LT(kept, rows.size());
  EXPECT_LE(kept * ((100 << 10) + kListRowOverheadBytes), budget);
  for (size_t i = 0; i < kept; ++i) {
    EXPECT_EQ(best[i].key, p.rows[i]["key"]) << i;
    EXPECT_EQ(best[i].total, p.rows[i]["total"]) << i;
  }
  // The next page (offset = kept) lies past what one reply can rank with keys this long.
  auto past = TryBuild(rows, true, kept, SIZE_MAX, budget);
  ASSERT_FALSE(past.ok()) << "an offset past the rows ranked was answered";
  const ApiError e = std::move(past).error();
  EXPECT_EQ(400u, static_cast<unsigned>(e.status));
  EXPECT_EQ(0u, e.message.rfind("offset: ", 0)) << e.message;
  // A small page deep in the ranking fits the budget: offset + limit rows are ranked.
  Page deep = Build(rows, true, 5, 3, budget);
  ASSERT_EQ(3u, deep.rows.size());
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(best[5 + i].key, deep.rows[i]["key"]);
  EXPECT_EQ(8u, deep.next_offset.get<size_t>());
}

}  // namespace
}  // namespace stickmeter::http::internal
