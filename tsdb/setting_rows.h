// The settings rows of the meta family (tsdb/format.h: "C" name -> value, "H" time order ->
// change): the named settings other parts keep in the store (quotas, key names, ...), and the
// history of every change to them, written in one WriteBatch with the change.
//
// Thread-safety: reentrant; the caller holds the DB open, and serialises writes (each change's
// `order` must grow, so that changes within one millisecond keep their order).
// Ownership: borrows the DbHandle; keeps no state.
// Failure: NotFound to delete a setting that does not exist; Corruption for a malformed history
// row; IoError from RocksDB.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "tsdb/db_handle.h"
#include "tsdb/store.h"

namespace stickmeter::tsdb {

// The settings whose names start with `prefix`, in name order.
Result<std::vector<std::pair<std::string, std::string>>> ReadSettings(const DbHandle& db,
                                                                      std::string_view prefix);

struct SettingWrite {
  std::string name;
  std::optional<std::string> value;  // nullopt: delete the setting
  int64_t t_ms = 0;                  // when, for the history
  uint64_t order = 0;                // orders changes of the same millisecond
  bool sync = true;                  // fsync the write
};
// Sets or deletes a setting and records the change in its history, atomically.
Status WriteSettingRows(DbHandle& db, const SettingWrite& w);

// The last `limit` changes to settings whose names start with `prefix`, oldest first.
Result<std::vector<SettingChange>> ReadSettingHistory(const DbHandle& db, std::string_view prefix,
                                                      size_t limit);

}  // namespace stickmeter::tsdb
