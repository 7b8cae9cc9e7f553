#include "tests/peers/peer_test_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

namespace stickmeter::peers_test {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// ---- FakeSink. ----

FakeSink::FakeSink() : worker_([this] { Run(); }) {}

FakeSink::~FakeSink() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

void FakeSink::set_mode(Mode mode) {
  std::lock_guard<std::mutex> lock(mutex_);
  mode_ = mode;
}

void FakeSink::set_delay(std::chrono::milliseconds delay) {
  std::lock_guard<std::mutex> lock(mutex_);
  delay_ = delay;
}

void FakeSink::Release() {
  std::vector<Item> held;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    mode_ = Mode::kOk;
    held.swap(held_);
    for (auto& item : held) batches_.push_back(item.batch);
  }
  for (auto& item : held) item.done(Status::Ok());
}

Status FakeSink::Submit(ingest::UpdateBatch batch, DoneCallback done) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (mode_ == Mode::kUnavailable) return Status::Unavailable("fake sink refuses");
  ++submitted_;
  for (const auto& t : batch.tables) {
    for (const auto& e : t.entries) submitted_keys_.emplace_back(t.table->name, e.key);
  }
  Item item{std::move(batch), std::move(done), Clock::now() + delay_};
  if (mode_ == Mode::kHold) {
    held_.push_back(std::move(item));
    return Status::Ok();
  }
  queue_.push_back(std::move(item));
  cv_.notify_all();
  return Status::Ok();
}

void FakeSink::Run() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    Item item = std::move(queue_.front());
    queue_.pop_front();
    Mode mode = mode_;
    lock.unlock();
    std::this_thread::sleep_until(item.due);
    lock.lock();
    if (mode == Mode::kFail) {
      lock.unlock();
      item.done(Status::IoError("fake sink fails"));
    } else {
      batches_.push_back(item.batch);
      lock.unlock();
      item.done(Status::Ok());
    }
    lock.lock();
  }
}

size_t FakeSink::submitted() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return submitted_;
}

std::vector<ingest::UpdateBatch> FakeSink::Batches() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return batches_;
}

std::optional<uint64_t> FakeSink::Last(const std::string& table, const std::string& key,
                                       const std::string& metric, const std::string& source) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::optional<uint64_t> last;
  for (const auto& b : batches_) {
    if (!source.empty() && b.source != source) continue;
    for (const auto& t : b.tables) {
      if (t.table->name != table) continue;
      for (const auto& e : t.entries) {
        if (e.key != key) continue;
        for (const auto& v : e.values) {
          if (v.metric == metric) last = v.value;
        }
      }
    }
  }
  return last;
}

std::string FakeSink::LastServerKey(const std::string& table, const std::string& key) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string last;
  for (const auto& b : batches_) {
    for (const auto& t : b.tables) {
      if (t.table->name != table) continue;
      for (const auto& e : t.entries) {
        if (e.key == key && !e.server_key.empty()) last = e.server_key;
      }
    }
  }
  return last;
}

size_t FakeSink::Count(const std::string& table, const std::string& key) const {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t n = 0;
  for (const auto& b : batches_) {
    for (const auto& t : b.tables) {
      if (t.table->name != table) continue;
      for (const auto& e : t.entries) n += key.empty() || e.key == key;
    }
  }
  return n;
}

std::string FakeSink::KeyType(const std::string& table) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& b : batches_) {
    for (const auto& t : b.tables) {
      if (t.table->name == table) return t.table->key_type;
    }
  }
  return "";
}

size_t FakeSink::CountSubmitted(const std::string& table, const std::string& key) const {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t n = 0;
  for (const auto& [t, k] : submitted_keys_) n += t == table && k == key;
  return n;
}

bool FakeSink::AnyRestart() const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& b : batches_) {
    if (b.source_restarted) return true;
  }
  return false;
}

// ---- IoThreads. ----

IoThreads::IoThreads() : guard_(boost::asio::make_work_guard(io_)) {
  for (int i = 0; i < 2; ++i) {
    threads_.emplace_back([this] {
      io_.run();
      std::lock_guard<std::mutex> lock(mutex_);
      ++finished_;
      cv_.notify_all();
    });
  }
}

IoThreads::~IoThreads() {
  guard_.reset();
  io_.stop();
  for (auto& t : threads_) t.join();
}

bool IoThreads::Join(std::chrono::milliseconds timeout) {
  guard_.reset();
  std::unique_lock<std::mutex> lock(mutex_);
  bool done = cv_.wait_for(lock, timeout, [this] { return finished_ == 2; });
  if (!done) io_.stop();
  return done;
}

// ---- Received / RawConn. ----

namespace {

class Recorder : public ingest::MessageHandler {
 public:
  explicit Recorder(Received& r) : r_(r) {}
  void OnControl(ingest::ControlType type) override { r_.controls.push_back(type); }
  void OnPeerError(ingest::ErrorType type) override { r_.errors.push_back(type); }
  void OnAck(uint64_t table_id, uint32_t update_id) override {
    r_.acks.emplace_back(table_id, update_id);
  }

 private:
  Received& r_;
};

int RemainingMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

// Waits for readability; returns bytes read (0 = closed, -1 = timeout or error).
ssize_t ReadWithin(int fd, char* buf, size_t size, Clock::time_point deadline) {
  pollfd p{fd, POLLIN, 0};
  int r = ::poll(&p, 1, RemainingMs(deadline));
  if (r <= 0) return -1;
  ssize_t n = ::recv(fd, buf, size, 0);
  if (n < 0 && errno == ECONNRESET) return 0;
  return n;
}

}  // namespace

size_t Received::heartbeats() const {
  size_t n = 0;
  for (auto c : controls) n += c == ingest::ControlType::kHeartbeat;
  return n;
}

bool Received::Has(ingest::ControlType type) const {
  for (auto c : controls) {
    if (c == type) return true;
  }
  return false;
}

RawConn::~RawConn() { Close(); }

void RawConn::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool RawConn::Connect(uint16_t port, int receive_buffer_bytes) {
  Close();
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  if (receive_buffer_bytes > 0) {
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer_bytes, sizeof receive_buffer_bytes);
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    Close();
    return false;
  }
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return true;
}

bool RawConn::Send(const std::string& bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

std::optional<std::string> RawConn::ReadLine(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (true) {
    size_t eol = raw_.find('\n');
    if (eol != std::string::npos) {
      std::string line = raw_.substr(0, eol);
      raw_.erase(0, eol + 1);
      return line;
    }
    char buf[4096];
    ssize_t n = ReadWithin(fd_, buf, sizeof buf, deadline);
    if (n <= 0) return std::nullopt;
    raw_.append(buf, static_cast<size_t>(n));
  }
}

void RawConn::Decode() {
  Recorder rec(received);
  auto fed = decoder_.Feed(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(raw_.data()), raw_.size()), rec);
  raw_.erase(0, fed.consumed);
}

void RawConn::ReadMessages(std::chrono::milliseconds timeout,
                           const std::function<bool(const Received&)>& until) {
  auto deadline = Clock::now() + timeout;
  Decode();
  while (!(until && until(received))) {
    char buf[16384];
    ssize_t n = ReadWithin(fd_, buf, sizeof buf, deadline);
    if (n <= 0) return;
    raw_.append(buf, static_cast<size_t>(n));
    Decode();
  }
}

bool RawConn::WaitClosed(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (true) {
    char buf[16384];
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, RemainingMs(deadline)) <= 0) return false;
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n == 0 || (n < 0 && errno == ECONNRESET)) {
      Decode();
      return true;
    }
    if (n < 0) return false;
    raw_.append(buf, static_cast<size_t>(n));
    Decode();
  }
}

std::string RawConn::Hello(const std::string& us, const std::string& sender) {
  if (!Send(ingest::FormatHello(us, sender, 4242))) return "";
  return ReadLine(3s).value_or("");
}

// ---- RawListener. ----

RawListener::RawListener() {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd_, 16)) {
    std::abort();
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
}

RawListener::~RawListener() { ::close(fd_); }

RawConn RawListener::Accept(std::chrono::milliseconds timeout) {
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return RawConn();
  return RawConn(::accept(fd_, nullptr, nullptr));
}

// ---- Messages. ----

ingest::TableDefinition TestTable() {
  ingest::TableDefinition t;
  t.table_id = 1;
  t.name = "/t";
  t.key_type = ingest::KeyType::kString;
  t.key_size = 33;
  t.data_bitfield = (1ull << static_cast<int>(ingest::DataType::kGpc0)) |
                    (1ull << static_cast<int>(ingest::DataType::kHttpReqCnt));
  t.expire_ms = 3600000;
  return t;
}

std::string DefineMessage() {
  std::string out;
  ingest::AppendTableDefine(out, TestTable());
  return out;
}

std::string UpdateMessage(uint32_t update_id, const std::string& key, uint64_t gpc0,
                          uint64_t http_req_cnt) {
  ingest::DataValue values[2];
  values[0].type = ingest::DataType::kGpc0;
  values[0].u = gpc0;
  values[1].type = ingest::DataType::kHttpReqCnt;
  values[1].u = http_req_cnt;
  std::string out;
  ingest::AppendEntryUpdate(
      out, TestTable(), ingest::StickTableType::kUpdate, update_id, std::nullopt,
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(key.data()), key.size()), values);
  return out;
}

std::string ControlMessage(ingest::ControlType type) {
  std::string out;
  ingest::AppendControl(out, type);
  return out;
}

bool MakeTestCertificates(const std::string& dir) {
  const std::string q = "'" + dir + "'";
  const std::string cmd =
      "cd " + q +
      " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "
      "/CN=test-ca"
      " -keyout ca.key -out ca.pem"
      " && openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "
      "/CN=stickmeter-test -keyout server.key"
      " -out server.csr"
      " && printf 'subjectAltName=DNS:stickmeter-test,IP:127.0.0.1\\n' > san.ext"
      " && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2"
      " -extfile san.ext -out server.crt"
      " && cat server.crt server.key > server.pem"
      " && openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=lb1 "
      "-keyout client.key -out client.csr"
      " && openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2"
      " -out client.crt"
      " && cat client.crt client.key > client.pem"
      " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "
      "/CN=intruder"
      " -keyout other.key -out other.crt"
      " && cat other.crt other.key > other.pem";
  return std::system(("(" + cmd + ") > " + q + "/openssl.log 2>&1").c_str()) == 0;
}

bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (true) {
    if (condition()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
}

}  // namespace stickmeter::peers_test
