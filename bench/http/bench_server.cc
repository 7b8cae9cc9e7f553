// A stickmeter HTTP server over a real store holding 10,000 keys x 31 days (one update per key
// per hour-aligned day, plus the key "hot" updated every minute), for wrk. Usage:
//   http_bench_server DIR [PORT] [THREADS]
// Populates DIR on first use, prints "ready <port>" and serves until stdin closes.
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <iostream>
#include <thread>

#include "bench/http/bench_store.h"
#include "billing/time_parse.h"
#include "http/server.h"

int main(int argc, char** argv) {
  using namespace stickmeter;
  if (argc < 2) {
    std::cerr << "usage: http_bench_server DIR [PORT] [THREADS]\n";
    return 2;
  }
  std::string dir = argv[1];
  bool fresh = !std::filesystem::exists(dir + "/db");
  tsdb::StoreOptions options;
  options.path = dir + "/db";
  options.sync_writes = false;
  auto store = tsdb::Store::Open(options);
  if (!store.ok()) {
    std::cerr << store.status().ToString() << "\n";
    return 1;
  }
  if (fresh) {
    Status s = http::bench::Populate(**store, 10'000, *billing::ParseTime("2026-10-01T00:00:00Z"),
                                     31LL * 86'400'000, 86'400'000);
    if (!s.ok()) {
      std::cerr << s.ToString() << "\n";
      return 1;
    }
  }
  // A month-old store is compacted; measure that, not a memtable full of merge operands.
  if (Status s = (*store)->CompactAll(); !s.ok()) {
    std::cerr << s.ToString() << "\n";
    return 1;
  }
  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);
  http::ServerOptions server_options;
  server_options.port = argc > 2 ? static_cast<uint16_t>(std::stoi(argv[2])) : 0;
  server_options.max_connections = 4096;
  // wrk's connections all come from 127.0.0.1.
  server_options.max_connections_per_client = 0;
  http::Server server(io, server_options, **store, {});
  if (Status s = server.Start(); !s.ok()) {
    std::cerr << s.ToString() << "\n";
    return 1;
  }
  int threads = argc > 3 ? std::stoi(argv[3]) : 2;
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i) pool.emplace_back([&io] { io.run(); });
  std::cout << "ready " << server.port() << std::endl;
  std::string line;
  while (std::getline(std::cin, line)) {
  }
  server.Stop();
  work.reset();
  for (auto& t : pool) t.join();
  return (*store)->Close().ok() ? 0 : 1;
}
