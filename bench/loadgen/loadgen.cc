// stickmeter-loadgen: K synthetic HAProxy peers pushing stick-table updates to stickmeter.
//
// Each peer opens one TCP connection to stickmeter's peers port, performs the real hello
// (FormatHello, then the status line), announces one string-keyed table with M counters
// (AppendTableDefine) and pushes entry updates with growing absolute values, as HAProxy does: the
// first update of each write carries its id, the following ones are incremental. Updates go out at
// a fixed total rate or as fast as stickmeter takes them. ACKs are decoded with the project's
// Decoder; the lag of an update is the time from handing its write to the kernel to receiving the
// ACK that covers its id. Heartbeats go out every second so stickmeter never sees an idle peer.
//
// After the run and once every update is acknowledged, the generator can poll
// /api/v1/usage for the key pushed last until its total equals what was pushed: the time from
// the last ACK to that moment is the ack-to-visible delay.
//
// Results: human-readable lines on stderr, one JSON object on stdout. Exit code 0 when every
// update was acknowledged (and, if asked, became visible), 1 otherwise, 2 on bad arguments.
//
// Threading: everything runs on one io_context thread; nothing is shared between threads. The
// run is bounded: connect/handshake timeout, --duration, then at most --drain-timeout for the
// last ACKs and for visibility.
#include <unistd.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench/loadgen/taught_lag.h"
#include "common/time.h"
#include "ingest/codec.h"

namespace stickmeter::loadgen {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;
using ingest::DataType;
using ingest::DataValue;
using ingest::StickTableType;

// Heartbeats well under stickmeter's 10 s idle timeout and HAProxy's 5 s peer timeout.
constexpr auto kHeartbeatInterval = std::chrono::milliseconds(1000);
constexpr auto kConnectTimeout = std::chrono::milliseconds(5000);
// How often a rate-limited peer wakes up to send what became due.
constexpr auto kPaceInterval = std::chrono::microseconds(1000);
constexpr size_t kReadBufferBytes = 1 << 16;
// The sender table id in our DEFINE (HAProxy numbers its tables from 1).
constexpr uint64_t kTableId = 1;
// Counters a table may store, in the order --counters picks them.
constexpr DataType kCounterChoice[] = {
    DataType::kGpc0,       DataType::kHttpReqCnt, DataType::kBytesOutCnt,
    DataType::kConnCnt,    DataType::kSessCnt,    DataType::kHttpErrCnt,
    DataType::kBytesInCnt, DataType::kGpc1,       DataType::kHttpFailCnt,
};
constexpr size_t kMaxCounters = std::size(kCounterChoice);

struct Options {
  std::string host = "127.0.0.1";
  uint16_t port = 20001;
  int peers = 1;
  uint32_t keys = 1000;
  int counters = 3;
  double rate = 0;  // total updates/s over all peers; 0 = as fast as possible
  double duration_s = 10;
  std::string name_prefix = "lb";
  std::string remote_name = "stickmeter";
  std::string table = "/loadgen";
  std::string key_prefix = "tenant-";
  bool shared_keys = false;  // every peer pushes all N keys (else they split them)
  uint32_t batch = 1000;     // most updates per write
  // Most updates pushed but not yet acknowledged, over all peers (each peer gets an equal share):
  // like HAProxy, whose backlog is bounded by its buffers, peers wait for ACKs rather than fill
  // the socket buffers, which would only add queueing time to the lag.
  uint32_t window = 20000;
  std::string http;  // host:port of stickmeter's HTTP API; empty = no visibility check
  // The table stickmeter teaches back the sums of `table` into (serve --aggregate); empty = no
  // teach lag measured.
  std::string taught_table;
  double drain_timeout_s = 10;
};

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

// One (lag, updates) sample: every update of one write shares its lag.
struct LagSample {
  int64_t lag_ns;
  uint32_t count;
};

class Run;

class Peer : public ingest::MessageHandler {
 public:
  Peer(Run& run, int index, std::vector<uint32_t> keys);

  void Start();
  // Begins pushing (the run's clock has started).
  void StartPushing() { Pump(); }
  void StopPushing();
  void Close();

  // MessageHandler.
  void OnAck(uint64_t table_id, uint32_t update_id) override;
  void OnPeerError(ingest::ErrorType type) override;
  void OnEntryUpdate(const ingest::EntryUpdateView& update) override;

  const std::string& name() const { return name_; }
  uint64_t sent() const { return sent_; }
  uint64_t acked() const { return acked_; }
  bool established() const { return established_; }
  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }
  bool drained() const { return established_ && acked_ == sent_; }
  int64_t last_ack_ns() const { return last_ack_ns_; }
  // The key of the last update pushed and how often this peer pushed it; nullopt before any.
  std::optional<std::pair<uint32_t, uint32_t>> LastPushed() const;
  uint32_t PushCount(uint32_t key) const;
  const std::vector<LagSample>& lags() const { return lags_; }

 private:
  struct Write {
    uint32_t last_id;
    uint32_t count;
    int64_t sent_ns;
  };

  void Fail(const std::string& what);
  void ReadStatusLine();
  void OnEstablished();
  void ReadMessages();
  void Pump();
  void SchedulePump();
  void Heartbeat();
  void FlushWrites();
  uint32_t Due() const;
  void AppendUpdates(uint32_t n);

  Run& run_;
  const int index_;
  const std::string name_;
  tcp::socket socket_;
  asio::steady_timer pace_timer_;
  asio::steady_timer heartbeat_timer_;
  asio::streambuf hello_buf_;
  ingest::Decoder decoder_;
  std::vector<uint8_t> read_buf_;
  size_t read_end_ = 0;

  // Keys this peer pushes (global indexes), their push counts, and the next one to push.
  std::vector<uint32_t> keys_;
  std::vector<uint32_t> counts_;
  size_t cursor_ = 0;
  std::vector<DataValue> values_;

  std::string pending_;  // bytes waiting for the current write to finish
  std::string writing_;
  bool write_in_flight_ = false;
  uint32_t pending_updates_ = 0;  // updates in pending_ (only appended while no write in flight)
  bool pumping_ = true;
  bool pump_scheduled_ = false;
  bool established_ = false;
  bool closed_ = false;
  std::string error_;

  uint32_t next_id_ = 1;
  uint64_t sent_ = 0;
  uint64_t acked_ = 0;
  std::deque<Write> inflight_;
  std::vector<LagSample> lags_;
  int64_t last_ack_ns_ = 0;
  // Taught updates to acknowledge, as HAProxy does: sender table id -> last update id.
  std::map<uint64_t, uint32_t> taught_acks_;
};

// The whole run: options, the shared table definition and key names, and the peers.
class Run {
 public:
  explicit Run(Options options);
  int Execute();

  asio::io_context& io() { return io_; }
  const Options& options() const { return options_; }
  const ingest::TableDefinition& table() const { return table_; }
  const std::string& KeyName(uint32_t key) const { return key_names_[key]; }
  int64_t start_ns() const { return start_ns_; }
  double per_peer_rate() const { return options_.rate / options_.peers; }
  uint64_t peer_window() const { return std::max<uint64_t>(1, options_.window / options_.peers); }
  bool pushing() const { return pushing_; }
  void OnPeerChange();
  TaughtLag* taught() { return taught_ ? &*taught_ : nullptr; }
  bool draining() const { return draining_; }

 private:
  void OnDeadline();
  void Finish();
  int Report(std::optional<double> visible_ms, const std::string& visible_key,
             uint64_t expected_total);
  std::optional<double> WaitVisible(std::string* key, uint64_t* expected);

  Options options_;
  asio::io_context io_;
  ingest::TableDefinition table_;
  std::vector<std::string> key_names_;
  std::vector<std::unique_ptr<Peer>> peers_;
  asio::steady_timer phase_timer_;
  int64_t start_ns_ = 0;
  int64_t start_unix_ms_ = 0;
  int64_t push_end_ns_ = 0;
  bool started_ = false;
  bool pushing_ = false;
  bool draining_ = false;
  bool finished_ = false;
  std::optional<TaughtLag> taught_;
};

// ---- Peer. ----

Peer::Peer(Run& run, int index, std::vector<uint32_t> keys)
    : run_(run),
      index_(index),
      name_(run.options().name_prefix + std::to_string(index + 1)),
      socket_(run.io()),
      pace_timer_(run.io()),
      heartbeat_timer_(run.io()),
      hello_buf_(64),
      read_buf_(kReadBufferBytes),
      keys_(std::move(keys)),
      counts_(keys_.size(), 0) {
  const auto& table = run_.table();
  for (int t = 0; t < ingest::kDataTypeCount; ++t) {
    if (!table.Stores(static_cast<DataType>(t))) continue;
    DataValue v;
    v.type = static_cast<DataType>(t);
    v.form = DataValue::Form::kUnsigned;
    values_.push_back(v);
  }
}

void Peer::Fail(const std::string& what) {
  if (error_.empty() && !closed_) error_ = what;
  Close();
  run_.OnPeerChange();
}

void Peer::Close() {
  if (closed_) return;
  closed_ = true;
  pumping_ = false;
  pace_timer_.cancel();
  heartbeat_timer_.cancel();
  error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

void Peer::Start() {
  const auto& o = run_.options();
  error_code ec;
  auto address = asio::ip::make_address(o.host, ec);
  if (ec) return Fail("bad --target host: " + ec.message());
  socket_.async_connect(tcp::endpoint(address, o.port), [this](const error_code& ec) {
    if (closed_) return;
    if (ec) return Fail("connect: " + ec.message());
    error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    pending_ = ingest::FormatHello(run_.options().remote_name, name_, getpid());
    FlushWrites();
    ReadStatusLine();
  });
}

void Peer::ReadStatusLine() {
  asio::async_read_until(socket_, hello_buf_, '\n', [this](const error_code& ec, size_t n) {
    if (closed_) return;
    if (ec) return Fail("hello: " + ec.message());
    std::string line(asio::buffers_begin(hello_buf_.data()),
                     asio::buffers_begin(hello_buf_.data()) + n);
    hello_buf_.consume(n);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    if (line != "200") return Fail("hello refused with status '" + line + "'");
    // Bytes stickmeter sent right after the status line belong to the message stream.
    read_end_ = asio::buffer_copy(asio::buffer(read_buf_), hello_buf_.data());
    hello_buf_.consume(read_end_);
    OnEstablished();
  });
}

void Peer::OnEstablished() {
  established_ = true;
  ingest::AppendTableDefine(pending_, run_.table());
  FlushWrites();
  Heartbeat();
  ReadMessages();
  run_.OnPeerChange();
}

void Peer::ReadMessages() {
  if (read_end_ > 0) {
    ingest::FeedResult fed =
        decoder_.Feed(std::span<const uint8_t>(read_buf_.data(), read_end_), *this);
    if (!fed.status.ok()) return Fail("bad bytes from stickmeter: " + fed.status.message());
    for (const auto& [table_id, update_id] : taught_acks_) {
      ingest::AppendAck(pending_, table_id, update_id);
    }
    if (!taught_acks_.empty()) FlushWrites();
    taught_acks_.clear();
    std::memmove(read_buf_.data(), read_buf_.data() + fed.consumed, read_end_ - fed.consumed);
    read_end_ -= fed.consumed;
    if (closed_) return;
  }
  socket_.async_read_some(asio::buffer(read_buf_.data() + read_end_, read_buf_.size() - read_end_),
                          [this](const error_code& ec, size_t n) {
                            if (closed_) return;
                            if (ec) return Fail("read: " + ec.message());
                            read_end_ += n;
                            ReadMessages();
                          });
}

void Peer::OnAck(uint64_t table_id, uint32_t update_id) {
  if (table_id != kTableId) return Fail("ACK for unknown table " + std::to_string(table_id));
  const int64_t now = NowNs();
  // Ids are 32-bit and may wrap: compare by signed distance.
  while (!inflight_.empty() && static_cast<int32_t>(update_id - inflight_.front().last_id) >= 0) {
    const Write& w = inflight_.front();
    lags_.push_back({now - w.sent_ns, w.count});
    acked_ += w.count;
    inflight_.pop_front();
  }
  last_ack_ns_ = now;
  if (acked_ == sent_) run_.OnPeerChange();
  if (!write_in_flight_ && !pump_scheduled_) Pump();
}

void Peer::OnEntryUpdate(const ingest::EntryUpdateView& update) {
  // Acknowledged like HAProxy does, whether or not its lag is measured: stickmeter then resumes
  // after it when the peer reconnects, instead of teaching it everything again.
  taught_acks_[update.table->table_id] = update.update_id;
  TaughtLag* lag = run_.taught();
  if (lag == nullptr || update.table->name != run_.options().taught_table) return;
  const std::string_view key(reinterpret_cast<const char*>(update.key_bytes.data()),
                             update.key_bytes.size());
  for (const DataValue& v : update.values) {
    if (v.type != kCounterChoice[0]) continue;
    lag->Taught(index_, KeyIndex(key, run_.options().key_prefix), v.u, NowNs());
    // At the end the run also waits for the sums of the last pushes.
    if (run_.draining()) run_.OnPeerChange();
    return;
  }
}

void Peer::OnPeerError(ingest::ErrorType type) {
  Fail(std::string("stickmeter sent a ") +
       (type == ingest::ErrorType::kSizeLimit ? "size limit" : "protocol") + " error");
}

void Peer::Heartbeat() {
  if (closed_) return;
  ingest::AppendControl(pending_, ingest::ControlType::kHeartbeat);
  FlushWrites();
  heartbeat_timer_.expires_after(kHeartbeatInterval);
  heartbeat_timer_.async_wait([this](const error_code& ec) {
    if (!ec) Heartbeat();
  });
}

void Peer::StopPushing() {
  pumping_ = false;
  pace_timer_.cancel();
}

uint32_t Peer::Due() const {
  const uint32_t batch = run_.options().batch;
  const uint64_t unacked = sent_ - acked_;
  const uint64_t window = run_.peer_window();
  if (unacked >= window) return 0;
  const auto room = static_cast<uint32_t>(std::min<uint64_t>(batch, window - unacked));
  if (run_.options().rate <= 0) return room;
  const double elapsed_s = static_cast<double>(NowNs() - run_.start_ns()) / 1e9;
  const auto target = static_cast<uint64_t>(run_.per_peer_rate() * elapsed_s);
  if (target <= sent_) return 0;
  return static_cast<uint32_t>(std::min<uint64_t>(room, target - sent_));
}

void Peer::AppendUpdates(uint32_t n) {
  const auto& table = run_.table();
  TaughtLag* taught = run_.taught();
  const int64_t now = taught ? NowNs() : 0;
  for (uint32_t i = 0; i < n; ++i) {
    if (taught) taught->Pushed(keys_[cursor_], now);
    const uint32_t c = ++counts_[cursor_];
    // Absolute values grow with every push; bytes grow faster, as response sizes do.
    for (DataValue& v : values_) {
      v.u = (v.type == DataType::kBytesOutCnt || v.type == DataType::kBytesInCnt)
                ? static_cast<uint64_t>(c) * 1500
                : c;
    }
    const std::string& key = run_.KeyName(keys_[cursor_]);
    // HAProxy's shape: the first message of a write carries the id, the next ones follow it.
    const StickTableType type = i == 0 ? StickTableType::kUpdate : StickTableType::kIncUpdate;
    ingest::AppendEntryUpdate(
        pending_, table, type, next_id_, std::nullopt,
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(key.data()), key.size()),
        values_);
    ++next_id_;
    if (++cursor_ == keys_.size()) cursor_ = 0;
  }
  pending_updates_ += n;
}

void Peer::Pump() {
  pump_scheduled_ = false;
  if (closed_ || !pumping_ || !established_ || !run_.pushing()) return;
  if (write_in_flight_) return;  // resumed when the write completes
  const uint32_t n = Due();
  if (n == 0) return SchedulePump();
  AppendUpdates(n);
  FlushWrites();
}

void Peer::SchedulePump() {
  if (pump_scheduled_ || closed_ || !pumping_) return;
  pump_scheduled_ = true;
  pace_timer_.expires_after(kPaceInterval);
  pace_timer_.async_wait([this](const error_code& ec) {
    pump_scheduled_ = false;
    if (!ec) Pump();
  });
}

void Peer::FlushWrites() {
  if (write_in_flight_ || pending_.empty() || closed_) return;
  writing_.swap(pending_);
  pending_.clear();
  if (pending_updates_ > 0) {
    inflight_.push_back({next_id_ - 1, pending_updates_, NowNs()});
    sent_ += pending_updates_;
    pending_updates_ = 0;
  }
  write_in_flight_ = true;
  asio::async_write(socket_, asio::buffer(writing_), [this](const error_code& ec, size_t) {
    write_in_flight_ = false;
    if (closed_) return;
    if (ec) return Fail("write: " + ec.message());
    FlushWrites();
    if (!write_in_flight_) Pump();
  });
}

std::optional<std::pair<uint32_t, uint32_t>> Peer::LastPushed() const {
  if (sent_ == 0 || keys_.empty()) return std::nullopt;
  const size_t last = cursor_ == 0 ? keys_.size() - 1 : cursor_ - 1;
  return std::make_pair(keys_[last], counts_[last]);
}

uint32_t Peer::PushCount(uint32_t key) const {
  for (size_t i = 0; i < keys_.size(); ++i) {
    if (keys_[i] == key) return counts_[i];
  }
  return 0;
}

// ---- Run. ----

Run::Run(Options options) : options_(std::move(options)), phase_timer_(io_) {
  table_.table_id = kTableId;
  table_.name = options_.table;
  table_.key_type = ingest::KeyType::kString;
  table_.key_size = 65;  // `len 64`
  // Far above the longest gap between two pushes of one key, so no update counts as "expired".
  table_.expire_ms = 24LL * 86'400'000;
  for (int i = 0; i < options_.counters; ++i) {
    table_.data_bitfield |= uint64_t{1} << static_cast<int>(kCounterChoice[i]);
  }
  if (!options_.taught_table.empty()) taught_.emplace(options_.keys, options_.peers);
  key_names_.reserve(options_.keys);
  char buf[32];
  for (uint32_t k = 0; k < options_.keys; ++k) {
    std::snprintf(buf, sizeof buf, "%07" PRIu32, k);
    key_names_.push_back(options_.key_prefix + buf);
  }
  for (int p = 0; p < options_.peers; ++p) {
    std::vector<uint32_t> keys;
    if (options_.shared_keys) {
      keys.resize(options_.keys);
      for (uint32_t k = 0; k < options_.keys; ++k) keys[k] = k;
    } else {
      for (uint32_t k = static_cast<uint32_t>(p); k < options_.keys;
           k += static_cast<uint32_t>(options_.peers)) {
        keys.push_back(k);
      }
    }
    peers_.push_back(std::make_unique<Peer>(*this, p, std::move(keys)));
  }
}

void Run::OnPeerChange() {
  if (finished_) return;
  if (!started_) {
    bool all_up = true;
    for (const auto& p : peers_) {
      if (p->failed()) return Finish();
      all_up = all_up && p->established();
    }
    if (!all_up) return;
    started_ = true;
    pushing_ = true;
    start_ns_ = NowNs();
    start_unix_ms_ = NowUnixMs();
    phase_timer_.expires_after(
        std::chrono::nanoseconds(static_cast<int64_t>(options_.duration_s * 1e9)));
    phase_timer_.async_wait([this](const error_code& ec) {
      if (!ec) OnDeadline();
    });
    for (auto& p : peers_) asio::post(io_, [peer = p.get()] { peer->StartPushing(); });
    return;
  }
  for (const auto& p : peers_) {
    if (p->failed()) return Finish();
  }
  if (!draining_) return;
  for (const auto& p : peers_) {
    if (!p->drained()) return;
  }
  if (taught_ && taught_->Uncovered() > 0) return;
  Finish();
}

void Run::OnDeadline() {
  if (finished_) return;
  if (!started_) return Finish();  // handshakes did not complete in time
  if (!draining_) {
    pushing_ = false;
    draining_ = true;
    push_end_ns_ = NowNs();
    for (auto& p : peers_) p->StopPushing();
    phase_timer_.expires_after(
        std::chrono::nanoseconds(static_cast<int64_t>(options_.drain_timeout_s * 1e9)));
    phase_timer_.async_wait([this](const error_code& ec) {
      if (!ec) OnDeadline();
    });
    return OnPeerChange();
  }
  Finish();  // the drain timed out
}

void Run::Finish() {
  if (finished_) return;
  finished_ = true;
  if (push_end_ns_ == 0) push_end_ns_ = NowNs();
  phase_timer_.cancel();
  // Sockets stay open until the report: closing them would be a disconnect in stickmeter's log
  // while the visibility check runs; the peers are simply no longer pumped.
  for (auto& p : peers_) p->StopPushing();
  io_.stop();
}

// Polls GET /api/v1/usage for the key pushed last until its total is what was pushed. Returns
// the delay from the last ACK, or nullopt on timeout or error (the reason goes to stderr).
std::optional<double> Run::WaitVisible(std::string* key_out, uint64_t* expected_out) {
  const Peer* latest = nullptr;
  for (const auto& p : peers_) {
    if (p->LastPushed() && (latest == nullptr || p->last_ack_ns() > latest->last_ack_ns())) {
      latest = p.get();
    }
  }
  if (latest == nullptr) return std::nullopt;
  const uint32_t key = latest->LastPushed()->first;
  // The counters of one key start at 1 in this run on every peer that pushes it; whatever an
  // earlier run left in the store is a counter reset at our first push (delta = value), so the
  // total since our start is exactly the push count summed over peers.
  uint64_t expected = 0;
  for (const auto& p : peers_) expected += p->PushCount(key);
  *key_out = KeyName(key);
  *expected_out = expected;
  const int64_t last_ack_ns = latest->last_ack_ns();

  const size_t colon = options_.http.rfind(':');
  const std::string host = options_.http.substr(0, colon);
  const std::string port = options_.http.substr(colon + 1);
  const std::string target = "/api/v1/usage?table=" + options_.table +
                             "&metric=" + std::string(ingest::DataTypeName(kCounterChoice[0])) +
                             "&key=" + *key_out + "&from=" + std::to_string(start_unix_ms_ - 1) +
                             "&to=" + std::to_string(NowUnixMs() + 86'400'000);
  const int64_t deadline = NowNs() + static_cast<int64_t>(options_.drain_timeout_s * 1e9);
  asio::io_context io;
  tcp::resolver resolver(io);
  std::string last_body;
  while (NowNs() < deadline) {
    error_code ec;
    tcp::socket socket(io);
    auto endpoints = resolver.resolve(host, port, ec);
    if (!ec) asio::connect(socket, endpoints, ec);
    if (ec) {
      std::fprintf(stderr, "visibility: cannot reach %s: %s\n", options_.http.c_str(),
                   ec.message().c_str());
      return std::nullopt;
    }
    http::request<http::empty_body> req(http::verb::get, target, 11);
    req.set(http::field::host, host);
    http::write(socket, req, ec);
    boost::beast::flat_buffer buffer;
    http::response<http::string_body> res;
    if (!ec) http::read(socket, buffer, res, ec);
    const int64_t now = NowNs();
    if (ec) {
      std::fprintf(stderr, "visibility: request failed: %s\n", ec.message().c_str());
      return std::nullopt;
    }
    last_body = res.body();
    const std::string needle = "\"total\":" + std::to_string(expected);
    if (res.result_int() == 200 && last_body.find(needle) != std::string::npos) {
      return static_cast<double>(now - last_ack_ns) / 1e6;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  std::fprintf(stderr, "visibility: total %" PRIu64 " for %s not seen; last answer: %s\n", expected,
               key_out->c_str(), last_body.substr(0, 300).c_str());
  return std::nullopt;
}

// Weighted percentile over the per-write samples (sorted by lag).
double PercentileMs(const std::vector<LagSample>& sorted, uint64_t total, double q) {
  if (sorted.empty() || total == 0) return 0;
  const auto rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(total)));
  uint64_t seen = 0;
  for (const LagSample& s : sorted) {
    seen += s.count;
    if (seen >= rank) return static_cast<double>(s.lag_ns) / 1e6;
  }
  return static_cast<double>(sorted.back().lag_ns) / 1e6;
}

int Run::Report(std::optional<double> visible_ms, const std::string& visible_key,
                uint64_t expected_total) {
  uint64_t sent = 0, acked = 0;
  int64_t last_ack_ns = 0;
  std::vector<LagSample> lags;
  std::string errors;
  for (const auto& p : peers_) {
    sent += p->sent();
    acked += p->acked();
    last_ack_ns = std::max(last_ack_ns, p->last_ack_ns());
    lags.insert(lags.end(), p->lags().begin(), p->lags().end());
    if (p->failed())
      errors += (errors.empty() ? "" : "; ") + p->name() + ": " + p->error();
    else if (!p->established())
      errors += (errors.empty() ? "" : "; ") + p->name() + ": no hello";
  }
  std::sort(lags.begin(), lags.end(),
            [](const LagSample& a, const LagSample& b) { return a.lag_ns < b.lag_ns; });
  const double push_s = started_ ? static_cast<double>(push_end_ns_ - start_ns_) / 1e9 : 0;
  // Durable throughput: updates acknowledged per second from the start to the last ACK.
  const double ack_s =
      started_ && last_ack_ns > start_ns_ ? static_cast<double>(last_ack_ns - start_ns_) / 1e9 : 0;
  const double rate = ack_s > 0 ? static_cast<double>(acked) / ack_s : 0;
  const double p50 = PercentileMs(lags, acked, 0.50);
  const double p99 = PercentileMs(lags, acked, 0.99);
  const double max = lags.empty() ? 0 : static_cast<double>(lags.back().lag_ns) / 1e6;
  const bool check_visible = !options_.http.empty();
  const bool ok = errors.empty() && started_ && acked == sent && (!check_visible || visible_ms);

  std::fprintf(
      stderr, "peers %d, keys %u, counters %d, target rate %s, pushed for %.2f s\n", options_.peers,
      options_.keys, options_.counters,
      options_.rate > 0 ? std::to_string(static_cast<uint64_t>(options_.rate)).c_str() : "max",
      push_s);
  std::fprintf(stderr, "updates sent %" PRIu64 ", acknowledged %" PRIu64 " (%.0f updates/s)\n",
               sent, acked, rate);
  std::fprintf(stderr, "push-to-ack lag: p50 %.3f ms, p99 %.3f ms, max %.3f ms\n", p50, p99, max);
  if (check_visible) {
    if (visible_ms) {
      std::fprintf(stderr, "ack-to-visible: %.3f ms (key %s, total %" PRIu64 ")\n", *visible_ms,
                   visible_key.c_str(), expected_total);
    } else {
      std::fprintf(stderr, "ack-to-visible: not visible in time\n");
    }
  }
  std::string taught_json;
  if (taught_) {
    std::vector<int64_t> samples = taught_->samples();
    std::sort(samples.begin(), samples.end());
    auto at = [&](double q) {
      if (samples.empty()) return 0.0;
      const auto i = static_cast<size_t>(std::ceil(q * static_cast<double>(samples.size()))) - 1;
      return static_cast<double>(samples[std::min(i, samples.size() - 1)]) / 1e6;
    };
    const uint64_t uncovered = taught_->Uncovered();
    std::fprintf(stderr,
                 "teach lag (push -> taught sum received, per peer): p50 %.3f ms, p99 %.3f ms, "
                 "max %.3f ms over %zu pushes x peers; %" PRIu64 " taught updates; %" PRIu64
                 " not taught when the run ended\n",
                 at(0.5), at(0.99), at(1.0), samples.size(), taught_->updates(), uncovered);
    taught_json = ",\"teach_lag_ms\":{\"p50\":" + std::to_string(at(0.5)) +
                  ",\"p99\":" + std::to_string(at(0.99)) + ",\"max\":" + std::to_string(at(1.0)) +
                  "},\"taught_updates\":" + std::to_string(taught_->updates()) +
                  ",\"taught_uncovered\":" + std::to_string(uncovered);
  }
  if (!errors.empty()) std::fprintf(stderr, "errors: %s\n", errors.c_str());

  std::string json =
      "{\"ok\":" + std::string(ok ? "true" : "false") +
      ",\"peers\":" + std::to_string(options_.peers) +
      ",\"keys\":" + std::to_string(options_.keys) +
      ",\"counters\":" + std::to_string(options_.counters) + ",\"target_rate\":" +
      (options_.rate > 0 ? std::to_string(static_cast<uint64_t>(options_.rate))
                         : std::string("\"max\"")) +
      ",\"push_seconds\":" + std::to_string(push_s) + ",\"sent\":" + std::to_string(sent) +
      ",\"acked\":" + std::to_string(acked) + ",\"updates_per_s\":" + std::to_string(rate) +
      ",\"lag_ms\":{\"p50\":" + std::to_string(p50) + ",\"p99\":" + std::to_string(p99) +
      ",\"max\":" + std::to_string(max) + "}" +
      ",\"ack_to_visible_ms\":" + (visible_ms ? std::to_string(*visible_ms) : std::string("null")) +
      taught_json;
  if (!errors.empty()) {
    std::string escaped;
    for (char c : errors) {
      if (c == '"' || c == '\\') escaped += '\\';
      if (static_cast<unsigned char>(c) >= 0x20) escaped += c;
    }
    json += ",\"error\":\"" + escaped + "\"";
  }
  json += "}";
  std::printf("%s\n", json.c_str());
  std::fflush(stdout);
  return ok ? 0 : 1;
}

int Run::Execute() {
  for (auto& p : peers_) p->Start();
  phase_timer_.expires_after(kConnectTimeout);
  phase_timer_.async_wait([this](const error_code& ec) {
    if (!ec && !started_) OnDeadline();
  });
  io_.run();
  std::optional<double> visible;
  std::string key;
  uint64_t expected = 0;
  bool all_acked = started_;
  for (const auto& p : peers_) all_acked = all_acked && p->drained() && !p->failed();
  if (!options_.http.empty() && all_acked) visible = WaitVisible(&key, &expected);
  const int rc = Report(visible, key, expected);
  for (auto& p : peers_) p->Close();
  return rc;
}

// ---- Command line. ----

void Usage(FILE* out) {
  std::fprintf(
      out,
      "usage: stickmeter-loadgen [--target HOST:PORT] [--peers K] [--keys N] [--counters M]\n"
      "                          [--rate R|max] [--duration S] [--name-prefix lb]\n"
      "                          [--remote-name stickmeter] [--table /loadgen]\n"
      "                          [--key-prefix tenant-] [--shared-keys] [--batch B]\n"
      "                          [--window W] [--taught-table /loadgen.aggregate]\n"
      "                          [--http HOST:PORT] [--drain-timeout S]\n"
      "Acts as K HAProxy peers (names lb1..lbK) pushing updates of N string keys with M\n"
      "counters (1..%zu) to stickmeter's peers port, at R updates/s in total or as fast as\n"
      "possible, for S seconds. Keys are split between the peers unless --shared-keys.\n"
      "A write carries at most B updates (default 1000); the peers keep at most W updates\n"
      "unacknowledged in total (default 20000).\n"
      "With --http, waits for the last pushed key's total in /api/v1/usage.\n"
      "Prints human-readable results on stderr and one JSON line on stdout.\n",
      kMaxCounters);
}

bool ParseHostPort(const std::string& text, std::string* host, uint16_t* port) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  char* end = nullptr;
  const unsigned long p = std::strtoul(text.c_str() + colon + 1, &end, 10);
  if (*end != '\0' || p == 0 || p > 65535) return false;
  *host = text.substr(0, colon);
  if (host->size() > 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  *port = static_cast<uint16_t>(p);
  return true;
}

bool ParseNumber(const std::string& text, double min, double max, double* out) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !(v >= min && v <= max)) return false;
  *out = v;
  return true;
}

std::optional<Options> ParseArgs(int argc, char** argv) {
  Options o;
  auto bad = [](const std::string& flag, const std::string& why) {
    std::fprintf(stderr, "stickmeter-loadgen: %s: %s\n", flag.c_str(), why.c_str());
    return std::nullopt;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      Usage(stdout);
      std::exit(0);
    }
    if (flag == "--shared-keys") {
      o.shared_keys = true;
      continue;
    }
    if (i + 1 >= argc) return bad(flag, "missing value (or unknown flag)");
    const std::string value = argv[++i];
    double v = 0;
    if (flag == "--target") {
      if (!ParseHostPort(value, &o.host, &o.port)) return bad(flag, "expected HOST:PORT");
    } else if (flag == "--http") {
      std::string h;
      uint16_t p;
      if (!ParseHostPort(value, &h, &p)) return bad(flag, "expected HOST:PORT");
      o.http = value;
    } else if (flag == "--peers") {
      if (!ParseNumber(value, 1, 1024, &v)) return bad(flag, "expected 1..1024");
      o.peers = static_cast<int>(v);
    } else if (flag == "--keys") {
      if (!ParseNumber(value, 1, 1e8, &v)) return bad(flag, "expected 1..100000000");
      o.keys = static_cast<uint32_t>(v);
    } else if (flag == "--counters") {
      if (!ParseNumber(value, 1, kMaxCounters, &v)) {
        return bad(flag, "expected 1.." + std::to_string(kMaxCounters));
      }
      o.counters = static_cast<int>(v);
    } else if (flag == "--rate") {
      if (value == "max") {
        o.rate = 0;
      } else if (!ParseNumber(value, 1, 1e9, &v)) {
        return bad(flag, "expected updates/s or 'max'");
      } else {
        o.rate = v;
      }
    } else if (flag == "--duration") {
      if (!ParseNumber(value, 0.1, 3600, &v)) return bad(flag, "expected 0.1..3600 seconds");
      o.duration_s = v;
    } else if (flag == "--drain-timeout") {
      if (!ParseNumber(value, 0.1, 600, &v)) return bad(flag, "expected 0.1..600 seconds");
      o.drain_timeout_s = v;
    } else if (flag == "--batch") {
      if (!ParseNumber(value, 1, 100000, &v)) return bad(flag, "expected 1..100000");
      o.batch = static_cast<uint32_t>(v);
    } else if (flag == "--window") {
      if (!ParseNumber(value, 1, 1e7, &v)) return bad(flag, "expected 1..10000000");
      o.window = static_cast<uint32_t>(v);
    } else if (flag == "--name-prefix") {
      o.name_prefix = value;
    } else if (flag == "--remote-name") {
      o.remote_name = value;
    } else if (flag == "--table") {
      if (value.empty() || value.size() > 255) return bad(flag, "expected a table name");
      o.table = value;
    } else if (flag == "--taught-table") {
      if (value.empty() || value.size() > 255) return bad(flag, "expected a table name");
      o.taught_table = value;
    } else if (flag == "--key-prefix") {
      if (value.size() > 50) return bad(flag, "at most 50 bytes (keys are len 64)");
      o.key_prefix = value;
    } else {
      return bad(flag, "unknown flag");
    }
  }
  if (!o.shared_keys && o.keys < static_cast<uint32_t>(o.peers)) {
    return bad("--keys", "fewer keys than peers (use --shared-keys)");
  }
  return o;
}

}  // namespace
}  // namespace stickmeter::loadgen

int main(int argc, char** argv) {
  auto options = stickmeter::loadgen::ParseArgs(argc, argv);
  if (!options) {
    stickmeter::loadgen::Usage(stderr);
    return 2;
  }
  stickmeter::loadgen::Run run(std::move(*options));
  return run.Execute();
}
