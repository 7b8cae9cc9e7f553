// The peers keep being served while the HTTP API runs slow queries: the wiring of `stickmeter
// serve` (one io_context carrying the peer service and the HTTP server) with a scripted peer
// and a store whose usage queries are held for seconds.
#include <gtest/gtest.h>

#include <future>
#include <memory>

#include "http/server.h"
#include "ingest/peer_service.h"
#include "tests/http/gated_store.h"
#include "tests/http/http_client.h"
#include "tests/peers/peer_test_util.h"

namespace stickmeter::peers_test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST(PeerQueryTest, AcksAndHeartbeatsKeepComingWhileQueriesBlock) {
  IoThreads threads;  // the io_context of `serve`, two threads
  FakeSink sink;
  http::testing::GatedStore store;
  store.AddTable(http::testing::QuotaTable());
  ingest::PeerServiceOptions peer_options;
  peer_options.local_name = "stickmeter";
  peer_options.listen_port = 0;
  peer_options.resync_interval_ms = 0;
  peer_options.resync_at_month_end = false;
  ingest::PeerService peers(threads.io(), peer_options, sink);
  http::ServerOptions http_options;
  http_options.port = 0;
  http::Server server(threads.io(), http_options, store, {});
  ASSERT_TRUE(peers.Start().ok());
  ASSERT_TRUE(server.Start().ok());

  RawConn lb1;
  ASSERT_TRUE(lb1.Connect(peers.listen_port()));
  ASSERT_EQ("200", lb1.Hello("stickmeter", "lb1"));
  ASSERT_TRUE(lb1.Send(DefineMessage()));

  // Four slow usage queries, as many as --max-queries, held for 4 s.
  store.Close();
  std::vector<std::future<http::testing::ClientResponse>> queries;
  for (int i = 0; i < 4; ++i) {
    queries.push_back(std::async(std::launch::async, [&] {
      return http::testing::Get(server.port(),
                                "/api/v1/usage?table=/quota&metric=gpc0&from=0&to=1000");
    }));
  }
  ASSERT_TRUE(store.WaitStarted(2));  // both query threads are busy; two more wait
  auto release = Clock::now() + 4s;

  // Meanwhile: a peer connecting gets its hello answered, and every update is ACKed.
  Clock::duration worst_ack{0};
  auto hello_start = Clock::now();
  RawConn lb2;
  ASSERT_TRUE(lb2.Connect(peers.listen_port()));
  ASSERT_EQ("200", lb2.Hello("stickmeter", "lb2"));
  Clock::duration hello = Clock::now() - hello_start;
  uint32_t update_id = 1;
  while (Clock::now() < release) {
    size_t before = lb1.received.acks.size();
    auto sent = Clock::now();
    ASSERT_TRUE(lb1.Send(UpdateMessage(update_id++, "acme", 1, 2)));
    lb1.ReadMessages(3s, [&](const Received& r) { return r.acks.size() > before; });
    ASSERT_GT(lb1.received.acks.size(), before) << "no ACK within 3 s";
    worst_ack = std::max(worst_ack, Clock::now() - sent);
    lb2.ReadMessages(10ms);
    std::this_thread::sleep_for(100ms);
  }
  // Heartbeats keep coming too (one every 1.5 s on an idle session).
  size_t beats = lb2.received.heartbeats();
  lb2.ReadMessages(3s, [&](const Received& r) { return r.heartbeats() > beats; });
  EXPECT_GT(lb2.received.heartbeats(), beats);

  store.Open();
  for (auto& q : queries) EXPECT_EQ(200u, q.get().status);
  EXPECT_LT(hello, 2s);
  EXPECT_LT(worst_ack, 2s);
  std::printf("while 4 queries blocked: hello %.1f ms, worst ACK %.1f ms\n",
              std::chrono::duration<double, std::milli>(hello).count(),
              std::chrono::duration<double, std::milli>(worst_ack).count());

  lb1.Close();
  lb2.Close();
  peers.Stop();
  server.Stop();
}

}  // namespace
}  // namespace stickmeter::peers_test
