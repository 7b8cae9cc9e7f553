// Reconciliation: HAProxy 2.6 can drop the push of an entry's final state, so stickmeter asks
// every peer for a full resync on a schedule. HAProxy's race cannot be triggered on demand, so a
// scripted peer speaking the real protocol (the project's codec) plays a node whose last push
// lagged: it pushes gpc0=4, keeps the final 5 back, and teaches 5 only in the full resync that
// the running stickmeter asks for. The bill must end at 5.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "ingest/codec.h"
#include "tests/support/process.h"
#include "tests/support/status_matchers.h"

namespace stickmeter::testing {
namespace {

using namespace stickmeter::ingest;

// Collects what stickmeter sends to the scripted peer.
class Recorder : public MessageHandler {
 public:
  void OnControl(ControlType type) override { controls.push_back(type); }
  void OnAck(uint64_t table_id, uint32_t update_id) override {
    acks.push_back({table_id, update_id});
  }
  bool Saw(ControlType type) const {
    for (auto c : controls) {
      if (c == type) return true;
    }
    return false;
  }
  std::vector<ControlType> controls;
  std::vector<std::pair<uint64_t, uint32_t>> acks;
};

class ScriptedPeer {
 public:
  explicit ScriptedPeer(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    timeval tv{0, 200000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~ScriptedPeer() { ::close(fd_); }
  bool connected() const { return connected_; }

  void Send(const std::string& bytes) {
    ASSERT_EQ(static_cast<ssize_t>(bytes.size()),
              ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL));
  }

  // Reads the status line of the handshake.
  std::string ReadStatus() {
    std::string line;
    char c;
    for (int i = 0; i < 100 && line.find('\n') == std::string::npos;) {
      if (::recv(fd_, &c, 1, 0) == 1) {
        line += c;
      } else {
        ++i;
      }
    }
    return line;
  }

  // Reads and decodes for up to `timeout`, sending heartbeats, until `done` holds.
  template <typename F>
  bool PumpUntil(F done, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    auto next_heartbeat = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() < deadline) {
      if (std::chrono::steady_clock::now() >= next_heartbeat) {
        std::string hb;
        AppendControl(hb, ControlType::kHeartbeat);
        Send(hb);
        next_heartbeat += std::chrono::seconds(1);
      }
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n > 0) {
        pending_.append(buf, static_cast<size_t>(n));
        auto result = decoder_.Feed(
            std::span(reinterpret_cast<const uint8_t*>(pending_.data()), pending_.size()), seen);
        EXPECT_OK(result.status);
        pending_.erase(0, result.consumed);
      } else if (n == 0) {
        return false;
      }
      if (done()) return true;
    }
    return false;
  }

  Recorder seen;

 private:
  int fd_ = -1;
  bool connected_ = false;
  Decoder decoder_;
  std::string pending_;
};

TableDefinition QuotaTable() {
  TableDefinition table;
  table.table_id = 1;
  table.name = "/quota";
  table.key_type = KeyType::kString;
  table.key_size = 65;
  table.data_bitfield = uint64_t{1} << static_cast<int>(DataType::kGpc0);
  table.expire_ms = 3600000;
  return table;
}

std::string Update(const TableDefinition& table, StickTableType type, uint32_t id,
                   std::optional<uint32_t> expire, uint64_t gpc0) {
  DataValue value;
  value.type = DataType::kGpc0;
  value.u = gpc0;
  const std::string key = "acme";
  std::string out;
  AppendEntryUpdate(out, table, type, id, expire,
                    std::span(reinterpret_cast<const uint8_t*>(key.data()), key.size()),
                    std::span(&value, 1));
  return out;
}

TEST(ReconcileTest, ScheduledResyncRecoversALaggingFinalValue) {
  TempDir dir("stickmeter-reconcile");
  const uint16_t peers_port = FreePort();
  const uint16_t http_port = FreePort();
  Process stickmeter(STICKMETER_BINARY,
                     {"serve", "--data", (dir.path() / "data").string(), "--peers-listen",
                      "127.0.0.1:" + std::to_string(peers_port), "--http",
                      "127.0.0.1:" + std::to_string(http_port), "--resync-interval", "2"},
                     dir.path() / "stickmeter.log");
  ASSERT_TRUE(WaitForPort(peers_port)) << ReadFile(dir.path() / "stickmeter.log");

  ScriptedPeer lb9(peers_port);
  ASSERT_TRUE(lb9.connected());
  lb9.Send(FormatHello("stickmeter", "lb9", 4242));
  ASSERT_EQ("200\n", lb9.ReadStatus());

  const TableDefinition table = QuotaTable();
  std::string first;
  AppendTableDefine(first, table);
  first += Update(table, StickTableType::kUpdate, 7, std::nullopt, 4);
  lb9.Send(first);
  ASSERT_TRUE(lb9.PumpUntil([&] { return !lb9.seen.acks.empty(); }, std::chrono::seconds(10)));
  EXPECT_EQ(7u, lb9.seen.acks.back().second);

  auto total = [&]() -> std::string {
    auto r = HttpRequest(http_port, "GET",
                         "/api/v1/usage?table=/quota&metric=gpc0&from=0&to=4102444800000");
    return r ? r->body : "";
  };
  EXPECT_NE(std::string::npos, total().find("{\"key\":\"acme\",\"total\":4}")) << total();

  // The final value (5) was never pushed. stickmeter's scheduled resync asks for everything.
  ASSERT_TRUE(lb9.PumpUntil([&] { return lb9.seen.Saw(ControlType::kResyncRequest); },
                            std::chrono::seconds(10)))
      << ReadFile(dir.path() / "stickmeter.log");
  std::string teach = Update(table, StickTableType::kUpdateTimed, 8, 3599000, 5);
  AppendControl(teach, ControlType::kResyncFinished);
  lb9.Send(teach);
  ASSERT_TRUE(lb9.PumpUntil([&] { return lb9.seen.Saw(ControlType::kResyncConfirm); },
                            std::chrono::seconds(10)));

  EXPECT_TRUE(Eventually(
      [&] { return total().find("{\"key\":\"acme\",\"total\":5}") != std::string::npos; },
      std::chrono::seconds(10)))
      << total();
  auto audit =
      HttpRequest(http_port, "GET", "/api/v1/audit?table=/quota&key=acme&from=0&to=4102444800000");
  ASSERT_TRUE(audit.has_value());
  EXPECT_NE(std::string::npos, audit->body.find("\"delta\":1")) << audit->body;
}

}  // namespace
}  // namespace stickmeter::testing
