// docs/openapi.yaml (JSON-flavoured YAML) against the running server: every documented path
// answers with a documented status and content type, JSON bodies match the documented schema
// (required fields present, types right), and errors have the documented shape.
#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "billing/time_parse.h"
#include "http/server.h"
#include "tests/http/fake_quota_service.h"
#include "tests/http/fake_store.h"
#include "tests/http/http_client.h"
#include "web/assets.h"

namespace stickmeter::http {
namespace {

using nlohmann::json;
using testing::Get;

json LoadSpec() {
  std::ifstream in(OPENAPI_PATH);
  std::stringstream text;
  text << in.rdbuf();
  return json::parse(text.str(), nullptr, false);
}

// Checks `value` against the subset of JSON Schema the spec uses; returns "" or a complaint.
std::string Validate(const json& value, const json& schema, const std::string& where) {
  if (schema.contains("type")) {
    std::vector<std::string> types;
    if (schema["type"].is_array()) {
      for (const auto& t : schema["type"]) types.push_back(t);
    } else {
      types.push_back(schema["type"]);
    }
    bool matched = false;
    for (const auto& t : types) {
      matched |= (t == "string" && value.is_string()) ||
                 (t == "integer" && value.is_number_integer()) ||
                 (t == "boolean" && value.is_boolean()) || (t == "array" && value.is_array()) ||
                 (t == "object" && value.is_object()) || (t == "null" && value.is_null());
    }
    if (!matched) return where + ": " + value.dump() + " is not " + schema["type"].dump();
  }
  if (schema.contains("enum") && !value.is_null()) {
    bool found = false;
    for (const auto& e : schema["enum"]) found |= e == value;
    if (!found) return where + ": " + value.dump() + " not in enum";
  }
  if (value.is_object()) {
    const json required = schema.value("required", json::array());
    for (const auto& r : required) {
      if (!value.contains(r.get<std::string>())) return where + ": missing " + r.dump();
    }
    const json properties = schema.value("properties", json::object());
    for (const auto& [name, sub] : properties.items()) {
      if (value.contains(name)) {
        std::string e = Validate(value[name], sub, where + "." + name);
        if (!e.empty()) return e;
      }
    }
  }
  if (value.is_array() && schema.contains("items")) {
    for (size_t i = 0; i < value.size(); ++i) {
      std::string e = Validate(value[i], schema["items"], where + "[" + std::to_string(i) + "]");
      if (!e.empty()) return e;
    }
  }
  return "";
}

class OpenApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    spec_ = LoadSpec();
    ASSERT_FALSE(spec_.is_discarded()) << "docs/openapi.yaml must parse";
    store_.AddTable(testing::QuotaTable());
    int64_t t = *billing::ParseTime("2026-10-05T10:00:00Z");
    store_.Add({"/quota", "acme", "lb1", "gpc0", t, 10, 10, "first"});
    store_.Add({"/quota", "acme", "lb2", "gpc0", t + 60'000, 5, 5, "first"});
    ServerOptions options;
    options.port = 0;
    ServerHooks hooks;
    hooks.peers = [] {
      PeerInfo p;
      p.name = "lb1";
      p.direction = "inbound";
      p.address = "127.0.0.1:1";
      p.connected = true;
      p.since_ms = 1;
      p.updates = 3;
      return std::vector<PeerInfo>{p};
    };
    hooks.refused_peers = [] {
      return std::vector<RefusedPeerInfo>{
          {"lb9", "127.0.0.1", "hello refused with 504: peer name not in --allow-peer", 2, 1}};
    };
    quotas_.Teach("/quota", {"gpc0", "http_req_cnt"});
    quotas_.SetUsed("/quota", "acme", "http_req_cnt", 12);
    quotas_.SetUsed("/quota", "beta", "http_req_cnt", 40);
    teach::Quota q{"/quota", "acme", "http_req_cnt", 100, teach::Period::kMonth, "UTC"};
    ASSERT_TRUE(quotas_.Put(q).ok());
    q.key = std::nullopt;
    q.limit = 30;
    ASSERT_TRUE(quotas_.Put(q).ok());
    hooks.quotas = &quotas_;
    server_ = std::make_unique<Server>(io_, options, store_, hooks);
    ASSERT_TRUE(server_->Start().ok());
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    server_->Stop();
    work_.reset();
    thread_.join();
  }

  json spec_;
  testing::FakeStore store_;
  testing::FakeQuotaService quotas_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{
      boost::asio::make_work_guard(io_)};
  std::unique_ptr<Server> server_;
  std::thread thread_;
};

TEST_F(OpenApiTest, EveryDocumentedPathAnswersAsDocumented) {
  ASSERT_TRUE(spec_.contains("paths"));
  const json error_schema = spec_["components"]["schemas"]["Error"];
  int checked = 0;
  for (const auto& [path, item] : spec_["paths"].items()) {
    SCOPED_TRACE(path);
    ASSERT_TRUE(item.contains("get"));
    const json& op = item["get"];
    // Every parameter with an example, except from/to where a period is the documented choice.
    std::string query;
    for (const auto& param : op["parameters"]) {
      std::string name = param["name"];
      if (!param.contains("example") || param["example"].is_null()) continue;
      if (path == "/api/v1/export" && (name == "from" || name == "to")) continue;
      if (path == "/api/v1/export" && name == "format") continue;
      query += (query.empty() ? "?" : "&") + name + "=" + param["example"].get<std::string>();
    }
    if (path == "/api/v1/export") query += "&format=json";
    if (path == "/" && web::FindAsset("/") == nullptr) continue;
    auto r = Get(server_->port(), path + query);
    ASSERT_EQ(200u, r.status) << path + query << " " << r.body;
    const json& ok = op["responses"]["200"];
    std::string ctype = r.Header("content-type");
    ASSERT_TRUE(ok["content"].contains(ctype)) << "undocumented content type " << ctype;
    const json headers = ok.value("headers", json::object());
    for (const auto& [header, _] : headers.items()) {
      EXPECT_NE("", r.Header(testing::Lower(header))) << header;
    }
    if (ctype == "application/json") {
      json body = json::parse(r.body, nullptr, false);
      ASSERT_FALSE(body.is_discarded()) << r.body;
      EXPECT_EQ("", Validate(body, ok["content"][ctype]["schema"], "body")) << r.body;
    }
    // Every documented required parameter is enforced, with a documented error.
    for (const auto& param : op["parameters"]) {
      if (!param.value("required", false)) continue;
      std::string name = param["name"];
      std::string without;
      for (const auto& other : op["parameters"]) {
        std::string n = other["name"];
        if (n == name || !other.contains("example") || other["example"].is_null()) continue;
        without += (without.empty() ? "?" : "&") + n + "=" + other["example"].get<std::string>();
      }
      auto e = Get(server_->port(), path + without);
      EXPECT_TRUE(op["responses"].contains(std::to_string(e.status))) << e.status;
      json body = json::parse(e.body, nullptr, false);
      EXPECT_EQ("", Validate(body, error_schema, "error")) << e.body;
      EXPECT_EQ(0u, body["error"]["message"].get<std::string>().find(name)) << e.body;
    }
    ++checked;
  }
  EXPECT_GE(checked, 12);
}

// The writes (quotas): the documented example body and parameters answer as documented.
TEST_F(OpenApiTest, EveryDocumentedWriteAnswersAsDocumented) {
  int checked = 0;
  for (const auto& [path, item] : spec_["paths"].items()) {
    SCOPED_TRACE(path);
    if (item.contains("put")) {
      const json& op = item["put"];
      const json& body = op["requestBody"]["content"]["application/json"];
      boost::beast::http::request<boost::beast::http::string_body> req{
          boost::beast::http::verb::put, path, 11};
      req.set(boost::beast::http::field::content_type, "application/json");
      req.body() = body["example"].dump();
      auto r = testing::Send(server_->port(), std::move(req));
      ASSERT_EQ(200u, r.status) << r.body;
      json answer = json::parse(r.body, nullptr, false);
      const json& schema = op["responses"]["200"]["content"]["application/json"]["schema"];
      EXPECT_EQ("", Validate(answer, schema, "body")) << r.body;
      // The body's fields are the documented ones: each required one is enforced.
      for (const auto& name : body["schema"]["required"]) {
        json without = body["example"];
        without.erase(name.get<std::string>());
        boost::beast::http::request<boost::beast::http::string_body> bad{
            boost::beast::http::verb::put, path, 11};
        bad.body() = without.dump();
        auto e = testing::Send(server_->port(), std::move(bad));
        EXPECT_TRUE(op["responses"].contains(std::to_string(e.status))) << e.status;
        EXPECT_EQ(0u, json::parse(e.body)["error"]["message"].get<std::string>().find(
                          name.get<std::string>()))
            << e.body;
      }
      ++checked;
    }
    if (item.contains("delete")) {
      const json& op = item["delete"];
      std::string query;
      for (const auto& param : op["parameters"]) {
        query += (query.empty() ? "?" : "&") + param["name"].get<std::string>() + "=" +
                 param["example"].get<std::string>();
      }
      auto r = Get(server_->port(), path + query, {}, boost::beast::http::verb::delete_);
      EXPECT_TRUE(op["responses"].contains(std::to_string(r.status))) << r.status << r.body;
      EXPECT_EQ(204u, r.status) << r.body;
      ++checked;
    }
  }
  EXPECT_EQ(2, checked);
}

TEST_F(OpenApiTest, UndocumentedApiPathsAreNotServed) {
  auto r = Get(server_->port(), "/api/v1/secret");
  EXPECT_EQ(404u, r.status);
  EXPECT_FALSE(spec_["paths"].contains("/api/v1/secret"));
}

}  // namespace
}  // namespace stickmeter::http
