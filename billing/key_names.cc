#include "billing/key_names.h"

#include <algorithm>
#include <fstream>
#include <map>

namespace stickmeter::billing {
namespace {

// One RFC 4180 record from `text` at `*pos`: its fields, and the lines it spans. False at the
// end of the text; an error for a quote in an unquoted field or an unterminated quote.
class CsvReader {
 public:
  CsvReader(std::string_view text, const std::string& file) : text_(text), file_(file) {}

  Status Next(std::vector<std::string>* fields, size_t* line, bool* done) {
    fields->clear();
    *line = line_;
    if (pos_ >= text_.size()) {
      *done = true;
      return Status::Ok();
    }
    *done = false;
    std::string field;
    bool quoted = false, was_quoted = false;
    while (pos_ < text_.size()) {
      // Every field is bounded by the largest one allowed; stop reading a runaway field early.
      if (field.size() > kMaxNameKeyBytes) return Error(*line, "a field longer than 4096 bytes");
      const char c = text_[pos_++];
      if (quoted) {
        if (c == '"') {
          if (pos_ < text_.size() && text_[pos_] == '"') {
            field += '"';
            ++pos_;
          } else {
            quoted = false;
          }
        } else {
          if (c == '\n') ++line_;
          field += c;
        }
        continue;
      }
      if (c == '"') {
        if (!field.empty() || was_quoted) return Error(line_, "a quote inside an unquoted field");
        quoted = was_quoted = true;
      } else if (c == ',') {
        fields->push_back(std::move(field));
        field.clear();
        was_quoted = false;
      } else if (c == '\n' || c == '\r') {
        if (c == '\r') {
          if (pos_ >= text_.size() || text_[pos_] != '\n') return Error(line_, "a CR without LF");
          ++pos_;
        }
        ++line_;
        fields->push_back(std::move(field));
        return Status::Ok();
      } else {
        if (was_quoted) return Error(line_, "text after a closing quote");
        field += c;
      }
    }
    if (quoted) return Error(*line, "a quoted field is not closed");
    fields->push_back(std::move(field));
    return Status::Ok();
  }

  Status Error(size_t line, const std::string& why) const {
    return Status::InvalidArgument(file_ + ":" + std::to_string(line) + ": " + why);
  }

 private:
  std::string_view text_;
  const std::string& file_;
  size_t pos_ = 0;
  size_t line_ = 1;
};

bool HasControl(std::string_view text) {
  return std::any_of(text.begin(), text.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

}  // namespace

Result<std::shared_ptr<const KeyNames>> KeyNames::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError(path + ": cannot read");
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size < 0) return Status::IoError(path + ": cannot read");
  if (static_cast<uint64_t>(size) > kMaxKeyNamesFileBytes) {
    return Status::InvalidArgument(path + ": larger than 64 MiB");
  }
  in.seekg(0);
  std::string text(static_cast<size_t>(size), '\0');
  in.read(text.data(), size);
  if (!in) return Status::IoError(path + ": cannot read");
  return Parse(text, path);
}

Result<std::shared_ptr<const KeyNames>> KeyNames::Parse(std::string_view text,
                                                        const std::string& file) {
  if (text.size() > kMaxKeyNamesFileBytes) {
    return Status::InvalidArgument(file + ": larger than 64 MiB");
  }
  CsvReader reader(text, file);
  std::vector<std::string> fields;
  size_t line = 0;
  bool done = false;
  if (Status s = reader.Next(&fields, &line, &done); !s.ok()) return s;
  if (done || fields != std::vector<std::string>{"table", "key", "name"}) {
    return reader.Error(1, "the header must be table,key,name");
  }
  // By table, then the entries with the line each came from (for duplicates).
  std::map<std::string, std::vector<std::pair<KeyName, size_t>>, std::less<>> by_table;
  while (true) {
    if (Status s = reader.Next(&fields, &line, &done); !s.ok()) return s;
    if (done) break;
    if (fields.size() == 1 && fields[0].empty()) continue;  // an empty line
    if (fields.size() != 3) {
      return reader.Error(
          line, "expected 3 fields (table,key,name), got " + std::to_string(fields.size()));
    }
    if (fields[0].empty() || fields[0].size() > kMaxNameTableBytes) {
      return reader.Error(line, "the table must be 1 to 1024 bytes");
    }
    if (fields[1].empty() || fields[1].size() > kMaxNameKeyBytes) {
      return reader.Error(line, "the key must be 1 to 4096 bytes");
    }
    if (fields[2].empty() || fields[2].size() > kMaxDisplayNameBytes) {
      return reader.Error(line, "the name must be 1 to 1024 bytes");
    }
    if (HasControl(fields[2])) return reader.Error(line, "the name holds a control character");
    by_table[fields[0]].emplace_back(KeyName{std::move(fields[1]), std::move(fields[2])}, line);
  }
  auto names = std::make_shared<KeyNames>();
  for (auto& [table, entries] : by_table) {
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
      return a.first.key != b.first.key ? a.first.key < b.first.key : a.second < b.second;
    });
    Table t{table, {}};
    t.keys.reserve(entries.size());
    for (size_t i = 0; i < entries.size(); ++i) {
      if (!t.keys.empty() && entries[i].first.key == t.keys.back().key) {
        return reader.Error(entries[i].second, "key \"" + entries[i].first.key.substr(0, 64) +
                                                   "\" of table \"" + table.substr(0, 64) +
                                                   "\" is named already on line " +
                                                   std::to_string(entries[i - 1].second));
      }
      t.keys.push_back(std::move(entries[i].first));
    }
    names->count_ += t.keys.size();
    names->tables_.push_back(std::move(t));
  }
  return std::shared_ptr<const KeyNames>(std::move(names));
}

const KeyNames::Table* KeyNames::FindTable(std::string_view table) const {
  auto it = std::lower_bound(tables_.begin(), tables_.end(), table,
                             [](const Table& t, std::string_view name) { return t.name < name; });
  return it != tables_.end() && it->name == table ? &*it : nullptr;
}

const std::string* KeyNames::Find(std::string_view table, std::string_view key) const {
  const Table* t = FindTable(table);
  if (t == nullptr) return nullptr;
  auto it = std::lower_bound(t->keys.begin(), t->keys.end(), key,
                             [](const KeyName& k, std::string_view want) { return k.key < want; });
  return it != t->keys.end() && it->key == key ? &it->name : nullptr;
}

std::pair<const KeyName*, const KeyName*> KeyNames::Range(std::string_view table,
                                                          std::string_view prefix,
                                                          std::string_view after) const {
  const Table* t = FindTable(table);
  if (t == nullptr || t->keys.empty()) return {nullptr, nullptr};
  const KeyName* const first = t->keys.data();
  const KeyName* const last = first + t->keys.size();
  const KeyName* begin = std::lower_bound(
      first, last, prefix, [](const KeyName& k, std::string_view want) { return k.key < want; });
  if (!after.empty() && std::string_view(after) >= prefix) {
    begin = std::upper_bound(begin, last, after,
                             [](std::string_view want, const KeyName& k) { return want < k.key; });
  }
  return {begin, last};
}

}  // namespace stickmeter::billing
