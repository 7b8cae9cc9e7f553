// The server's billing zone (ServerOptions::billing_tz) against the real store: /api/v1/info
// reports it (with the token when one is set; health stays exactly {"status":"ok"}), and an export
// that names no zone is the export in that zone, byte for byte, while one that names a zone keeps
// it. Requests around October's edge in UTC and in Berlin (UTC+2) make the two Octobers differ.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "billing/time_parse.h"
#include "http/server.h"
#include "tests/http/http_client.h"
#include "tests/http/store_fixture.h"
#include "tsdb/store.h"

namespace stickmeter::http {
namespace {

using nlohmann::json;
using testing::Get;

int64_t T(std::string_view text) { return *billing::ParseTime(text); }

class BillingZoneTest : public testing::RealStoreTest {
 protected:
  void SetUp() override { OpenStore("http-billing-zone-test"); }

  // The absolute request counter of `key` from lb1 at `t`.
  void Submit(const std::string& key, int64_t t, uint64_t requests) {
    static const auto table = [] {
      auto info = std::make_shared<ingest::TableInfo>();
      info->name = "/quota";
      info->key_type = "string";
      info->key_size = 65;
      info->data_types = {"http_req_cnt"};
      return info;
    }();
    CommitEntry("lb1", 1, table, key, t,
                {{"http_req_cnt", ingest::MetricKind::kCounter32, requests}});
  }

  // 5 requests in Berlin's October only (Sep 30 23:00 UTC), 7 in both, 11 in UTC's October only
  // (Oct 31 23:30 UTC is Nov 1 in Berlin).
  void FeedAroundOctober() {
    Submit("acme", T("2026-09-30T23:00:00Z"), 5);
    Submit("acme", T("2026-10-15T12:00:00Z"), 12);
    Submit("acme", T("2026-10-31T23:30:00Z"), 23);
  }

  json Export(const std::string& query) {
    auto r = Get(server_->port(), "/api/v1/export?format=json&table=/quota&" + query);
    EXPECT_EQ(200u, r.status) << query << " " << r.body;
    return json::parse(r.body);
  }
};

TEST_F(BillingZoneTest, InfoNamesTheZoneAndExportsWithoutOneUseIt) {
  FeedAroundOctober();
  ServerOptions options;
  options.billing_tz = "Europe/Berlin";
  Serve(options);

  auto info = Get(server_->port(), "/api/v1/info");
  ASSERT_EQ(200u, info.status);
  EXPECT_EQ("{\"billing_tz\":\"Europe/Berlin\"}\n", info.body);
  EXPECT_EQ("no-store", info.Header("cache-control"));
  auto health = Get(server_->port(), "/api/v1/health");
  ASSERT_EQ(200u, health.status);
  EXPECT_EQ("{\"status\":\"ok\"}\n", health.body);

  json implicit = Export("period=2026-10");
  EXPECT_EQ("Europe/Berlin", implicit["tz"]);
  EXPECT_EQ("2026-10-01T00:00:00+02:00", implicit["period_start"]);
  ASSERT_EQ(1u, implicit["rows"].size());
  EXPECT_EQ(12u, implicit["rows"][0]["total"].get<uint64_t>());  // 5 + 7
  EXPECT_EQ(implicit, Export("period=2026-10&tz=Europe/Berlin"));

  // A request that names a zone keeps it.
  json utc = Export("period=2026-10&tz=UTC");
  EXPECT_EQ("UTC", utc["tz"]);
  EXPECT_EQ("2026-10-01T00:00:00Z", utc["period_start"]);
  EXPECT_EQ(18u, utc["rows"][0]["total"].get<uint64_t>());  // 7 + 11

  // The CSV form too: the same bytes as with the zone named.
  auto a = Get(server_->port(), "/api/v1/export?period=2026-10");
  auto b = Get(server_->port(), "/api/v1/export?period=2026-10&tz=Europe/Berlin");
  ASSERT_EQ(200u, a.status) << a.body;
  EXPECT_EQ(b.body, a.body);
  EXPECT_NE(std::string::npos, a.body.find("2026-10-01T00:00:00+02:00")) << a.body;
}

TEST_F(BillingZoneTest, TheDefaultZoneIsUtc) {
  FeedAroundOctober();
  Serve();
  EXPECT_EQ("{\"billing_tz\":\"UTC\"}\n", Get(server_->port(), "/api/v1/info").body);
  EXPECT_EQ("{\"status\":\"ok\"}\n", Get(server_->port(), "/api/v1/health").body);
  json implicit = Export("period=2026-10");
  EXPECT_EQ("UTC", implicit["tz"]);
  EXPECT_EQ(18u, implicit["rows"][0]["total"].get<uint64_t>());
}

// With a token, /api/v1/info is like every call but health: 401 without the token (or with a
// wrong one), the zone with it. It answers GET and HEAD only, and takes no parameters.
TEST_F(BillingZoneTest, InfoNeedsTheTokenWhenOneIsSet) {
  ServerOptions options;
  options.billing_tz = "Europe/Berlin";
  options.token = "0123456789abcdef-token";
  Serve(options);
  const uint16_t port = server_->port();

  auto missing = Get(port, "/api/v1/info");
  EXPECT_EQ(401u, missing.status) << missing.body;
  EXPECT_EQ(std::string::npos, missing.body.find("Europe/Berlin")) << missing.body;
  EXPECT_EQ("Bearer realm=\"stickmeter\"", missing.Header("www-authenticate"));
  EXPECT_EQ(401u, Get(port, "/api/v1/info", {{"Authorization", "Bearer wrong"}}).status);

  const std::map<std::string, std::string> auth = {
      {"Authorization", "Bearer 0123456789abcdef-token"}};
  auto info = Get(port, "/api/v1/info", auth);
  EXPECT_EQ(200u, info.status) << info.body;
  EXPECT_EQ("{\"billing_tz\":\"Europe/Berlin\"}\n", info.body);
  EXPECT_EQ(400u, Get(port, "/api/v1/info?tz=UTC", auth).status);
  auto post = Get(port, "/api/v1/info", auth, boost::beast::http::verb::post);
  EXPECT_EQ(405u, post.status);
  EXPECT_EQ("GET, HEAD", post.Header("allow"));

  // Health needs no token, and stays exactly what monitors match.
  auto health = Get(port, "/api/v1/health");
  EXPECT_EQ(200u, health.status);
  EXPECT_EQ("{\"status\":\"ok\"}\n", health.body);
}

}  // namespace
}  // namespace stickmeter::http
