// The journal rows' encoding (tsdb/format.h's JournalRow and JournalRecords): a group's
// records by partition, and each entry, rollup cell and audit record in them.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tsdb/format.h"

namespace stickmeter::tsdb::format {

namespace {
constexpr char kJournalEntryTag = 0x00;  // then 0x01 + resolution for cells
constexpr char kJournalAuditTag = 0x04;
constexpr char kJournalChunkTag = 0x05;
}  // namespace

void AppendJournalChunk(std::string& row, uint32_t partition, std::string_view records) {
  row.push_back(kJournalChunkTag);
  PutVarint(row, partition);
  PutVarint(row, records.size());
  row.append(records);
}

bool SplitJournalRow(std::string_view row, std::vector<JournalChunk>* out) {
  if (row.empty()) return false;
  while (!row.empty()) {
    JournalChunk c;
    uint64_t len = 0;
    if (row[0] != kJournalChunkTag) return false;
    row.remove_prefix(1);
    if (!GetVarint32(&row, &c.partition) || !GetVarint(&row, &len) || len == 0 ||
        len > row.size()) {
      return false;
    }
    c.records = row.substr(0, len);
    row.remove_prefix(len);
    out->push_back(c);
  }
  return true;
}

std::string AppliedKey(uint32_t partition) {
  std::string k(1, kTagApplied);
  PutU32BE(k, partition);
  return k;
}

std::optional<uint32_t> DecodeAppliedKey(std::string_view key) {
  if (key.size() != 5 || key[0] != kTagApplied) return std::nullopt;
  return GetU32BE(key.data() + 1);
}

void AppendJournalEntry(std::string& row, const EntryId& id, std::string_view state) {
  row.push_back(kJournalEntryTag);
  PutVarint(row, id.source);
  PutVarint(row, id.table);
  PutVarint(row, id.key);
  PutVarint(row, state.size());
  row.append(state);
}

void AppendJournalCell(std::string& row, int resolution, uint32_t table_id, uint32_t key_id,
                       uint32_t bucket, uint32_t source_id, std::string_view sums) {
  row.push_back(static_cast<char>(1 + resolution));
  PutVarint(row, table_id);
  PutVarint(row, key_id);
  PutVarint(row, bucket);
  PutVarint(row, source_id);
  PutVarint(row, sums.size());
  row.append(sums);
}

void AppendJournalAudit(std::string& row, uint32_t table_id, uint32_t key_id, int64_t t_ms,
                        uint64_t seq, std::string_view event_row) {
  row.push_back(kJournalAuditTag);
  PutVarint(row, table_id);
  PutVarint(row, key_id);
  PutVarint(row, static_cast<uint64_t>(t_ms));
  PutVarint(row, seq);
  PutVarint(row, event_row.size());
  row.append(event_row);
}

bool AppendJournal(std::string_view in, Journal* j) { return AppendJournal(in, j, {}); }

bool AppendJournal(std::string_view in, Journal* j, const JournalFilter& keep) {
  auto bytes = [&](std::string_view* out) {
    uint64_t len = 0;
    if (!GetVarint(&in, &len) || len == 0 || len > in.size()) return false;
    *out = in.substr(0, len);
    in.remove_prefix(len);
    return true;
  };
  while (!in.empty()) {
    const auto tag = static_cast<unsigned char>(in[0]);
    in.remove_prefix(1);
    if (tag == kJournalEntryTag) {
      JournalEntry e;
      if (!GetVarint32(&in, &e.id.source) || !GetVarint32(&in, &e.id.table) ||
          !GetVarint32(&in, &e.id.key) || !bytes(&e.state)) {
        return false;
      }
      if (keep.entries) j->entries.push_back(e);
    } else if (tag >= 1 && tag <= kJournalResolutions) {
      JournalCell c;
      if (!GetVarint32(&in, &c.table) || !GetVarint32(&in, &c.key) ||
          !GetVarint32(&in, &c.bucket) || !GetVarint32(&in, &c.source) || !bytes(&c.sums)) {
        return false;
      }
      if (!keep.cell || keep.cell(tag - 1, c)) j->cells[tag - 1].push_back(c);
    } else if (tag == kJournalAuditTag) {
      JournalAudit a;
      uint64_t t = 0;
      if (!GetVarint32(&in, &a.table) || !GetVarint32(&in, &a.key) || !GetVarint(&in, &t) ||
          t > static_cast<uint64_t>(INT64_MAX) || !GetVarint(&in, &a.seq) || !bytes(&a.row)) {
        return false;
      }
      a.t_ms = static_cast<int64_t>(t);
      if (!keep.audit || keep.audit(a)) j->audit.push_back(a);
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace stickmeter::tsdb::format
