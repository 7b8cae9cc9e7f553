#include "tsdb/rocks_logger.h"

#include <fcntl.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <vector>

namespace stickmeter::tsdb {
namespace {

namespace fs = std::filesystem;

class AppendLogger final : public rocksdb::Logger {
 public:
  explicit AppendLogger(int fd) : rocksdb::Logger(rocksdb::InfoLogLevel::INFO_LEVEL), fd_(fd) {}
  ~AppendLogger() override { ::close(fd_); }

  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    // As RocksDB's lines: "2026/12/05-02:51:00.123456 <thread id> message".
    char line[4096];
    struct timeval now;
    ::gettimeofday(&now, nullptr);
    struct tm t;
    ::localtime_r(&now.tv_sec, &t);
    int n = std::snprintf(line, sizeof line, "%04d/%02d/%02d-%02d:%02d:%02d.%06ld %ld ",
                          t.tm_year + 1900, t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec,
                          static_cast<long>(now.tv_usec), static_cast<long>(::gettid()));
    if (n < 0) return;
    va_list copy;
    va_copy(copy, ap);
    const int m = std::vsnprintf(line + n, sizeof line - n, format, copy);
    va_end(copy);
    if (m < 0) return;
    size_t size = std::min(sizeof line - 1, static_cast<size_t>(n) + static_cast<size_t>(m));
    if (line[size - 1] != '\n') line[size++] = '\n';
    // A short or failed write (a full disk) loses this line only.
    (void)!::write(fd_, line, size);
  }

 private:
  const int fd_;
};

}  // namespace

std::shared_ptr<rocksdb::Logger> OpenRocksLog(const std::string& dir, size_t keep_old) {
  std::error_code ec;
  const fs::path log = fs::path(dir) / "LOG";
  if (fs::exists(log, ec)) {
    struct timeval now;
    ::gettimeofday(&now, nullptr);
    const long long us = static_cast<long long>(now.tv_sec) * 1'000'000 + now.tv_usec;
    fs::rename(log, fs::path(dir) / ("LOG.old." + std::to_string(us)), ec);
    std::vector<fs::path> old;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      if (e.path().filename().string().starts_with("LOG.old.")) old.push_back(e.path());
    }
    // Same-length names (µs since 1970 has had 16 digits since 2001) sort by age.
    std::sort(old.begin(), old.end());
    for (size_t i = 0; i + keep_old < old.size(); ++i) fs::remove(old[i], ec);
  }
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return nullptr;
  return std::make_shared<AppendLogger>(fd);
}

}  // namespace stickmeter::tsdb
