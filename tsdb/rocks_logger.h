// RocksDB's info log (the LOG file in the data directory) written without RocksDB's file writer.
//
// RocksDB's own logger writes through a WritableFileWriter, which (in builds with assertions,
// as Debian's librocksdb is) aborts the process on the next log line once one write of the LOG
// file has failed: a full disk killed the store a moment after its first ENOSPC. This logger
// appends each line with write(2) and drops a line it cannot write, so a full disk costs log
// lines, never the process.
//
// Thread-safety: RocksDB calls Logv from any of its threads; each line is one write(2) of an
// O_APPEND file, so lines do not interleave.
// Ownership: held by rocksdb::Options::info_log (shared); owns the file descriptor.
// Failure: never fails; OpenRocksLog returns null when LOG cannot be opened (RocksDB then
// opens its own, as before).
#pragma once

#include <rocksdb/env.h>

#include <memory>
#include <string>

namespace stickmeter::tsdb {

// Opens `dir`/LOG for appending, first renaming an existing one to LOG.old.<unix µs> and keeping
// the newest `keep_old` of those, as RocksDB does at each open.
std::shared_ptr<rocksdb::Logger> OpenRocksLog(const std::string& dir, size_t keep_old);

}  // namespace stickmeter::tsdb
