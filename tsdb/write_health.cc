#include "tsdb/write_health.h"

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

#include "common/log.h"
#include "common/time.h"

namespace stickmeter::tsdb {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kRemindEveryMs = 60'000;
// Beyond the write-ahead logs: the files an open writes (manifest, options, a new log).
constexpr uint64_t kOpenMarginBytes = 4u << 20;
constexpr size_t kProbeBytes = 64u << 10;

std::string Seconds(int64_t ms) { return std::to_string((ms + 500) / 1000) + " s"; }

}  // namespace

WriteHealth::WriteHealth(MetricsRegistry& metrics)
    : failed_(metrics.GetGauge("stickmeter_store_failed",
                               "1 while the store's writes fail (a full disk, a failed sync): "
                               "updates are not acknowledged until it has recovered by itself")),
      write_errors_(metrics.GetCounter("stickmeter_store_write_errors_total",
                                       "Writes of the store that failed")) {
  failed_.Set(0);
}

void WriteHealth::Failed(const Status& why) {
  write_errors_.Inc();
  MutexLock lock(&mu_);
  ++episode_errors_;
  if (!reason_.ok()) return;
  reason_ = why;
  since_ms_ = last_logged_ms_ = MonotonicMs();
  attempts_ = 0;
  failed_.Set(1);
  LogError("store",
           "a write failed; no update is acknowledged until writes succeed again (the "
           "store retries by itself): " +
               why.ToString());
}

void WriteHealth::RetryFailed(const Status& why) {
  MutexLock lock(&mu_);
  ++attempts_;
  reason_ = why;
  const int64_t now = MonotonicMs();
  if (now - last_logged_ms_ < kRemindEveryMs) return;
  last_logged_ms_ = now;
  LogWarn("store", "writes still fail after " + Seconds(now - since_ms_) +
                       ", nothing acknowledged meanwhile: " + why.ToString());
}

void WriteHealth::Recovered() {
  MutexLock lock(&mu_);
  if (reason_.ok()) return;
  LogWarn("store", "writes succeed again after " + Seconds(MonotonicMs() - since_ms_) + " (" +
                       std::to_string(episode_errors_) +
                       " failed writes); peers send again what was not acknowledged");
  reason_ = Status::Ok();
  episode_errors_ = 0;
  attempts_ = 0;
  failed_.Set(0);
}

Status WriteHealth::status() const {
  MutexLock lock(&mu_);
  return reason_;
}

std::chrono::milliseconds WriteHealth::RetryDelay() const {
  MutexLock lock(&mu_);
  return std::chrono::milliseconds(250 << std::min(attempts_, 4));
}

Status ProbeWritable(const std::string& dir, rocksdb::Env* env) {
  uint64_t logs = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().extension() == ".log") logs += e.file_size(ec);
  }
  struct statvfs st;
  if (::statvfs(dir.c_str(), &st) != 0) {
    return Status::IoError("cannot stat " + dir + ": " + std::strerror(errno));
  }
  const uint64_t free_bytes = uint64_t{st.f_bavail} * st.f_frsize;
  // An open flushes what the logs hold into tables, compressed: about half their size at most.
  const uint64_t needed = logs / 2 + kOpenMarginBytes;
  if (free_bytes < needed) {
    return Status::IoError("no space left on the disk of " + dir + ": " +
                           std::to_string(free_bytes >> 20) + " MiB free, the store needs " +
                           std::to_string((needed + (1u << 20) - 1) >> 20) + " MiB to reopen");
  }
  // Through the file system the store writes with, so that a probe sees what its writes would.
  const std::shared_ptr<rocksdb::FileSystem> files =
      (env != nullptr ? env : rocksdb::Env::Default())->GetFileSystem();
  const std::string probe = dir + "/write-probe.tmp";
  std::unique_ptr<rocksdb::FSWritableFile> file;
  const rocksdb::IOOptions io;
  rocksdb::IOStatus s = files->NewWritableFile(probe, rocksdb::FileOptions(), &file, nullptr);
  if (!s.ok()) return Status::IoError("cannot create " + probe + ": " + s.ToString());
  const std::string zeros(kProbeBytes, '\0');
  s = file->Append(rocksdb::Slice(zeros), io, nullptr);
  if (s.ok()) s = file->Sync(io, nullptr);
  const rocksdb::IOStatus closed = file->Close(io, nullptr);
  if (s.ok()) s = closed;
  file.reset();
  (void)files->DeleteFile(probe, io, nullptr);
  if (!s.ok()) return Status::IoError("cannot write " + probe + ": " + s.ToString());
  return Status::Ok();
}

}  // namespace stickmeter::tsdb
