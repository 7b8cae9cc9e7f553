// /api/v1/quotas through the real server on 127.0.0.1 (port 0), against FakeQuotaService: the
// body's validation (every 400 names its field), the round trip PUT -> GET, DELETE, the keys'
// standing and the history, authentication of writes, and a server without quotas.
#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <nlohmann/json.hpp>
#include <thread>

#include "billing/time_parse.h"
#include "http/api.h"
#include "http/server.h"
#include "tests/http/fake_quota_service.h"
#include "tests/http/fake_store.h"
#include "tests/http/http_client.h"

namespace stickmeter::http {
namespace {

using nlohmann::json;
using testing::ClientResponse;
using testing::FakeQuotaService;
using testing::Get;

constexpr const char* kToken = "quota-test-token";

class QuotaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    quotas_.Teach("/q", {"http_req_cnt", "gpc0"});
    quotas_.SetUsed("/q", "acme", "http_req_cnt", 350);
    quotas_.SetUsed("/q", "beta", "http_req_cnt", 10);
    quotas_.SetUsed("/q", "gamma", "http_req_cnt", 150);
  }
  void TearDown() override { StopServer(); }

  void StartServer(bool with_quotas, bool with_token = false, bool cors = false) {
    ServerOptions options;
    options.port = 0;
    if (cors) options.cors_origins = {"*"};
    if (with_token) options.token = kToken;
    ServerHooks hooks;
    if (with_quotas) hooks.quotas = &quotas_;
    server_ = std::make_unique<Server>(io_, options, store_, hooks);
    ASSERT_TRUE(server_->Start().ok());
    thread_ = std::thread([this] { io_.run(); });
  }
  void StopServer() {
    if (!server_) return;
    server_->Stop();
    work_.reset();
    thread_.join();
    server_.reset();
  }

  ClientResponse Send(boost::beast::http::verb method, const std::string& target,
                      const std::string& body = "", bool auth = false) {
    boost::beast::http::request<boost::beast::http::string_body> req{method, target, 11};
    if (!body.empty()) {
      req.set(boost::beast::http::field::content_type, "application/json");
      req.body() = body;
    }
    if (auth) req.set(boost::beast::http::field::authorization, std::string("Bearer ") + kToken);
    return testing::Send(server_->port(), std::move(req));
  }
  ClientResponse Put(const json& body, bool auth = false) {
    return Send(boost::beast::http::verb::put, "/api/v1/quotas", body.dump(), auth);
  }
  ClientResponse Delete(const std::string& query, bool auth = false) {
    return Send(boost::beast::http::verb::delete_, "/api/v1/quotas?" + query, "", auth);
  }
  json GetJson(const std::string& target) {
    auto r = Get(server_->port(), target);
    EXPECT_EQ(200u, r.status) << target << " " << r.body;
    return json::parse(r.body, nullptr, false);
  }
  // Expects a 400 (or `status`) whose message starts with `field`; returns the error's code.
  static std::string ExpectError(const ClientResponse& r, const std::string& field,
                                 unsigned status = 400) {
    EXPECT_EQ(status, r.status) << r.body;
    json body = json::parse(r.body, nullptr, false);
    EXPECT_TRUE(body.contains("error")) << r.body;
    if (!body.contains("error")) return "";
    std::string message = body["error"]["message"];
    EXPECT_EQ(0u, message.find(field + ":"))
        << "expected a message about " << field << ": " << message;
    return body["error"]["code"];
  }

  static json Acme() {
    return {{"table", "/q"}, {"key", "acme"}, {"metric", "http_req_cnt"}, {"limit", 300}};
  }

  FakeQuotaService quotas_;
  testing::FakeStore store_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{
      boost::asio::make_work_guard(io_)};
  std::unique_ptr<Server> server_;
  std::thread thread_;
};

TEST_F(QuotaTest, PutThenGetRoundTrips) {
  StartServer(true);
  auto r = Put(Acme());
  ASSERT_EQ(200u, r.status) << r.body;
  json put = json::parse(r.body);
  EXPECT_EQ("/q", put["table"]);
  EXPECT_EQ("acme", put["key"]);
  EXPECT_EQ("http_req_cnt", put["metric"]);
  EXPECT_EQ(300, put["limit"]);
  EXPECT_EQ("month", put["period"]);  // the defaults
  EXPECT_EQ("UTC", put["tz"]);
  EXPECT_EQ(350, put["used"]);
  EXPECT_EQ(true, put["over"]);
  EXPECT_FALSE(put.contains("over_keys"));
  EXPECT_EQ(*billing::ParseTime("2026-10-01T00:00:00Z"), put["period_start"]);
  EXPECT_EQ(*billing::ParseTime("2026-11-01T00:00:00Z"), put["period_end"]);

  json list = GetJson("/api/v1/quotas");
  EXPECT_EQ(true, list["enabled"]);
  ASSERT_EQ(1u, list["quotas"].size()) << list;
  EXPECT_EQ(put, list["quotas"][0]);

  // A table default: key null, a daily period in another zone, and the keys it governs.
  r = Put({{"table", "/q"},
           {"key", nullptr},
           {"metric", "http_req_cnt"},
           {"limit", 100},
           {"period", "day"},
           {"tz", "Europe/Berlin"}});
  ASSERT_EQ(200u, r.status) << r.body;
  json def = json::parse(r.body);
  EXPECT_TRUE(def["key"].is_null());
  EXPECT_EQ("day", def["period"]);
  EXPECT_EQ("Europe/Berlin", def["tz"]);
  EXPECT_EQ(1, def["over_keys"]);  // gamma (150 >= 100); acme has its own quota
  EXPECT_EQ(*billing::ParseTime("2026-09-30T22:00:00Z"), def["period_start"]);
  EXPECT_EQ(*billing::ParseTime("2026-10-01T22:00:00Z"), def["period_end"]);

  EXPECT_EQ(2u, GetJson("/api/v1/quotas?table=/q")["quotas"].size());
  EXPECT_EQ(0u, GetJson("/api/v1/quotas?table=/other")["quotas"].size());
  // With a key: its own quotas and the table's defaults.
  EXPECT_EQ(2u, GetJson("/api/v1/quotas?table=/q&key=acme")["quotas"].size());
  EXPECT_EQ(1u, GetJson("/api/v1/quotas?table=/q&key=beta")["quotas"].size());

  // Replacing keeps one quota per (table, metric, key).
  json changed = Acme();
  changed["limit"] = 1000;
  ASSERT_EQ(200u, Put(changed).status);
  json again = GetJson("/api/v1/quotas?table=/q&key=acme");
  ASSERT_EQ(2u, again["quotas"].size());
  EXPECT_EQ(1000, again["quotas"][1]["limit"]) << again;
  EXPECT_EQ(false, again["quotas"][1]["over"]) << again;
}

TEST_F(QuotaTest, KeysAndHistory) {
  StartServer(true);
  ASSERT_EQ(200u, Put({{"table", "/q"}, {"metric", "http_req_cnt"}, {"limit", 100}}).status);
  ASSERT_EQ(200u, Put(Acme()).status);
  json keys = GetJson("/api/v1/quotas/keys?table=/q");
  ASSERT_EQ(3u, keys["keys"].size()) << keys;
  // Over first (gamma 150/100 is further over than acme 350/300), then by usage.
  EXPECT_EQ("gamma", keys["keys"][0]["key"]);
  EXPECT_EQ(true, keys["keys"][0]["over"]);
  EXPECT_EQ(true, keys["keys"][0]["default"]);
  EXPECT_EQ("acme", keys["keys"][1]["key"]);
  EXPECT_EQ(false, keys["keys"][1]["default"]);
  EXPECT_EQ(300, keys["keys"][1]["limit"]);
  EXPECT_EQ(350, keys["keys"][1]["used"]);
  EXPECT_EQ("beta", keys["keys"][2]["key"]);
  EXPECT_EQ(false, keys["keys"][2]["over"]);
  EXPECT_EQ(1u, GetJson("/api/v1/quotas/keys?limit=1")["keys"].size());
  // One key, wherever it ranks: beta comes last of the three, and alone with key=beta.
  json beta = GetJson("/api/v1/quotas/keys?table=/q&key=beta&limit=1");
  ASSERT_EQ(1u, beta["keys"].size()) << beta;
  EXPECT_EQ("beta", beta["keys"][0]["key"]);
  EXPECT_EQ(0u, GetJson("/api/v1/quotas/keys?key=nobody")["keys"].size());
  ExpectError(Get(server_->port(), "/api/v1/quotas/keys?table=/q&key="), "key");
  ExpectError(Get(server_->port(), "/api/v1/quotas/keys?limit=10001"), "limit");
  ExpectError(Get(server_->port(), "/api/v1/quotas/keys?limit=0"), "limit");
  ExpectError(Get(server_->port(), "/api/v1/quotas/keys?table="), "table");
  ExpectError(Get(server_->port(), "/api/v1/quotas/keys?tabel=/q"), "tabel");

  ASSERT_EQ(204u, Delete("table=/q&metric=http_req_cnt").status);
  json history = GetJson("/api/v1/quotas/history?table=/q");
  ASSERT_EQ(3u, history["changes"].size()) << history;
  EXPECT_EQ("put", history["changes"][0]["action"]);
  EXPECT_TRUE(history["changes"][0]["quota"]["key"].is_null());
  EXPECT_EQ("acme", history["changes"][1]["quota"]["key"]);
  EXPECT_EQ("delete", history["changes"][2]["action"]);
  EXPECT_EQ(100, history["changes"][2]["quota"]["limit"]);
  EXPECT_EQ(1790812800000, history["changes"][2]["t"]);
  EXPECT_EQ(1u, GetJson("/api/v1/quotas/history?limit=1")["changes"].size());
  EXPECT_EQ(0u, GetJson("/api/v1/quotas/history?table=/other")["changes"].size());
}

TEST_F(QuotaTest, DeleteAnswers204ThenNotFound) {
  StartServer(true);
  ASSERT_EQ(200u, Put(Acme()).status);
  auto r = Delete("table=%2Fq&metric=http_req_cnt&key=acme");
  EXPECT_EQ(204u, r.status) << r.body;
  EXPECT_EQ("", r.body);
  EXPECT_EQ(0u, GetJson("/api/v1/quotas")["quotas"].size());
  r = Delete("table=/q&metric=http_req_cnt&key=acme");
  EXPECT_EQ("not_found", ExpectError(r, "quota", 404));
  // The default is another quota than the key's own.
  ASSERT_EQ(200u, Put(Acme()).status);
  ExpectError(Delete("table=/q&metric=http_req_cnt"), "quota", 404);
  ExpectError(Delete("metric=http_req_cnt&key=acme"), "table");
  ExpectError(Delete("table=/q&key=acme"), "metric");
  ExpectError(Delete("table=/q&metric=http_req_cnt&key="), "key");
  ExpectError(Delete("table=/q&metric=http_req_cnt&color=red"), "color");
}

TEST_F(QuotaTest, EveryBadBodyNamesItsField) {
  StartServer(true);
  auto with = [](const std::string& field, json value) {
    json body = Acme();
    body[field] = std::move(value);
    return body;
  };
  auto without = [](const std::string& field) {
    json body = Acme();
    body.erase(field);
    return body;
  };
  EXPECT_EQ(
      "bad_body",
      ExpectError(Send(boost::beast::http::verb::put, "/api/v1/quotas", "{\"table\":"), "body"));
  EXPECT_EQ("bad_body",
            ExpectError(Send(boost::beast::http::verb::put, "/api/v1/quotas", "[1]"), "body"));
  ExpectError(Send(boost::beast::http::verb::put, "/api/v1/quotas", ""), "body");
  ExpectError(Put(without("table")), "table");
  ExpectError(Put(with("table", "")), "table");
  ExpectError(Put(with("table", 7)), "table");
  ExpectError(Put(without("metric")), "metric");
  ExpectError(Put(with("metric", json::array())), "metric");
  ExpectError(Put(without("limit")), "limit");
  for (const json& bad : {json(-1), json(1.5), json(300.0), json("300"), json(nullptr), json(true),
                          json::parse("9223372036854775808"), json::parse("1e3"),
                          json::parse("18446744073709551616")}) {
    SCOPED_TRACE(bad.dump());
    ExpectError(Put(with("limit", bad)), "limit");
  }
  ExpectError(Put(with("period", "week")), "period");
  ExpectError(Put(with("period", 1)), "period");
  ExpectError(Put(with("key", 42)), "key");
  ExpectError(Put(with("key", "")), "key");
  ExpectError(Put(with("tz", false)), "tz");
  ExpectError(Put(with("used", 5)), "used");
  ExpectError(Send(boost::beast::http::verb::put, "/api/v1/quotas",
                   R"({"table":"/q","metric":"gpc0","limit":-1,"limit":5})"),
              "limit");
  // What needs the tables comes from the service, with its field.
  ExpectError(Put(with("metric", "conn_cur")), "metric");
  ExpectError(Put(with("tz", "Mars/Olympus_Mons")), "tz");
  ExpectError(Put(with("table", "/untaught")), "table");
  // Nothing was stored by any of them.
  EXPECT_EQ(0u, GetJson("/api/v1/quotas")["quotas"].size());

  // The largest limit is accepted, 0 too (over at once).
  auto r = Put(with("limit", json::parse("9223372036854775807")));
  ASSERT_EQ(200u, r.status) << r.body;
  EXPECT_EQ(9223372036854775807u, json::parse(r.body)["limit"].get<uint64_t>());
  r = Put(with("limit", 0));
  ASSERT_EQ(200u, r.status) << r.body;
  EXPECT_EQ(true, json::parse(r.body)["over"]);

  // A body over 16 KiB.
  json big = Acme();
  big["key"] = std::string(kMaxQuotaBodyBytes, 'k');
  ExpectError(Put(big), "body", 413);
  // Parameters on a PUT are a mistake too.
  ExpectError(Send(boost::beast::http::verb::put, "/api/v1/quotas?table=/q", Acme().dump()),
              "table");
}

TEST_F(QuotaTest, ServiceErrorsMapToStatuses) {
  StartServer(true);
  quotas_.FailWith(Status::IoError("disk on fire"));
  EXPECT_EQ("internal", ExpectError(Get(server_->port(), "/api/v1/quotas"), "store", 500));
  EXPECT_EQ("internal", ExpectError(Put(Acme()), "store", 500));
  quotas_.FailWith(Status::Unavailable("quotas: shutting down"));
  EXPECT_EQ("unavailable", ExpectError(Put(Acme()), "quotas", 503));
}

TEST_F(QuotaTest, WritesNeedTheToken) {
  StartServer(true, true);
  EXPECT_EQ("unauthorized", ExpectError(Put(Acme()), "authorization", 401));
  EXPECT_EQ(401u, Delete("table=/q&metric=http_req_cnt&key=acme").status);
  EXPECT_EQ(401u, Get(server_->port(), "/api/v1/quotas").status);
  EXPECT_EQ(0u, quotas_.List(std::nullopt, std::nullopt)->size());
  ASSERT_EQ(200u, Put(Acme(), true).status);
  auto r = Get(server_->port(), "/api/v1/quotas/keys",
               {{"Authorization", std::string("Bearer ") + kToken}});
  EXPECT_EQ(200u, r.status) << r.body;
  EXPECT_EQ(204u, Delete("table=/q&metric=http_req_cnt&key=acme", true).status);
}

TEST_F(QuotaTest, OtherMethodsAre405WithAllow) {
  StartServer(true);
  auto r = Send(boost::beast::http::verb::post, "/api/v1/quotas", Acme().dump());
  EXPECT_EQ(405u, r.status);
  EXPECT_EQ("GET, HEAD, PUT, DELETE", r.Header("allow"));
  r = Send(boost::beast::http::verb::put, "/api/v1/quotas/keys", Acme().dump());
  EXPECT_EQ(405u, r.status);
  EXPECT_EQ("GET, HEAD", r.Header("allow"));
  r = Send(boost::beast::http::verb::delete_, "/api/v1/quotas/history");
  EXPECT_EQ(405u, r.status);
  // Writes elsewhere stay refused.
  r = Send(boost::beast::http::verb::put, "/api/v1/usage", "{}");
  EXPECT_EQ(405u, r.status);
  EXPECT_EQ("GET, HEAD", r.Header("allow"));
}

TEST_F(QuotaTest, CorsPreflightAllowsTheWrites) {
  StartServer(true, true, true);
  auto r = Send(boost::beast::http::verb::options, "/api/v1/quotas");
  EXPECT_EQ(204u, r.status);
  EXPECT_EQ("GET, HEAD, PUT, DELETE", r.Header("access-control-allow-methods"));
  EXPECT_EQ("Authorization, Content-Type", r.Header("access-control-allow-headers"));
}

TEST_F(QuotaTest, WithoutQuotasListsAreEmptyAndWritesRefused) {
  StartServer(false);
  EXPECT_EQ(json::parse(R"({"quotas":[],"enabled":false})"), GetJson("/api/v1/quotas?table=/q"));
  EXPECT_EQ(json::parse(R"({"keys":[],"truncated":false})"), GetJson("/api/v1/quotas/keys"));
  EXPECT_EQ(json::parse(R"({"changes":[]})"), GetJson("/api/v1/quotas/history"));
  auto r = Put(Acme());
  EXPECT_EQ("quotas_disabled", ExpectError(r, "quotas"));
  EXPECT_NE(std::string::npos, r.body.find("stickmeter serve --quota")) << r.body;
  EXPECT_EQ("quotas_disabled", ExpectError(Delete("table=/q&metric=http_req_cnt"), "quotas"));
}

TEST_F(QuotaTest, RoutesAreCountedUnderTheirOwnLabels) {
  StartServer(true);
  GetJson("/api/v1/quotas/keys");
  auto metrics = Get(server_->port(), "/metrics");
  EXPECT_NE(std::string::npos, metrics.body.find("route=\"/api/v1/quotas/keys\"")) << metrics.body;
}

}  // namespace
}  // namespace stickmeter::http
