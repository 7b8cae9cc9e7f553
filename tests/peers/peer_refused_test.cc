// What an operator sees of peers that are refused or configured, on loopback with scripted
// peers: hellos refused for a wrong name are listed with their reason (and never as peers), the
// list stays bounded and escaped whatever names a client makes up, and the per-peer gauges exist
// for the configured names only, from the start.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "common/metrics.h"
#include "common/time.h"
#include "ingest/peer_service.h"
#include "ingest/refused_peers.h"
#include "tests/peers/peer_test_util.h"

namespace stickmeter::peers_test {
namespace {

using namespace std::chrono_literals;
using ingest::PeerService;
using ingest::PeerServiceOptions;

PeerServiceOptions TestOptions() {
  PeerServiceOptions o = LoopbackServiceOptions();
  o.allowed_peers = {"lb1", "lb2"};
  return o;
}

// `refused` as "name|address|count|reason" lines, most recent first.
std::string Render(const std::vector<ingest::RefusedPeer>& refused) {
  std::string out;
  for (const auto& r : refused) {
    out += r.name + "|" + r.address + "|" + std::to_string(r.count) + "|" + r.reason + "\n";
  }
  return out;
}

// The value of one exposition line `series` (name and labels), or "absent".
std::string MetricValue(const std::string& series) {
  const std::string text = MetricsRegistry::Global().RenderPrometheus();
  const size_t at = text.find("\n" + series + " ");
  if (at == std::string::npos) return "absent";
  const size_t start = at + series.size() + 2;
  return text.substr(start, text.find('\n', start) - start);
}

TEST(PeerRefusedTest, WrongNamesAreListedWithTheirReasonAndNeverAsPeers) {
  IoThreads threads;
  FakeSink sink;
  auto service = std::make_unique<PeerService>(threads.io(), TestOptions(), sink);
  ASSERT_TRUE(service->Start().ok());
  auto hello = [&](const std::string& us, const std::string& sender) {
    RawConn c;
    EXPECT_TRUE(c.Connect(service->listen_port()));
    return c.Hello(us, sender);
  };
  EXPECT_EQ("504", hello("stickmeter", "lb3"));      // not in --allow-peer
  EXPECT_EQ("503", hello("stickmeter-old", "lb1"));  // calls us by another name
  EXPECT_EQ("504", hello("stickmeter", "lb3"));      // again: counted, not a new entry
  ASSERT_TRUE(WaitFor([&] { return service->Refused().size() == 2; }, 3s))
      << Render(service->Refused());
  EXPECT_EQ(
      "lb3|127.0.0.1|2|hello refused with 504: peer name not in --allow-peer\n"
      "lb1|127.0.0.1|1|hello refused with 503: it calls us 'stickmeter-old', we are "
      "'stickmeter'\n",
      Render(service->Refused()))
      << "most recent first";
  for (const auto& peer : service->Snapshot()) {
    EXPECT_FALSE(peer.connected) << peer.name;
    EXPECT_NE("lb3", peer.name);
  }
}

TEST(PeerRefusedTest, RefusalsAreBoundedAndEscaped) {
  ingest::RefusedPeers refused;
  for (int i = 0; i < 100; ++i) {
    refused.Record("made-up-" + std::to_string(i), "10.0.0.1", "peer name not in --allow-peer",
                   1000 + i);
  }
  refused.Record("lb\x1b[2J\n", "10.0.0.2", "it calls us 'x\xff'", 5000);
  refused.Record(std::string(300, 'a'), "10.0.0.3", std::string(1000, 'r'), 5001);
  auto list = refused.Snapshot();
  ASSERT_EQ(ingest::kMaxRefusedPeers, list.size());
  EXPECT_EQ(std::string(64, 'a') + "...", list[0].name);
  EXPECT_EQ(ingest::kMaxRefusalReasonBytes + 3, list[0].reason.size());
  EXPECT_EQ("lb\\x1b[2J\\x0a", list[1].name);
  EXPECT_EQ("it calls us 'x\\xff'", list[1].reason);
  // The most recent of the made-up names are kept, the oldest evicted.
  EXPECT_EQ("made-up-99", list[2].name);
  for (const auto& r : list) EXPECT_NE("made-up-0", r.name);
}

TEST(PeerRefusedTest, ConfiguredPeersHaveGaugesFromTheStartOthersNone) {
  IoThreads threads;
  FakeSink sink;
  auto service = std::make_unique<PeerService>(threads.io(), TestOptions(), sink);
  ASSERT_TRUE(service->Start().ok());
  EXPECT_EQ("0", MetricValue("stickmeter_peer_connected{peer=\"lb1\"}"));
  EXPECT_EQ("0", MetricValue("stickmeter_peer_connected{peer=\"lb2\"}"));
  EXPECT_EQ("0", MetricValue("stickmeter_peer_last_update_seconds{peer=\"lb1\"}"));
  EXPECT_EQ("0", MetricValue("stickmeter_peer_protocol_errors_total{reason=\"malformed\"}"));
  EXPECT_EQ("0", MetricValue("stickmeter_peer_updates_received_total{peer=\"lb2\"}"));

  RawConn lb1;
  ASSERT_TRUE(lb1.Connect(service->listen_port()));
  ASSERT_EQ("200", lb1.Hello("stickmeter", "lb1"));
  EXPECT_EQ("1", MetricValue("stickmeter_peer_connected{peer=\"lb1\"}"));
  const int64_t before_s = NowUnixMs() / 1000;
  ASSERT_TRUE(lb1.Send(DefineMessage() + UpdateMessage(1, "acme", 1, 1)));
  ASSERT_TRUE(WaitFor(
      [&] {
        const std::string v = MetricValue("stickmeter_peer_last_update_seconds{peer=\"lb1\"}");
        return v != "absent" && std::stoll(v) >= before_s;
      },
      3s));
  RawConn stranger;
  ASSERT_TRUE(stranger.Connect(service->listen_port()));
  EXPECT_EQ("504", stranger.Hello("stickmeter", "lb3"));
  lb1.Close();
  EXPECT_TRUE(
      WaitFor([&] { return MetricValue("stickmeter_peer_connected{peer=\"lb1\"}") == "0"; }, 3s));
  EXPECT_EQ("absent", MetricValue("stickmeter_peer_connected{peer=\"lb3\"}"));
  EXPECT_EQ("absent", MetricValue("stickmeter_peer_last_update_seconds{peer=\"lb3\"}"));
}

}  // namespace
}  // namespace stickmeter::peers_test
