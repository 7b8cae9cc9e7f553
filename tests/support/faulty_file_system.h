// FaultyFileSystem: RocksDB's file system over the real one, whose writes a test can make fail
// as a failing disk's would, to test the store through its front door: pass env() as
// tsdb::StoreOptions::env and call FailWrites().
//
// While failing, every write to a file (append, flush, sync) and every new file fails with an
// I/O error whose message contains "injected write failure"; reads work. Files opened before
// keep failing their writes too. Heal() ends it.
//
// Thread-safety: FailWrites, Heal and the counters from any thread; RocksDB calls the file
// system from its own threads. Ownership: a test owns it (a shared_ptr, as RocksDB wants), and
// it must outlive every store opened with its env().
#pragma once

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

namespace stickmeter::testing {

class FaultyFileSystem : public rocksdb::FileSystemWrapper {
 public:
  FaultyFileSystem();
  static std::shared_ptr<FaultyFileSystem> Create() { return std::make_shared<FaultyFileSystem>(); }

  // The Env to open a store with.
  rocksdb::Env* env();

  // From now on, writes fail. `on_first_failure`, if given, runs once, in the first failing
  // call, before it returns its error, on whichever RocksDB thread made it: a test can hold that
  // write there (the store's commit of a group, as it begins to fail).
  void FailWrites(std::function<void()> on_first_failure = {});
  // Writes work again.
  void Heal();
  // Writes that failed so far.
  int failed_writes() const { return failed_writes_.load(); }

  // rocksdb::FileSystem
  static const char* kClassName() { return "StickmeterFaultyFileSystem"; }
  const char* Name() const override { return kClassName(); }
  rocksdb::IOStatus NewWritableFile(const std::string& fname, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReopenWritableFile(const std::string& fname,
                                       const rocksdb::FileOptions& options,
                                       std::unique_ptr<rocksdb::FSWritableFile>* result,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReuseWritableFile(const std::string& fname, const std::string& old_fname,
                                      const rocksdb::FileOptions& options,
                                      std::unique_ptr<rocksdb::FSWritableFile>* result,
                                      rocksdb::IODebugContext* dbg) override;

  // The error of a failing write, counting it (and running the first-failure hook); OK while
  // writes work. Called by the files this file system hands out.
  rocksdb::IOStatus Check();

 private:
  rocksdb::IOStatus Wrap(rocksdb::IOStatus opened,
                         std::unique_ptr<rocksdb::FSWritableFile>* result);

  std::atomic<bool> failing_{false};
  std::atomic<int> failed_writes_{0};
  std::mutex hook_mu_;
  std::function<void()> on_first_failure_;  // guarded by hook_mu_
  std::unique_ptr<rocksdb::Env> env_;
};

}  // namespace stickmeter::testing
