// Client errors against the real server and the real tsdb::Store: a request refused with a 4xx is
// counted in stickmeter_http_requests_total{code,route} under the endpoint it asked for, not as
// "other", with the label set still bounded (unknown API paths are "other", everything else
// outside /api/ is "ui"); a time whose `+` a URL turned into a space is refused with a hint.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "http/server.h"
#include "tests/http/http_client.h"
#include "tests/http/test_server.h"
#include "tsdb/store.h"

namespace stickmeter::http {
namespace {

using testing::Get;

// The value of the series `stickmeter_http_requests_total{code="CODE",route="ROUTE"}` in a
// /metrics body, 0 when absent.
uint64_t RequestCount(const std::string& metrics, const std::string& code,
                      const std::string& route) {
  const std::string series =
      "stickmeter_http_requests_total{code=\"" + code + "\",route=\"" + route + "\"} ";
  const size_t at = metrics.find(series);
  if (at == std::string::npos) return 0;
  return std::stoull(metrics.substr(at + series.size()));
}

class ClientErrorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/http-request-metrics-test-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    tsdb::StoreOptions options;
    options.path = dir_ + "/db";
    options.sync_writes = false;
    auto store = tsdb::Store::Open(options);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }
  void TearDown() override {
    if (store_) {
      EXPECT_TRUE(store_->Close().ok());
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::string dir_;
  std::unique_ptr<tsdb::Store> store_;
};

TEST_F(ClientErrorsTest, ClientErrorsCountUnderTheirRoute) {
  ServerOptions options;
  options.token = std::string("0123456789abcdef-token");
  testing::TestServer server(*store_, options);
  const uint16_t port = server.port();
  const std::map<std::string, std::string> auth = {
      {"Authorization", "Bearer 0123456789abcdef-token"}};
  auto metrics = [&] { return Get(port, "/metrics", auth).body; };
  const std::string before = metrics();

  // 400: a parameter missing (refused by the handler, which throws).
  EXPECT_EQ(400u, Get(port, "/api/v1/usage?table=/quota", auth).status);
  // 404: a table the store has never had (refused on the query pool).
  EXPECT_EQ(404u, Get(port, "/api/v1/keys?table=/nothing", auth).status);
  // 401: no token.
  EXPECT_EQ(401u, Get(port, "/api/v1/peers").status);
  EXPECT_EQ(401u, Get(port, "/api/v1/info").status);
  // Unknown paths stay bounded: "other" under /api/, "ui" elsewhere.
  EXPECT_EQ(404u, Get(port, "/api/v1/nothing-" + std::to_string(::getpid()), auth).status);

  const std::string after = metrics();
  EXPECT_EQ(1u, RequestCount(after, "400", "/api/v1/usage") -
                    RequestCount(before, "400", "/api/v1/usage"))
      << after;
  EXPECT_EQ(
      1u, RequestCount(after, "404", "/api/v1/keys") - RequestCount(before, "404", "/api/v1/keys"))
      << after;
  EXPECT_EQ(1u, RequestCount(after, "401", "/api/v1/peers") -
                    RequestCount(before, "401", "/api/v1/peers"))
      << after;
  EXPECT_EQ(
      1u, RequestCount(after, "401", "/api/v1/info") - RequestCount(before, "401", "/api/v1/info"))
      << after;
  EXPECT_EQ(1u, RequestCount(after, "404", "other") - RequestCount(before, "404", "other"))
      << after;
  EXPECT_EQ(std::string::npos, after.find("route=\"/api/v1/nothing")) << after;
}

TEST_F(ClientErrorsTest, PlusSignTurnedIntoSpaceIsExplained) {
  testing::TestServer server(*store_, ServerOptions{});
  // As copied from the docs into a URL: the `+` of the offset arrives as a space.
  auto r = Get(server.port(),
               "/api/v1/usage?table=/quota&metric=gpc0&from=2026-10-01T00:00:00+02:00"
               "&to=2026-11-01T00:00:00Z");
  ASSERT_EQ(400u, r.status) << r.body;
  const auto doc = nlohmann::json::parse(r.body);
  const std::string message = doc["error"]["message"];
  EXPECT_EQ(0u, message.find("from:")) << message;
  EXPECT_NE(std::string::npos, message.find("%2B")) << message;
  // Written with %2B, the same time is accepted (the table is unknown: 404, not 400).
  EXPECT_EQ(404u, Get(server.port(),
                      "/api/v1/usage?table=/quota&metric=gpc0&from=2026-10-01T00:00:00%2B02:00"
                      "&to=2026-11-01T00:00:00Z")
                      .status);
}

}  // namespace
}  // namespace stickmeter::http
