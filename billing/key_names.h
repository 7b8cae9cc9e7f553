// Display names of keys (`serve --key-names FILE`, `export --key-names FILE`): a CSV file with
// the header `table,key,name` mapping a table's key to a customer's name, shown in the invoice
// export's `name` column, by GET /api/v1/names and in the UI. Format and limits in
// docs/exports.md ("Display names").
//
// The file is read whole at start (there is no reload): at most kMaxKeyNamesFileBytes, a table
// at most kMaxNameTableBytes, a key kMaxNameKeyBytes and a name kMaxDisplayNameBytes; a name
// holds no control character. Fields follow RFC 4180 (quotes, doubled quotes, CRLF or LF);
// empty lines are skipped.
//
// Thread-safety: a loaded KeyNames is immutable; share it (shared_ptr<const KeyNames>) between
// threads freely. Failure: Load and Parse return InvalidArgument "FILE:LINE: why" (the line
// where the bad record starts), or IoError when the file cannot be read.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace stickmeter::billing {

inline constexpr size_t kMaxKeyNamesFileBytes = size_t{64} << 20;
inline constexpr size_t kMaxNameTableBytes = 1024;
inline constexpr size_t kMaxNameKeyBytes = 4096;
inline constexpr size_t kMaxDisplayNameBytes = 1024;

struct KeyName {
  std::string key;
  std::string name;
};

class KeyNames {
 public:
  // Reads and parses `path`.
  static Result<std::shared_ptr<const KeyNames>> Load(const std::string& path);
  // Parses the text of a file; `file` names it in errors.
  static Result<std::shared_ptr<const KeyNames>> Parse(std::string_view text,
                                                       const std::string& file);

  // The name of `key` in `table`, or nullptr.
  const std::string* Find(std::string_view table, std::string_view key) const;
  // The names of `table` from the first key that starts with `prefix` and sorts after `after`
  // (bytewise; `after` empty: from the first with the prefix) to the end of the table, ascending
  // by key: the caller stops at the first key without the prefix (pages stay O(page)).
  std::pair<const KeyName*, const KeyName*> Range(std::string_view table, std::string_view prefix,
                                                  std::string_view after) const;
  size_t size() const { return count_; }

 private:
  struct Table {
    std::string name;
    std::vector<KeyName> keys;  // ascending by key, unique
  };
  const Table* FindTable(std::string_view table) const;

  std::vector<Table> tables_;  // ascending by name
  size_t count_ = 0;
};

}  // namespace stickmeter::billing
