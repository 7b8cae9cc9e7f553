// The peer service against hostile peers on loopback: what a misbehaving or malicious client
// can make stickmeter hold in memory, and how many slots it can take from a real HAProxy.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "common/log.h"
#include "common/metrics.h"
#include "ingest/peer_admission.h"
#include "ingest/peer_registry.h"
#include "ingest/peer_service.h"
#include "tests/peers/peer_test_util.h"

namespace stickmeter::peers_test {
namespace {

using namespace std::chrono_literals;
using ingest::PeerService;
using ingest::PeerServiceOptions;

PeerServiceOptions TestOptions() {
  PeerServiceOptions o = LoopbackServiceOptions();
  return o;
}

// Holds every done callback until Release(); records how many server_key bytes each submitted
// batch carries.
class ByteSink : public ingest::UpdateSink {
 public:
  Status Submit(ingest::UpdateBatch batch, DoneCallback done) override {
    uint64_t bytes = 0;
    for (const auto& t : batch.tables) {
      for (const auto& e : t.entries) bytes += e.key.size() + e.server_key.size();
    }
    std::lock_guard<std::mutex> lock(mutex_);
    submitted_bytes_ += bytes;
    if (release_) {
      done(Status::Ok());
    } else {
      held_.push_back(std::move(done));
    }
    return Status::Ok();
  }
  uint64_t submitted_bytes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return submitted_bytes_;
  }
  void Release() {
    std::vector<DoneCallback> held;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      release_ = true;
      held.swap(held_);
    }
    for (auto& d : held) d(Status::Ok());
  }

 private:
  mutable std::mutex mutex_;
  uint64_t submitted_bytes_ = 0;
  bool release_ = false;
  std::vector<DoneCallback> held_;
};

// A string table (id 1) storing server_key.
ingest::TableDefinition ServerKeyTable() {
  ingest::TableDefinition t;
  t.table_id = 1;
  t.name = "/sk";
  t.key_type = ingest::KeyType::kString;
  t.key_size = 33;
  t.data_bitfield = uint64_t{1} << static_cast<int>(ingest::DataType::kServerKey);
  return t;
}

std::string ServerKeyUpdate(uint32_t id, const std::string& key, uint64_t slot,
                            std::string_view value, bool define) {
  ingest::DataValue v;
  v.type = ingest::DataType::kServerKey;
  v.form = ingest::DataValue::Form::kDict;
  v.dict_id = slot;
  v.dict_value = value;
  v.dict_defined = define;
  std::string out;
  ingest::AppendEntryUpdate(
      out, ServerKeyTable(), ingest::StickTableType::kUpdate, id, std::nullopt,
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(key.data()), key.size()), {&v, 1});
  return out;
}

// H1: many updates referring to one large dictionary slot. Each costs ~10 bytes on the wire and
// ~1 KiB in a batch; with the sink busy, the session must stop reading at its byte budget.
TEST(PeerHostileTest, ServerKeyAmplificationStaysWithinTheByteBudget) {
  auto options = TestOptions();
  options.max_inflight_batches = 1;
  options.max_held_bytes = 1 << 20;
  IoThreads threads;
  ByteSink sink;
  auto service = std::make_unique<PeerService>(threads.io(), options, sink);
  ASSERT_TRUE(service->Start().ok());
  RawConn c;
  ASSERT_TRUE(c.Connect(service->listen_port()));
  ASSERT_EQ("200", c.Hello("stickmeter", "lb1"));
  const std::string big(1024, 's');
  std::string stream;
  ingest::AppendTableDefine(stream, ServerKeyTable());
  stream += ServerKeyUpdate(1, "k0", 1, big, true);
  // 60,000 references: ~60 MiB of batches if nothing held the reads back.
  for (uint32_t i = 2; i <= 60000; ++i) stream += ServerKeyUpdate(i, "k", 1, "", false);
  std::atomic<bool> sent{false};
  std::thread sender([&] {
    c.Send(stream);
    sent = true;
  });
  Gauge& batch_bytes = MetricsRegistry::Global().GetGauge("stickmeter_peer_batch_bytes", "");
  ASSERT_TRUE(WaitFor([&] { return sink.submitted_bytes() > 0; }, 3s));
  int64_t peak = 0;
  for (int i = 0; i < 75; ++i) {  // 1.5 s
    peak = std::max(peak, batch_bytes.Value());
    std::this_thread::sleep_for(20ms);
  }
  // Without a byte budget the open batch grows to max_held_entries (65536) updates: ~70 MiB.
  // With it: the batch in flight, the open batch up to 1 MiB and one read pass past it (a read
  // is at most 16 KiB here, ~1,600 references, ~2 MiB).
  EXPECT_GT(peak, 0);
  EXPECT_LT(peak, int64_t{8} << 20) << "batches grew past the byte budget";
  sink.Release();
  service->Stop();
  service.reset();
  c.Close();
  sender.join();
}

// H2: with "any peer name", made-up names must not add status rows forever.
TEST(PeerHostileTest, StatusRowsOfUnknownNamesAreBounded) {
  IoThreads threads;
  FakeSink sink;
  auto options = TestOptions();
  options.allowed_peers = {};
  auto service = std::make_unique<PeerService>(threads.io(), options, sink);
  ASSERT_TRUE(service->Start().ok());
  const size_t names = ingest::PeerRegistry::kMaxUnknownNames + 40;
  for (size_t i = 0; i < names; ++i) {
    const std::string name = "made-up-" + std::to_string(i);
    RawConn c;
    ASSERT_TRUE(c.Connect(service->listen_port()));
    ASSERT_EQ("200", c.Hello("stickmeter", name));
    c.Close();
    ASSERT_TRUE(WaitFor(
        [&] {
          for (const auto& p : service->Snapshot()) {
            if (p.name == name) return !p.connected;
          }
          return false;
        },
        3s));
  }
  const auto rows = service->Snapshot();
  EXPECT_LE(rows.size(), ingest::PeerRegistry::kMaxUnknownNames);
  bool newest = false, oldest = false;
  for (const auto& p : rows) {
    newest |= p.name == "made-up-" + std::to_string(names - 1);
    oldest |= p.name == "made-up-0";
  }
  EXPECT_TRUE(newest);
  EXPECT_FALSE(oldest);  // evicted first
}

TEST(PeerHostileTest, MetricSeriesOfUnknownNamesAreBounded) {
  ingest::PeerRegistry registry;
  registry.DeclareKnown("lb1");
  std::set<std::string> labels;
  for (int i = 0; i < 1000; ++i) labels.insert(registry.MetricLabel("x" + std::to_string(i)));
  EXPECT_EQ(ingest::PeerRegistry::kMaxUnknownNames + 1, labels.size());  // + "_other"
  EXPECT_TRUE(labels.count("_other"));
  EXPECT_EQ("lb1", registry.MetricLabel("lb1"));  // configured names keep their own series
  EXPECT_EQ("x3", registry.MetricLabel("x3"));
}

// Table names come from the peer too: the series they label are bounded the same way.
TEST(PeerHostileTest, MetricSeriesOfTableNamesAreBounded) {
  ingest::PeerRegistry registry;
  std::set<std::string> labels;
  for (int i = 0; i < 1000; ++i) labels.insert(registry.TableLabel("/t" + std::to_string(i)));
  EXPECT_EQ(ingest::PeerRegistry::kMaxTableLabels + 1, labels.size());  // + "_other"
  EXPECT_TRUE(labels.count("_other"));
  EXPECT_EQ("/t3", registry.TableLabel("/t3"));  // a table with a series keeps it
}

// M2: connections that never finish their hello cannot take every slot.
TEST(PeerHostileTest, HandshakingConnectionsAreCappedApartFromEstablishedOnes) {
  IoThreads threads;
  FakeSink sink;
  auto options = TestOptions();
  options.max_handshaking = 3;
  auto service = std::make_unique<PeerService>(threads.io(), options, sink);
  ASSERT_TRUE(service->Start().ok());
  RawConn established;
  ASSERT_TRUE(established.Connect(service->listen_port()));
  ASSERT_EQ("200", established.Hello("stickmeter", "lb1"));
  std::vector<RawConn> silent(3);
  for (auto& c : silent) ASSERT_TRUE(c.Connect(service->listen_port()));
  std::this_thread::sleep_for(200ms);  // all three accepted
  RawConn extra;
  ASSERT_TRUE(extra.Connect(service->listen_port()));
  EXPECT_TRUE(extra.WaitClosed(2s));  // refused at once, not after the 5 s handshake timeout
  // Once one of them completes its hello, a slot is free again.
  EXPECT_EQ("200", silent[0].Hello("stickmeter", "lb2"));
  RawConn next;
  ASSERT_TRUE(next.Connect(service->listen_port()));
  EXPECT_EQ("200", next.Hello("stickmeter", "lb3"));
}

TEST(PeerHostileTest, ConnectionsPerSourceAddressAreCapped) {
  IoThreads threads;
  FakeSink sink;
  auto options = TestOptions();
  options.max_connections_per_address = 2;
  auto service = std::make_unique<PeerService>(threads.io(), options, sink);
  ASSERT_TRUE(service->Start().ok());
  RawConn a, b, c;
  ASSERT_TRUE(a.Connect(service->listen_port()));
  ASSERT_EQ("200", a.Hello("stickmeter", "lb1"));
  ASSERT_TRUE(b.Connect(service->listen_port()));
  ASSERT_TRUE(c.Connect(service->listen_port()));
  EXPECT_TRUE(c.WaitClosed(2s));
  // Closing one frees its slot.
  a.Close();
  ASSERT_TRUE(WaitFor(
      [&] {
        RawConn d;
        if (!d.Connect(service->listen_port())) return false;
        return d.Hello("stickmeter", "lb2") == "200";
      },
      3s));
}

// A connection closing after a protocol error first lets the peer read the error message, but
// not forever: one that never reads kept its socket, and its address's connection slot, until
// the service stopped.
TEST(PeerHostileTest, AConnectionThatNeverReadsItsErrorStillCloses) {
  IoThreads threads;
  FakeSink sink;
  auto options = TestOptions();
  options.max_connections_per_address = 1;
  auto service = std::make_unique<PeerService>(threads.io(), options, sink);
  ASSERT_TRUE(service->Start().ok());
  // Each "resync finished" is answered by a 2-byte confirmation. How much of that output the
  // sockets' buffers take depends on the kernel: a first connection that never reads finds it
  // out, by flooding until it is closed as a slow reader (1 MiB of output waiting past them).
  const std::string chunk = [] {
    std::string out;
    for (int i = 0; i < 32 * 1024; ++i) out += ControlMessage(ingest::ControlType::kResyncFinished);
    return out;
  }();
  const uint16_t port = service->listen_port();
  // As lb1, once the address's slot is free.
  auto connect = [&](RawConn& c) {
    return WaitFor([&] { return c.Connect(port, 4096) && c.Hello("stickmeter", "lb1") == "200"; },
                   10s);
  };
  // Sends `bytes` of the flood at about the pace the service answers; false once it closed.
  auto flood = [&](RawConn& c, size_t bytes) {
    for (size_t sent = 0; sent < bytes; sent += chunk.size()) {
      if (!c.Send(chunk)) return false;
      std::this_thread::sleep_for(2ms);
    }
    return true;
  };
  auto closed_for = [](const char* reason) {
    return MetricsRegistry::Global()
        .GetCounter("stickmeter_peer_protocol_errors_total", "", {{"reason", reason}})
        .Value();
  };
  size_t flooded = 0;
  {
    RawConn probe;
    ASSERT_TRUE(connect(probe));
    const uint64_t slow = closed_for("slow_reader");
    while (flooded < (size_t{64} << 20) && closed_for("slow_reader") == slow &&
           flood(probe, chunk.size())) {
      flooded += chunk.size();
    }
    ASSERT_LT(flooded, size_t{64} << 20) << "never closed as a slow reader";
  }
  // Then short of that, so that the error message waits behind full buffers with less than the
  // slow reader's 1 MiB. The buffers may take less on another connection: a little less each
  // time the flood is closed as a slow reader before the malformed message is read.
  auto malformed = [&] { return closed_for("malformed"); };
  bool drained = false;
  for (size_t target = flooded - std::min(flooded, size_t{1} << 19); !drained && target > 0;
       target -= std::min(target, size_t{1} << 19)) {
    RawConn c;
    ASSERT_TRUE(connect(c));
    const uint64_t before = malformed(), slow_before = closed_for("slow_reader");
    if (!flood(c, target) || !c.Send(std::string("\xff\x00\x00\x00", 4))) continue;
    // Whichever closed it: the malformed message, or the output piling up first.
    WaitFor([&] { return malformed() > before || closed_for("slow_reader") > slow_before; }, 10s);
    if (malformed() == before) continue;
    drained = true;
    EXPECT_TRUE(WaitFor(
        [&] {
          RawConn next;
          if (!next.Connect(port)) return false;
          return next.Hello("stickmeter", "lb2") == "200";
        },
        15s))
        << "the closing connection still holds the address's only slot";
  }
  EXPECT_TRUE(drained) << "no flood reached the malformed message";
  service->Stop();
}

// HAProxy asks for a resync once, as its new process connects. Requests in a row make one
// restart; one after updates while the store holds max_inflight_batches of the connection is
// refused: it would need a batch of its own, and a peer alternating updates and requests made
// a batch of every pair, filling the store's queue that every peer shares.
TEST(PeerHostileTest, ResyncRequestsCannotMultiplyBatches) {
  IoThreads threads;
  FakeSink sink;
  sink.set_mode(FakeSink::Mode::kHold);
  auto options = TestOptions();
  options.max_inflight_batches = 1;
  auto service = std::make_unique<PeerService>(threads.io(), options, sink);
  ASSERT_TRUE(service->Start().ok());
  RawConn c;
  ASSERT_TRUE(c.Connect(service->listen_port()));
  ASSERT_EQ("200", c.Hello("stickmeter", "lb1"));
  std::string requests = DefineMessage();
  for (int i = 0; i < 1000; ++i) requests += ControlMessage(ingest::ControlType::kResyncRequest);
  ASSERT_TRUE(c.Send(requests));
  ASSERT_TRUE(WaitFor([&] { return sink.submitted() >= 1; }, 3s));
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(1u, sink.submitted()) << "a thousand requests in a row are one restart";
  std::string pairs;
  for (uint32_t i = 1; i <= 1000; ++i) {
    pairs += UpdateMessage(i, "k" + std::to_string(i), i, i);
    pairs += ControlMessage(ingest::ControlType::kResyncRequest);
  }
  c.Send(pairs);  // may fail part way: the service closes the connection
  EXPECT_TRUE(c.WaitClosed(3s));
  EXPECT_LE(sink.submitted(), 2u);
  sink.Release();
  service->Stop();
}

// Low: what a client sends never reaches the log raw, and a client failing in a loop cannot
// flood it.
TEST(PeerHostileTest, LogTextIsEscaped) {
  EXPECT_EQ("lb1 ok", EscapeForLog("lb1 ok"));
  EXPECT_EQ("a\\x0ab\\x1b[2Jc\\x5c\\xff", EscapeForLog("a\nb\x1b[2Jc\\\xff"));
}

TEST(PeerHostileTest, LogLinesArePerReasonRateLimited) {
  ingest::LogLimiter limiter(3);
  uint64_t suppressed = 0;
  int allowed = 0;
  for (int i = 0; i < 100; ++i) allowed += limiter.Allow("tls", &suppressed) ? 1 : 0;
  EXPECT_EQ(3, allowed);
  EXPECT_TRUE(limiter.Allow("handshake_timeout", &suppressed));  // another reason
  std::this_thread::sleep_for(1100ms);
  ASSERT_TRUE(limiter.Allow("tls", &suppressed));
  EXPECT_EQ(97u, suppressed);  // reported with the next line written
}

}  // namespace
}  // namespace stickmeter::peers_test
