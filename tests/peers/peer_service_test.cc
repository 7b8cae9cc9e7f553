// The peer service against scripted peers on loopback (no HAProxy): handshake checks, ACK only
// after durable, backpressure, resync answers, limits, the outgoing connector and TLS.
#include "ingest/peer_service.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>

#include "common/metrics.h"
#include "common/time.h"
#include "ingest/peer_session.h"
#include "ingest/taught_tables.h"
#include "tests/peers/peer_test_util.h"
#include "tests/support/status_matchers.h"

namespace stickmeter::peers_test {
namespace {

using namespace std::chrono_literals;
using ingest::ControlType;
using ingest::PeerService;
using ingest::PeerServiceOptions;

PeerServiceOptions TestOptions() {
  PeerServiceOptions o = LoopbackServiceOptions();
  o.backoff_min_ms = 50;
  o.backoff_max_ms = 200;
  return o;
}

// A running service with its own loop and sink. Members are destroyed service first.
struct Harness {
  explicit Harness(PeerServiceOptions options = TestOptions()) {
    service = std::make_unique<PeerService>(threads.io(), options, sink);
    Status s = service->Start();
    EXPECT_OK(s);
  }
  uint16_t port() const { return service->listen_port(); }
  std::optional<ingest::PeerStatus> Row(const std::string& direction,
                                        const std::string& name) const {
    for (const auto& p : service->Snapshot()) {
      if (p.direction == direction && p.name == name) return p;
    }
    return std::nullopt;
  }

  IoThreads threads;
  FakeSink sink;
  std::unique_ptr<PeerService> service;
};

uint64_t ProtocolErrors(const std::string& reason) {
  return MetricsRegistry::Global()
      .GetCounter("stickmeter_peer_protocol_errors_total", "", {{"reason", reason}})
      .Value();
}

uint64_t PeerMetricsConnections(const std::string& direction, int status) {
  return MetricsRegistry::Global()
      .GetCounter("stickmeter_peer_connections_total", "",
                  {{"direction", direction}, {"status", std::to_string(status)}})
      .Value();
}

TEST(PeerHandshakeTest, AcceptsHaproxyHelloAndSendsHeartbeats) {
  Harness h;
  RawConn c;
  ASSERT_TRUE(c.Connect(h.port()));
  EXPECT_EQ("200", c.Hello("stickmeter", "lb1"));
  c.ReadMessages(3s, [](const Received& r) { return r.heartbeats() >= 2; });
  EXPECT_GE(c.received.heartbeats(), 2u);  // one at once, one 1.5 s later
  auto row = h.Row("in", "lb1");
  ASSERT_TRUE(row);
  EXPECT_TRUE(row->connected);
  EXPECT_EQ(row->address.rfind("127.0.0.1:", 0), 0u) << row->address;
}

TEST(PeerHandshakeTest, CrlfHelloAccepted) {
  Harness h;
  RawConn c;
  ASSERT_TRUE(c.Connect(h.port()));
  ASSERT_TRUE(c.Send("HAProxyS 2.0\r\nstickmeter\r\nlb1 99 1\r\n"));
  EXPECT_EQ("200", c.ReadLine(3s).value_or("timeout"));
}

struct Rejection {
  std::string hello;
  std::string status;
};

class PeerRejectionTest : public ::testing::TestWithParam<Rejection> {};

TEST_P(PeerRejectionTest, AnswersStatusAndCloses) {
  auto options = TestOptions();
  options.allowed_peers = {"lb1", "lb2"};
  Harness h(options);
  Counter& refused =
      MetricsRegistry::Global().GetCounter("stickmeter_peer_connections_total", "",
                                           {{"direction", "in"}, {"status", GetParam().status}});
  const uint64_t before = refused.Value();
  RawConn c;
  ASSERT_TRUE(c.Connect(h.port()));
  ASSERT_TRUE(c.Send(GetParam().hello));
  EXPECT_EQ(GetParam().status, c.ReadLine(3s).value_or("timeout"));
  EXPECT_TRUE(c.WaitClosed(3s));
  EXPECT_TRUE(h.service->Snapshot().empty());
  EXPECT_EQ(before + 1, refused.Value());
}

INSTANTIATE_TEST_SUITE_P(
    Hellos, PeerRejectionTest,
    ::testing::Values(Rejection{"HAProxyS 2.1\nsomeone-else\nlb1 1 1\n", "503"},
                      Rejection{"HAProxyS 2.1\nstickmeter\nlb9 1 1\n", "504"},
                      Rejection{"HAProxyS 3.0\nstickmeter\nlb1 1 1\n", "502"},
                      Rejection{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "501"},
                      Rejection{"HAProxyS 2.1\nstickmeter\nlb1\n", "501"},
                      // Names HAProxy could not have.
                      Rejection{"HAProxyS 2.1\nstickmeter\n 1 1\n", "504"},
                      Rejection{"HAProxyS 2.1\nstickmeter\nl\x01b 1 1\n", "504"},
                      Rejection{"HAProxyS 2.1\nstickmeter\n" + std::string(65, 'n') + " 1 1\n",
                                "504"}));

TEST(PeerHandshakeTest, EndlessHelloLineIsRefused) {
  Harness h;
  RawConn c;
  ASSERT_TRUE(c.Connect(h.port()));
  c.Send(std::string(64 * 1024, 'A'));  // may fail half way once we close
  EXPECT_EQ("501", c.ReadLine(3s).value_or("timeout"));
  EXPECT_TRUE(c.WaitClosed(3s));
}

TEST(PeerHandshakeTest, SilentClientTimesOut) {
  auto options = TestOptions();
  options.handshake_timeout_ms = 300;
  Harness h(options);
  uint64_t before = ProtocolErrors("handshake_timeout");
  RawConn c;
  ASSERT_TRUE(c.Connect(h.port()));
  EXPECT_TRUE(c.WaitClosed(3s));
  EXPECT_EQ(before + 1, ProtocolErrors("handshake_timeout"));
}

TEST(PeerServiceTest, StartFailsOnPortInUseNamingTheAddress) {
  Harness first;
  auto options = TestOptions();
  options.listen_port = first.port();
  IoThreads threads;
  FakeSink sink;
  PeerService second(threads.io(), options, sink);
  Status s = second.Start();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("127.0.0.1:" + std::to_string(first.port())), std::string::npos)
      << s.message();
}

TEST(PeerServiceTest, AcksOnlyAfterTheSinkReportsDurable) {
  Harness h;
  h.sink.set_mode(FakeSink::Mode::kHold);
  RawConn c;
  ASSERT_TRUE(c.Connect(h.port()));
  ASSERT_EQ("200", c.Hello("stickmeter", "lb1"));
  ASSERT_TRUE(c.Send(DefineMessage() + UpdateMessage(7, "acme", 1, 2) +
                     UpdateMessage(9, "bob", 0, 5) + UpdateMessage(12, "acme", 3, 4)));
  ASSERT_TRUE(WaitFor([&] { return h.sink.submitted() == 1; }, 3s));
  c.ReadMessages(400ms);
  EXPECT_TRUE(c.received.acks.empty());  // not durable yet

  h.sink.Release();
  c.ReadMessages(3s, [](const Received& r) { return !r.acks.empty(); });
  ASSERT_EQ(1u, c.received.acks.size());
  EXPECT_EQ(1u, c.received.acks[0].first);    // the sender's table id
  EXPECT_EQ(12u, c.received.acks[0].second);  // the last update of the batch

  auto batches = h.sink.Batches();
  ASSERT_EQ(1u, batches.size());
  EXPECT_EQ("lb1", batches[0].source);
  EXPECT_NE(0u, batches[0].connection_id);
  EXPECT_FALSE(batches[0].source_restarted);
  ASSERT_EQ(1u, batches[0].tables.size());
  EXPECT_EQ("/t", batches[0].tables[0].table->name);
  std::string keys;
  for (const auto& e : batches[0].tables[0].entries) keys += e.key + ",";
  EXPECT_EQ("acme,bob,acme,", keys);
  EXPECT_EQ(3u, h.sink.Last("/t", "acme", "gpc0"));
  EXPECT_EQ(5u, h.sink.Last("/t", "bob", "http_req_cnt"));
  auto row = h.Row("in", "lb1");
  ASSERT_TRUE(row);
  EXPECT_EQ(3u, row->updates);
  EXPECT_GT(row->last_message_ms, 0);
}

TEST(PeerServiceTest, SinkFailureClosesWithoutAck) {
  Harness h;
  h.sink.set_mode(FakeSink::Mode::kFail);
  RawConn c;
  ASSERT_TRUE(c.Connect(h.port()));
  ASSERT_EQ("200", c.Hello("stickmeter", "lb1"));
  ASSERT_TRUE(c.Send(DefineMessage() + UpdateMessage(1, "acme", 1, 1)));
  EXPECT_TRUE(c.WaitClosed(3s));
  EXPECT_TRUE(c.received.acks.empty());
  auto row = h.Row("in", "lb1");
  ASSERT_TRUE(row);
  EXPECT_FALSE(row->connected);
  EXPECT_NE(row->last_error.find("fake sink fails"), std::string::npos) << row->last_error;
}

TEST(PeerServiceTest, SinkUnavailableClosesWithoutAck) {
  Harness h;
  h.sink.set_mode(FakeSink::Mode::kUnavailable);
  RawConn c;
  ASSERT_TRUE(c.Connect(h.port()));
  ASSERT_EQ("200", c.Hello("stickmeter", "lb1"));
  ASSERT_TRUE(c.Send(DefineMessage() + UpdateMessage(1, "acme", 1, 1)));
  EXPECT_TRUE(c.WaitClosed(3s));
  EXPECT_TRUE(c.received.acks.empty());
}

// At the in-flight limit, later reads join one open batch (submitted when the sink finishes
// one) until it holds max_held_entries; then reading stops and the peer's data waits unread.
TEST(PeerServiceTest, HoldsReadsInOneBatchAtTheInflightLimit) {
  auto options = TestOptions();
  options.max_inflight_batches = 1;
  options.max_held_entries = 2;
  Harness h(options);
  h.sink.set_mode(FakeSink::Mode::kHold);
  RawConn c;
  ASSERT_TRUE(c.Connect(h.port()));
  ASSERT_EQ("200", c.Hello("stickmeter", "lb1"));
  ASSERT_TRUE(c.Send(DefineMessage() + UpdateMessage(1, "a", 1, 1)));
  ASSERT_TRUE(WaitFor([&] { return h.sink.submitted() == 1; }, 3s));
  ASSERT_TRUE(c.Send(UpdateMessage(2, "b", 1, 1)));
  std::this_thread::sleep_for(100ms);
  ASSERT_TRUE(c.Send(UpdateMessage(3, "c", 1, 1)));
  std::this_thread::sleep_for(100ms);
  ASSERT_TRUE(c.Send(UpdateMessage(4, "d", 1, 1)));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(1u, h.sink.submitted());  // b and c wait in the open batch, d in the socket
  h.sink.Release();
  ASSERT_TRUE(WaitFor([&] { return h.sink.Count("/t") == 4; }, 3s));
  auto batches = h.sink.Batches();
  ASSERT_EQ(3u, batches.size());
  std::vector<std::string> second;
  for (const auto& e : batches[1].tables.at(0).entries) second.push_back(e.key);
  EXPECT_EQ((std::vector<std::string>{"b", "c"}), second);
  EXPECT_EQ("d", batches[2].tables.at(0).entries.at(0).key);
  c.ReadMessages(3s, [](const Received& r) { return r.acks.size() == 3; });
  ASSERT_EQ(3u, c.received.acks.size());
  EXPECT_EQ(3u, c.received.acks[1].second);  // one ACK for the held batch, its last update id
  EXPECT_EQ(4u, c.received.acks[2].second);
}

// The all-connections budget: once the sessions together hold max_held_entries_total, a session
// at its in-flight limit stops reading even though its own open batch is empty.
TEST(PeerServiceTest, HeldReadsOfAllConnectionsShareOneBudget) {
  auto options = TestOptions();
  options.max_inflight_batches = 1;
  options.max_held_entries = 100;
  options.max_held_entries_total = 2;
  Harness h(options);
  h.sink.set_mode(FakeSink::Mode::kHold);
  Gauge& held = MetricsRegistry::Global().GetGauge("stickmeter_peer_held_entries", "");
  const int64_t held_before = held.Value();
  RawConn lb1, lb2;
  ASSERT_TRUE(lb1.Connect(h.port()));
  ASSERT_EQ("200", lb1.Hello("stickmeter", "lb1"));
  ASSERT_TRUE(lb2.Connect(h.port()));
  ASSERT_EQ("200", lb2.Hello("stickmeter", "lb2"));
  ASSERT_TRUE(lb1.Send(DefineMessage() + UpdateMessage(1, "a", 1, 1)));
  ASSERT_TRUE(lb2.Send(DefineMessage() + UpdateMessage(1, "x", 1, 1)));
  ASSERT_TRUE(WaitFor([&] { return h.sink.submitted() == 2; }, 3s));
  // lb1 fills the budget...
  ASSERT_TRUE(lb1.Send(UpdateMessage(2, "b", 1, 1)));
  std::this_thread::sleep_for(100ms);
  ASSERT_TRUE(lb1.Send(UpdateMessage(3, "c", 1, 1)));
  ASSERT_TRUE(WaitFor([&] { return held.Value() - held_before == 2; }, 3s));
  // ...so lb2 stops reading once the read it had already posted brings y, although its own
  // open batch holds one entry of its 100: z stays in its socket.
  ASSERT_TRUE(lb2.Send(UpdateMessage(2, "y", 1, 1)));
  ASSERT_TRUE(WaitFor([&] { return held.Value() - held_before == 3; }, 3s));
  ASSERT_TRUE(lb2.Send(UpdateMessage(3, "z", 1, 1)));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(3, held.Value() - held_before);
  EXPECT_EQ(2u, h.sink.submitted());
  h.sink.Release();
  ASSERT_TRUE(WaitFor([&] { return h.sink.Count("/t") == 6; }, 3s));
  EXPECT_EQ(1u, h.sink.Count("/t", "z"));
  ASSERT_TRUE(WaitFor([&] { return held.Value() == held_before; }, 3s));
  lb2.ReadMessages(3s,
                   [](const Received& r) { return !r.acks.empty() && r.acks.back().second == 3; });
  ASSERT_FALSE(lb2.received.acks.empty());
  EXPECT_EQ(3u, lb2.received.acks.back().second);
}

TEST(PeerServiceTest, ResyncRequestIsAnsweredAndMarksTheSourceRestarted) {
  Harness h;
  RawConn c;
  ASSERT_TRUE(c.Connect(h.port()));
  ASSERT_EQ("200", c.Hello("stickmeter", "lb1"));
  // An update before the request belongs to the old state; the restart applies after it.
  ASSERT_TRUE(c.Send(DefineMessage() + UpdateMessage(1, "old", 4, 4) +
                     ControlMessage(ControlType::kResyncRequest)));
  c.ReadMessages(3s, [](const Received& r) { return r.Has(ControlType::kResyncFinished); });
  EXPECT_TRUE(c.received.Has(ControlType::kResyncFinished));
  ASSERT_TRUE(c.Send(UpdateMessage(2, "new", 1, 1)));
  ASSERT_TRUE(WaitFor([&] { return h.sink.Count("/t", "new") == 1; }, 3s));
  auto batches = h.sink.Batches();
  ASSERT_GE(batches.size(), 2u);
  EXPECT_FALSE(batches[0].source_restarted);
  EXPECT_EQ("old", batches[0].tables.at(0).entries.at(0).key);
  EXPECT_TRUE(batches[1].source_restarted);
  EXPECT_GT(batches[1].restart_ms, 0);
  for (size_t i = 2; i < batches.size(); ++i) EXPECT_FALSE(batches[i].source_restarted);
}

TEST(PeerServiceTest, ResyncFinishedAndPartialAreConfirmed) {
  Harness h;
  RawConn c;
  ASSERT_TRUE(c.Connect(h.port()));
  ASSERT_EQ("200", c.Hello("stickmeter", "lb1"));
  ASSERT_TRUE(c.Send(ControlMessage(ControlType::kResyncPartial) +
                     ControlMessage(ControlType::kResyncFinished)));
  auto confirms = [](const Received& r) {
    size_t n = 0;
    for (auto t : r.controls) n += t == ControlType::kResyncConfirm;
    return n;
  };
  c.ReadMessages(3s, [&](const Received& r) { return confirms(r) == 2; });
  EXPECT_EQ(2u, confirms(c.received));
}

TEST(PeerServiceTest, RequestResyncAllAsksConnectedPeers) {
  Harness h;
  RawConn c;
  ASSERT_TRUE(c.Connect(h.port()));
  ASSERT_EQ("200", c.Hello("stickmeter", "lb1"));
  c.ReadMessages(2s, [](const Received& r) { return r.heartbeats() >= 1; });
  EXPECT_FALSE(c.received.Has(ControlType::kResyncRequest));  // incoming: not on its own
  h.service->RequestResyncAll();
  c.ReadMessages(3s, [](const Received& r) { return r.Has(ControlType::kResyncRequest); });
  EXPECT_TRUE(c.received.Has(ControlType::kResyncRequest));
}

// A table id redefined under another name is classified afresh: what a peer sends for a taught
// table is not stored (stickmeter is its source), what it sends for the table that took the id
// over is. The session once kept the first answer for the id.
TEST(PeerServiceTest, ATableIdRedefinedAsAnotherTableIsClassifiedAfresh) {
  ingest::TaughtTables taught({"/taught"});
  PeerServiceOptions options = TestOptions();
  options.taught = &taught;
  Harness h(options);
  RawConn c;
  ASSERT_TRUE(c.Connect(h.port()));
  ASSERT_EQ("200", c.Hello("stickmeter", "lb1"));
  ingest::TableDefinition as_taught = TestTable();
  as_taught.name = "/taught";
  std::string s;
  ingest::AppendTableDefine(s, as_taught);
  s += UpdateMessage(1, "a", 1, 1);
  s += DefineMessage();  // id 1 is "/t" from here on
  s += UpdateMessage(2, "b", 2, 2);
  ASSERT_TRUE(c.Send(s));
  ASSERT_TRUE(WaitFor([&] { return h.sink.Count("/t", "b") == 1; }, 3s))
      << "the update of /t was dropped as one of a taught table";
  EXPECT_EQ(0u, h.sink.Count("/taught"));
  EXPECT_EQ(0u, h.sink.Count("/t", "a"));
}

TEST(PeerServiceTest, ReservedClassGetsProtocolErrorAndClose) {
  Harness h;
  uint64_t before = ProtocolErrors("malformed");
  RawConn c;
  ASSERT_TRUE(c.Connect(h.port()));
  ASSERT_EQ("200", c.Hello("stickmeter", "lb1"));
  ASSERT_TRUE(c.Send(std::string("\xff\x00\x00\x00", 4)));
  EXPECT_TRUE(c.WaitClosed(3s));
  ASSERT_EQ(1u, c.received.errors.size());
  EXPECT_EQ(ingest::ErrorType::kProtocol, c.received.errors[0]);
  EXPECT_EQ(before + 1, ProtocolErrors("malformed"));
}

TEST(PeerServiceTest, HugeLengthPrefixClosesOnlyThatConnection) {
  Harness h;
  RawConn good;
  ASSERT_TRUE(good.Connect(h.port()));
  ASSERT_EQ("200", good.Hello("stickmeter", "lb1"));
  ASSERT_TRUE(good.Send(DefineMessage() + UpdateMessage(1, "a", 1, 1)));

  RawConn bad;
  ASSERT_TRUE(bad.Connect(h.port()));
  ASSERT_EQ("200", bad.Hello("stickmeter", "lb2"));
  std::string huge("\x0a\x80", 2);
  ingest::AppendVarint(huge, 4ull << 30);  // 4 GiB announced, never sent
  ASSERT_TRUE(bad.Send(huge + "xyz"));
  EXPECT_TRUE(bad.WaitClosed(3s));
  ASSERT_EQ(1u, bad.received.errors.size());
  EXPECT_EQ(ingest::ErrorType::kSizeLimit, bad.received.errors[0]);

  ASSERT_TRUE(good.Send(UpdateMessage(2, "a", 2, 2)));
  good.ReadMessages(3s,
                    [](const Received& r) { return !r.acks.empty() && r.acks.back().second == 2; });
  ASSERT_FALSE(good.received.acks.empty());
  EXPECT_EQ(2u, good.received.acks.back().second);
  EXPECT_EQ(2u, h.sink.Last("/t", "a", "gpc0"));
}

TEST(PeerServiceTest, OversizedMessageWithinLengthIsRefusedWithoutGrowingPastTheLimit) {
  auto options = TestOptions();
  options.max_message_size = 1024;
  Harness h(options);
  RawConn c;
  ASSERT_TRUE(c.Connect(h.port()));
  ASSERT_EQ("200", c.Hello("stickmeter", "lb1"));
  std::string msg("\x0a\x80", 2);
  ingest::AppendVarint(msg, 4096);
  ASSERT_TRUE(c.Send(msg + std::string(4096, '\0')));
  EXPECT_TRUE(c.WaitClosed(3s));
  ASSERT_EQ(1u, c.received.errors.size());
  EXPECT_EQ(ingest::ErrorType::kSizeLimit, c.received.errors[0]);
}

TEST(PeerServiceTest, SilentPeerIsDropped) {
  auto options = TestOptions();
  options.idle_timeout_ms = 500;
  options.heartbeat_interval_ms = 100;
  Harness h(options);
  RawConn c;
  ASSERT_TRUE(c.Connect(h.port()));
  ASSERT_EQ("200", c.Hello("stickmeter", "lb1"));
  EXPECT_TRUE(c.WaitClosed(3s));
  auto row = h.Row("in", "lb1");
  ASSERT_TRUE(row);
  EXPECT_FALSE(row->connected);
  EXPECT_NE(row->last_error.find("nothing received"), std::string::npos) << row->last_error;
}

TEST(PeerServiceTest, SecondConnectionOfALivePeerIsToldToTryAgainWhenAsked) {
  auto options = TestOptions();
  options.replace_after_silence_ms = 60000;
  Harness h(options);
  RawConn first, second;
  ASSERT_TRUE(first.Connect(h.port()));
  ASSERT_EQ("200", first.Hello("stickmeter", "lb1"));
  ASSERT_TRUE(second.Connect(h.port()));
  EXPECT_EQ("300", second.Hello("stickmeter", "lb1"));
  EXPECT_TRUE(second.WaitClosed(3s));
  // The established one stays and keeps feeding.
  ASSERT_TRUE(first.Send(DefineMessage() + UpdateMessage(1, "a", 1, 1)));
  ASSERT_TRUE(WaitFor([&] { return h.sink.Count("/t") == 1; }, 3s));
  auto row = h.Row("in", "lb1");
  ASSERT_TRUE(row);
  EXPECT_TRUE(row->connected);
}

// By default a newer session replaces the established one at once, as HAProxy does: a soft
// reload's new process must not wait for the old one's session to end.
TEST(PeerServiceTest, NewerConnectionReplacesTheEstablishedOneByDefault) {
  Harness h;
  RawConn first, second;
  ASSERT_TRUE(first.Connect(h.port()));
  ASSERT_EQ("200", first.Hello("stickmeter", "lb1"));
  ASSERT_TRUE(second.Connect(h.port()));
  ASSERT_EQ("200", second.Hello("stickmeter", "lb1"));
  EXPECT_TRUE(first.WaitClosed(3s));
  ASSERT_TRUE(second.Send(DefineMessage() + UpdateMessage(1, "a", 1, 1)));
  ASSERT_TRUE(WaitFor([&] { return h.sink.Count("/t") == 1; }, 3s));
}

TEST(PeerServiceTest, NewerConnectionReplacesASilentOne) {
  auto options = TestOptions();
  options.replace_after_silence_ms = 200;
  Harness h(options);
  RawConn first, second;
  ASSERT_TRUE(first.Connect(h.port()));
  ASSERT_EQ("200", first.Hello("stickmeter", "lb1"));
  std::this_thread::sleep_for(400ms);  // first sends nothing
  ASSERT_TRUE(second.Connect(h.port()));
  ASSERT_EQ("200", second.Hello("stickmeter", "lb1"));
  EXPECT_TRUE(first.WaitClosed(3s));
  ASSERT_TRUE(second.Send(DefineMessage() + UpdateMessage(1, "a", 1, 1)));
  ASSERT_TRUE(WaitFor([&] { return h.sink.Count("/t") == 1; }, 3s));
  auto row = h.Row("in", "lb1");
  ASSERT_TRUE(row);
  EXPECT_TRUE(row->connected);
}

TEST(PeerServiceTest, ConnectionLimit) {
  auto options = TestOptions();
  options.max_connections = 1;
  Harness h(options);
  RawConn first, second;
  ASSERT_TRUE(first.Connect(h.port()));
  ASSERT_EQ("200", first.Hello("stickmeter", "lb1"));
  ASSERT_TRUE(second.Connect(h.port()));
  EXPECT_TRUE(second.WaitClosed(3s));
}

TEST(PeerServiceTest, StopClosesSessionsAndLetsTheLoopEnd) {
  auto threads = std::make_unique<IoThreads>();
  FakeSink sink;
  auto options = TestOptions();
  options.connect.push_back({"lb9", "127.0.0.1", 1});  // refused, retried with backoff
  options.resync_interval_ms = 3600000;
  options.resync_at_month_end = true;
  PeerService service(threads->io(), options, sink);
  ASSERT_TRUE(service.Start().ok());
  RawConn c;
  ASSERT_TRUE(c.Connect(service.listen_port()));
  ASSERT_EQ("200", c.Hello("stickmeter", "lb1"));
  service.Stop();
  service.Stop();  // idempotent
  EXPECT_TRUE(c.WaitClosed(3s));
  EXPECT_TRUE(threads->Join(5s));  // nothing left: no timer, no socket, no reconnect
  RawConn late;
  EXPECT_FALSE(late.Connect(service.listen_port()));
}

TEST(PeerServiceTest, ReconciliationAsksForResyncsPeriodically) {
  auto options = TestOptions();
  options.resync_interval_ms = 300;
  Harness h(options);
  RawConn c;
  ASSERT_TRUE(c.Connect(h.port()));
  ASSERT_EQ("200", c.Hello("stickmeter", "lb1"));
  auto requests = [](const Received& r) {
    size_t n = 0;
    for (auto t : r.controls) n += t == ControlType::kResyncRequest;
    return n;
  };
  c.ReadMessages(3s, [&](const Received& r) { return requests(r) >= 2; });
  EXPECT_GE(requests(c.received), 2u);
}

TEST(PeerClockTest, NextUtcMonthStart) {
  // 2026-11-23T16:00:00Z -> 2026-12-01T00:00:00Z
  EXPECT_EQ(1796083200000, ingest::NextUtcMonthStartMs(1795449600000));
  // December rolls into the next year: 2026-12-31T23:59:59.999Z -> 2027-01-01T00:00:00Z
  EXPECT_EQ(1798761600000, ingest::NextUtcMonthStartMs(1798761599999));
  // Exactly on a boundary: the following month. 2027-02-01 -> 2027-03-01
  EXPECT_EQ(1803859200000, ingest::NextUtcMonthStartMs(1801440000000));
}

TEST(PeerClockTest, ConnectionIdsAreUniqueAndCarryTheStartTime) {
  uint64_t a = ingest::NextConnectionId(), b = ingest::NextConnectionId();
  EXPECT_NE(a, b);
  const int64_t start_ms = static_cast<int64_t>(a >> 20);
  EXPECT_LE(start_ms, NowUnixMs());
  EXPECT_GT(start_ms, NowUnixMs() - 3600 * 1000);
}

// ---- Outgoing connections: the test plays HAProxy's peers bind. ----

TEST(PeerConnectorTest, SendsHelloRequestsResyncConfirmsAndReconnects) {
  RawListener haproxy;
  auto options = TestOptions();
  options.listen = false;
  options.local_name = "sm";
  options.connect.push_back({"lb1", "127.0.0.1", haproxy.port()});
  Harness h(options);

  RawConn c = haproxy.Accept(3s);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ("HAProxyS 2.1", c.ReadLine(3s).value_or(""));
  EXPECT_EQ("lb1", c.ReadLine(3s).value_or(""));
  std::string line3 = c.ReadLine(3s).value_or("");
  EXPECT_EQ(line3.rfind("sm ", 0), 0u) << line3;
  EXPECT_EQ(line3.substr(line3.size() - 2), " 1") << line3;
  ASSERT_TRUE(c.Send("200\n"));
  c.ReadMessages(3s, [](const Received& r) { return r.Has(ControlType::kResyncRequest); });
  EXPECT_TRUE(c.received.Has(ControlType::kResyncRequest));

  // The resync: timed updates then finished; we confirm at once.
  ingest::DataValue values[2];
  values[0].type = ingest::DataType::kGpc0;
  values[0].u = 6;
  values[1].type = ingest::DataType::kHttpReqCnt;
  values[1].u = 8;
  std::string timed;
  const std::string key = "acme";
  ingest::AppendEntryUpdate(
      timed, TestTable(), ingest::StickTableType::kUpdateTimed, 40, 3599000u,
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(key.data()), key.size()), values);
  ASSERT_TRUE(c.Send(DefineMessage() + timed + ControlMessage(ControlType::kResyncFinished)));
  c.ReadMessages(3s, [](const Received& r) { return r.Has(ControlType::kResyncConfirm); });
  EXPECT_TRUE(c.received.Has(ControlType::kResyncConfirm));
  ASSERT_TRUE(WaitFor([&] { return h.sink.Last("/t", "acme", "gpc0") == 6u; }, 3s));
  auto row = h.Row("out", "lb1");
  ASSERT_TRUE(row);
  EXPECT_TRUE(row->connected);
  EXPECT_EQ("127.0.0.1:" + std::to_string(haproxy.port()), row->address);
  EXPECT_EQ("lb1", h.sink.Batches().at(0).source);
  uint64_t first_id = h.sink.Batches().at(0).connection_id;

  c.Close();  // HAProxy goes away; we dial again
  RawConn again = haproxy.Accept(3s);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ("HAProxyS 2.1", again.ReadLine(3s).value_or(""));
  again.ReadLine(3s);
  again.ReadLine(3s);
  ASSERT_TRUE(again.Send("200\n" + DefineMessage() + UpdateMessage(41, "acme", 7, 9)));
  ASSERT_TRUE(WaitFor([&] { return h.sink.Last("/t", "acme", "gpc0") == 7u; }, 3s));
  EXPECT_NE(first_id, h.sink.Batches().back().connection_id);
}

TEST(PeerConnectorTest, RefusedHelloIsReportedAndRetried) {
  RawListener haproxy;
  auto options = TestOptions();
  options.listen = false;
  options.connect.push_back({"lb1", "127.0.0.1", haproxy.port()});
  Harness h(options);
  {
    RawConn c = haproxy.Accept(3s);
    ASSERT_TRUE(c.ok());
    for (int i = 0; i < 3; ++i) c.ReadLine(3s);
    c.Send("503\n");
    EXPECT_TRUE(c.WaitClosed(3s));
  }
  ASSERT_TRUE(WaitFor(
      [&] {
        auto row = h.Row("out", "lb1");
        return row && row->last_error.find("503") != std::string::npos;
      },
      3s));
  EXPECT_FALSE(h.Row("out", "lb1")->connected);
  RawConn retry = haproxy.Accept(3s);
  EXPECT_TRUE(retry.ok());
}

TEST(PeerConnectorTest, UnreachablePeerIsListedWithItsError) {
  auto options = TestOptions();
  options.listen = false;
  options.connect.push_back({"lb7", "127.0.0.1", 1});
  Harness h(options);
  ASSERT_TRUE(WaitFor(
      [&] {
        auto row = h.Row("out", "lb7");
        return row && !row->last_error.empty();
      },
      3s));
  auto row = h.Row("out", "lb7");
  EXPECT_FALSE(row->connected);
  EXPECT_EQ("127.0.0.1:1", row->address);
}

// ---- TLS, both directions, between two services. ----

class PeerTlsTest : public ::testing::Test {
 protected:
  // Key generation takes seconds: once for the suite.
  static void SetUpTestSuite() {
    dir_ = std::filesystem::temp_directory_path() /
           ("stickmeter-peers-tls-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    certificates_ok_ = MakeTestCertificates(dir_.string());
  }
  static void TearDownTestSuite() { std::filesystem::remove_all(dir_); }
  void SetUp() override { ASSERT_TRUE(certificates_ok_) << "openssl failed, see " << dir_; }
  std::string File(const std::string& name) const { return (dir_ / name).string(); }

  // A TLS listener named "stickmeter" requiring client certificates from the test CA.
  PeerServiceOptions Server() const {
    auto o = TestOptions();
    o.listen_tls.enabled = true;
    o.listen_tls.cert_file = File("server.pem");
    o.listen_tls.ca_file = File("ca.pem");
    o.listen_tls.verify_peer = true;
    return o;
  }
  // A service named "lb1" dialing `port` over TLS with `client_cert`, verifying the server.
  PeerServiceOptions Client(uint16_t port, const std::string& client_cert) const {
    auto o = TestOptions();
    o.listen = false;
    o.local_name = "lb1";
    o.connect.push_back({"stickmeter", "127.0.0.1", port});
    o.connect_tls.enabled = true;
    o.connect_tls.cert_file = File(client_cert);
    o.connect_tls.ca_file = File("ca.pem");
    o.connect_tls.verify_peer = true;
    o.connect_tls.server_name = "stickmeter-test";
    return o;
  }

  static inline std::filesystem::path dir_;
  static inline bool certificates_ok_ = false;
};

TEST_F(PeerTlsTest, MutualVerificationSucceeds) {
  Harness server(Server());
  Harness client(Client(server.port(), "client.pem"));
  ASSERT_TRUE(WaitFor(
      [&] {
        auto in = server.Row("in", "lb1");
        auto out = client.Row("out", "stickmeter");
        return in && in->connected && out && out->connected;
      },
      5s));
}

TEST_F(PeerTlsTest, ClientCertificateFromAnotherCaIsRefused) {
  Harness server(Server());
  uint64_t before = ProtocolErrors("tls");
  Harness client(Client(server.port(), "other.pem"));
  ASSERT_TRUE(WaitFor([&] { return ProtocolErrors("tls") > before; }, 5s));
  EXPECT_FALSE(server.Row("in", "lb1"));
  auto out = client.Row("out", "stickmeter");
  ASSERT_TRUE(out);
  EXPECT_FALSE(out->connected);
}

// With verify_name a certificate of the CA is good for the name it carries only: lb1's
// certificate (CN=lb1) cannot hello as lb2 and have lb2 billed.
TEST_F(PeerTlsTest, CertificateMustNameThePeerWhenAsked) {
  auto server_options = Server();
  server_options.listen_tls.verify_name = true;
  Harness server(server_options);
  const uint64_t refused_before = PeerMetricsConnections("in", 504);
  auto impostor = Client(server.port(), "client.pem");
  impostor.local_name = "lb2";
  {
    Harness client(impostor);
    ASSERT_TRUE(WaitFor([&] { return PeerMetricsConnections("in", 504) > refused_before; }, 5s));
    EXPECT_FALSE(client.Row("out", "stickmeter")->connected);
  }
  EXPECT_FALSE(server.Row("in", "lb2") && server.Row("in", "lb2")->connected);
  // The same certificate under its own name is accepted.
  Harness client(Client(server.port(), "client.pem"));
  ASSERT_TRUE(WaitFor(
      [&] {
        auto in = server.Row("in", "lb1");
        return in && in->connected;
      },
      5s));
}

TEST_F(PeerTlsTest, ServerNameMismatchIsRefusedByTheClient) {
  Harness server(Server());
  auto options = Client(server.port(), "client.pem");
  options.connect_tls.server_name = "not-the-server";
  Harness client(options);
  ASSERT_TRUE(WaitFor(
      [&] {
        auto out = client.Row("out", "stickmeter");
        return out && !out->last_error.empty();
      },
      5s));
  EXPECT_FALSE(client.Row("out", "stickmeter")->connected);
  EXPECT_FALSE(server.Row("in", "lb1"));
}

TEST_F(PeerTlsTest, PlainClientOnTlsListenerGetsNoHello) {
  Harness server(Server());
  RawConn c;
  ASSERT_TRUE(c.Connect(server.port()));
  c.Send(ingest::FormatHello("stickmeter", "lb1", 1));
  EXPECT_TRUE(c.WaitClosed(3s));
  EXPECT_FALSE(server.Row("in", "lb1"));
}

TEST_F(PeerTlsTest, MissingCertificateFailsStart) {
  auto options = Server();
  options.listen_tls.cert_file = File("does-not-exist.pem");
  IoThreads threads;
  FakeSink sink;
  PeerService service(threads.io(), options, sink);
  Status s = service.Start();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("does-not-exist.pem"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace stickmeter::peers_test
