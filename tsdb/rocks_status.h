// Converting RocksDB's statuses to ours, at the edge where tsdb calls RocksDB.
#pragma once

#include <rocksdb/status.h>

#include <string>

#include "common/status.h"

namespace stickmeter::tsdb {

// Converts a RocksDB status, prefixing `context`.
Status FromRocks(const rocksdb::Status& s, const std::string& context);

}  // namespace stickmeter::tsdb
