// Replies over many long keys stay bounded in bytes, against the real store: keys may be up to
// 1 MiB, so a usage or keys page ends early once its keys reach kMaxListReplyBytes, and
// following `next_offset` / `next` still gives every key once with its exact total.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <future>
#include <map>
#include <nlohmann/json.hpp>

#include "http/api.h"
#include "http/server.h"
#include "tests/http/http_client.h"
#include "tests/http/store_fixture.h"
#include "tests/support/status_matchers.h"
#include "tsdb/store.h"

namespace stickmeter::http {
namespace {

using nlohmann::json;
using testing::Get;

constexpr int64_t kT0 = 1'790'812'800'000;  // 2026-10-01T00:00:00Z
constexpr int kKeys = 2000;
// Long, yet short enough for a `next` cursor to fit a request line.
constexpr size_t kKeyBytes = 6 << 10;
// Every other key holds this many control bytes, which JSON writes as six each (\u0001): a
// page's budget counts its keys as JSON, not as their bytes.
constexpr size_t kControlBytes = 800;

std::string LongKey(int i) {
  std::string key = "customer-" + std::to_string(1000 + i) + "-";
  if (i % 2 == 1) key.append(kControlBytes, '\x01');
  key.append(kKeyBytes - key.size(), static_cast<char>('a' + i % 26));
  return key;
}

class BoundedRepliesTest : public testing::RealStoreTest {
 protected:
  void SetUp() override {
    OpenStore("http-bounded-test");
    auto table = std::make_shared<ingest::TableInfo>();
    table->name = "/big";
    table->key_type = "string";
    table->key_size = kKeyBytes + 1;
    table->data_types = {"gpc0"};
    // Each key: a first value of 0, then its total, 30 s later.
    for (int round = 0; round < 2; ++round) {
      ingest::UpdateBatch batch;
      batch.source = "lb1";
      batch.connection_id = 1;
      ingest::TableUpdates tu;
      tu.table = table;
      for (int i = 0; i < kKeys; ++i) {
        ingest::EntryUpdate e;
        e.key = LongKey(i);
        e.received_ms = kT0 + round * 30'000;
        const uint64_t total = 1 + static_cast<uint64_t>((i * 7919) % 1000);
        e.values.push_back({"gpc0", ingest::MetricKind::kCounter32, round == 0 ? 0 : total});
        if (round == 1) want_[e.key] = total;
        tu.entries.push_back(std::move(e));
      }
      batch.tables.push_back(std::move(tu));
      Commit(std::move(batch));
    }
    Serve();
  }

  // The reply's JSON, after checking its status and that its body stays within the page budget
  // (plus one key and the reply's own fields).
  json GetBounded(const std::string& target) {
    auto r = Get(server_->port(), target);
    EXPECT_EQ(200u, r.status) << target.substr(0, 200) << " " << r.body.substr(0, 300);
    EXPECT_LE(r.body.size(), kMaxListReplyBytes + kKeyBytes + 5 * kControlBytes + 4096)
        << target.substr(0, 200);
    largest_reply_ = std::max(largest_reply_, r.body.size());
    auto doc = json::parse(r.body, nullptr, false);
    EXPECT_FALSE(doc.is_discarded());
    return doc;
  }
  void TearDown() override {
    // The figure: the largest reply, against the 12 MB of keys all pages hold together.
    RecordProperty("largest_reply_bytes", std::to_string(largest_reply_));
    std::printf("largest reply: %zu bytes for %zu bytes of keys\n", largest_reply_,
                kKeys * kKeyBytes);
    RealStoreTest::TearDown();
  }

  std::map<std::string, uint64_t> want_;
  size_t largest_reply_ = 0;
};

TEST_F(BoundedRepliesTest, UsagePagesEndAtTheByteBudgetAndTogetherHoldEveryKey) {
  const std::string base = "/api/v1/usage?table=/big&metric=gpc0&from=" + std::to_string(kT0) +
                           "&to=" + std::to_string(kT0 + 3'600'000);
  std::map<std::string, uint64_t> got;
  std::string last;
  size_t offset = 0, pages = 0;
  for (;;) {
    json doc = GetBounded(base + (offset ? "&offset=" + std::to_string(offset) : ""));
    ++pages;
    EXPECT_EQ(size_t{kKeys}, doc["total_rows"].get<size_t>());
    ASSERT_FALSE(doc["rows"].empty());
    for (const auto& row : doc["rows"]) {
      const std::string key = row["key"];
      EXPECT_LT(last, key);  // key order, each once
      last = key;
      got[key] = row["total"];
    }
    if (doc["next_offset"].is_null()) break;
    offset = doc["next_offset"];
    ASSERT_LT(pages, size_t{kKeys});  // never loops for ever
  }
  EXPECT_EQ(want_, got);
  EXPECT_GE(pages, 2u);  // 12 MB of keys do not fit one page

  // The top customers: the best rows by total, then by key.
  std::vector<std::pair<uint64_t, std::string>> best;
  for (const auto& [key, total] : want_) best.push_back({total, key});
  std::sort(best.begin(), best.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  json top = GetBounded(base + "&order=total&limit=5");
  ASSERT_EQ(5u, top["rows"].size());
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(best[i].second, top["rows"][i]["key"]);
    EXPECT_EQ(best[i].first, top["rows"][i]["total"]);
  }
  EXPECT_EQ(5u, top["next_offset"].get<size_t>());
}

TEST_F(BoundedRepliesTest, KeyPagesEndAtTheByteBudgetAndTogetherHoldEveryKey) {
  const std::string base = "/api/v1/keys?table=/big&limit=100000";
  std::vector<std::string> got;
  std::string target = base;
  for (int pages = 0; pages < kKeys; ++pages) {
    json doc = GetBounded(target);
    for (const auto& key : doc["keys"]) got.push_back(key);
    if (doc["next"].is_null()) {
      EXPECT_FALSE(doc["truncated"].get<bool>());
      break;
    }
    EXPECT_TRUE(doc["truncated"].get<bool>());
    EXPECT_EQ(got.back(), doc["next"].get<std::string>());
    std::string after;
    for (char c : got.back()) {
      if (std::isalnum(static_cast<unsigned char>(c))) {
        after += c;
      } else {
        char hex[4];
        std::snprintf(hex, sizeof hex, "%%%02X", static_cast<unsigned char>(c));
        after += hex;
      }
    }
    target = base + "&after=" + after;
  }
  std::vector<std::string> want;
  for (const auto& [key, total] : want_) want.push_back(key);
  EXPECT_EQ(want, got);
}

}  // namespace
}  // namespace stickmeter::http
