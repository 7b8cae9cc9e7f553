#include "tests/support/faulty_file_system.h"

#include <utility>

namespace stickmeter::testing {
namespace {

// A file whose writes ask the file system first.
class FaultyFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  FaultyFile(std::unique_ptr<rocksdb::FSWritableFile> file, FaultyFileSystem* fs)
      : FSWritableFileOwnerWrapper(std::move(file)), fs_(fs) {}

  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
    if (auto s = fs_->Check(); !s.ok()) return s;
    return FSWritableFileOwnerWrapper::Append(data, options, dbg);
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           const rocksdb::DataVerificationInfo& info,
                           rocksdb::IODebugContext* dbg) override {
    if (auto s = fs_->Check(); !s.ok()) return s;
    return FSWritableFileOwnerWrapper::Append(data, options, info, dbg);
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                     const rocksdb::IOOptions& options,
                                     rocksdb::IODebugContext* dbg) override {
    if (auto s = fs_->Check(); !s.ok()) return s;
    return FSWritableFileOwnerWrapper::PositionedAppend(data, offset, options, dbg);
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                     const rocksdb::IOOptions& options,
                                     const rocksdb::DataVerificationInfo& info,
                                     rocksdb::IODebugContext* dbg) override {
    if (auto s = fs_->Check(); !s.ok()) return s;
    return FSWritableFileOwnerWrapper::PositionedAppend(data, offset, options, info, dbg);
  }
  rocksdb::IOStatus Flush(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    if (auto s = fs_->Check(); !s.ok()) return s;
    return FSWritableFileOwnerWrapper::Flush(options, dbg);
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg) override {
    if (auto s = fs_->Check(); !s.ok()) return s;
    return FSWritableFileOwnerWrapper::Sync(options, dbg);
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    if (auto s = fs_->Check(); !s.ok()) return s;
    return FSWritableFileOwnerWrapper::Fsync(options, dbg);
  }

 private:
  FaultyFileSystem* fs_;
};

}  // namespace

FaultyFileSystem::FaultyFileSystem() : FileSystemWrapper(rocksdb::FileSystem::Default()) {}

rocksdb::Env* FaultyFileSystem::env() {
  if (!env_) {
    // RocksDB holds the file system by shared_ptr; this one outlives the Env (see the header).
    env_ = rocksdb::NewCompositeEnv(
        std::shared_ptr<rocksdb::FileSystem>(std::shared_ptr<rocksdb::FileSystem>{}, this));
  }
  return env_.get();
}

void FaultyFileSystem::FailWrites(std::function<void()> on_first_failure) {
  {
    std::lock_guard lock(hook_mu_);
    on_first_failure_ = std::move(on_first_failure);
  }
  failing_.store(true);
}

void FaultyFileSystem::Heal() { failing_.store(false); }

rocksdb::IOStatus FaultyFileSystem::Check() {
  if (!failing_.load()) return rocksdb::IOStatus::OK();
  failed_writes_.fetch_add(1);
  std::function<void()> hook;
  {
    std::lock_guard lock(hook_mu_);
    hook = std::exchange(on_first_failure_, nullptr);
  }
  if (hook) hook();
  return rocksdb::IOStatus::IOError("injected write failure (a test's failing disk)");
}

rocksdb::IOStatus FaultyFileSystem::Wrap(rocksdb::IOStatus opened,
                                         std::unique_ptr<rocksdb::FSWritableFile>* result) {
  if (!opened.ok()) return opened;
  *result = std::make_unique<FaultyFile>(std::move(*result), this);
  return opened;
}

rocksdb::IOStatus FaultyFileSystem::NewWritableFile(
    const std::string& fname, const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSWritableFile>* result, rocksdb::IODebugContext* dbg) {
  if (auto s = Check(); !s.ok()) return s;
  return Wrap(target()->NewWritableFile(fname, options, result, dbg), result);
}

rocksdb::IOStatus FaultyFileSystem::ReopenWritableFile(
    const std::string& fname, const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSWritableFile>* result, rocksdb::IODebugContext* dbg) {
  if (auto s = Check(); !s.ok()) return s;
  return Wrap(target()->ReopenWritableFile(fname, options, result, dbg), result);
}

rocksdb::IOStatus FaultyFileSystem::ReuseWritableFile(
    const std::string& fname, const std::string& old_fname, const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSWritableFile>* result, rocksdb::IODebugContext* dbg) {
  if (auto s = Check(); !s.ok()) return s;
  return Wrap(target()->ReuseWritableFile(fname, old_fname, options, result, dbg), result);
}

}  // namespace stickmeter::testing
