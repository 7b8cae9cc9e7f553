// The HTTP server with the web UI over an in-memory store and quota service, for the quota page's
// browser test (quota_ui_test.mjs): the table /quota with three keys whose usage this month and
// today is known (acme 350, gamma 150, beta 10 requests), taught for quotas of http_req_cnt and
// gpc0; and the table /many, taught for http_req_cnt, whose 1,100 keys m0000..m1099 used 1,100
// down to 1 requests (more keys than the quota page lists). Prints "port N" once listening; stops
// on SIGTERM or SIGINT.
//
// Usage: quota_ui_server [--token TOKEN]
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <cstdio>
#include <string>

#include "common/time.h"
#include "http/server.h"
#include "tests/http/fake_quota_service.h"
#include "tests/http/fake_store.h"

using namespace stickmeter;

int main(int argc, char** argv) {
  http::ServerOptions options;
  options.port = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) == "--token") options.token = argv[i + 1];
  }
  http::testing::FakeStore store;
  http::testing::FakeQuotaService quotas;
  store.AddTable(http::testing::QuotaTable());
  quotas.Teach("/quota", {"gpc0", "http_req_cnt"});
  const int64_t now = NowUnixMs();
  quotas.SetNow(now);
  for (auto [key, used] : {std::pair{"acme", 350}, {"gamma", 150}, {"beta", 10}}) {
    store.Add({"/quota", key, "lb1", "http_req_cnt", now - 1000, static_cast<uint64_t>(used),
               static_cast<uint64_t>(used), "first"});
    quotas.SetUsed("/quota", key, "http_req_cnt", used);
  }
  tsdb::TableSummary many = http::testing::QuotaTable();
  many.name = "/many";
  store.AddTable(many);
  quotas.Teach("/many", {"http_req_cnt"});
  for (int i = 0; i < 1100; ++i) {
    char key[8];
    std::snprintf(key, sizeof key, "m%04d", i);
    quotas.SetUsed("/many", key, "http_req_cnt", static_cast<uint64_t>(1100 - i));
  }
  http::ServerHooks hooks;
  hooks.quotas = &quotas;
  boost::asio::io_context io;
  http::Server server(io, options, store, hooks);
  Status s = server.Start();
  if (!s.ok()) {
    std::fprintf(stderr, "quota_ui_server: %s\n", s.ToString().c_str());
    return 1;
  }
  std::printf("port %u\n", static_cast<unsigned>(server.port()));
  std::fflush(stdout);
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code&, int) { server.Stop(); });
  io.run();
  return 0;
}
