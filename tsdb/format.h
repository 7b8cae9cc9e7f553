// The persisted format of a stickmeter store: every key layout and value encoding, in one place.
//
// Pure functions and constants, no state; thread-safe (format.cc; the journal rows in
// format_journal.cc). Anything written here is on users' disks: never renumber an enum, never
// reuse a tag byte, and bump kFormatVersion for any change that an older build could misread (a
// store of any other version is refused, but those a build knows how to upgrade: see
// kFormatVersion).
//
// Grammar (all integers big-endian fixed width unless marked varint; `id` = u32 big-endian):
//
//   column family "default" (meta):
//     "F"                                   -> u32 format version
//     "Q"                                   -> u64 next audit sequence number
//     "N" kind:u8 name:bytes                -> id            interned names (kind: NameKind)
//         kind kKey: name = table_id:id key_text           so keys of a table sort by text
//     "T" table_id:id                       -> TableValue    as the table was last announced
//     "M" table_id:id metric_id:id          -> u8 MetricClass
//     "S" table_id:id source_id:id          -> ""            sources seen for the table
//     "E" source_id:id                      -> u32 restart epoch, i64 restart ms (fixed LE)
//     "O" first_seq:u64                     -> JournalRecords   the event feed's outbox: the
//         audit records (0x04 only) of one group commit, first_seq its first event's; written
//         only while the feed is on (StoreOptions::event_feed), deleted once shipped
//     "P"                                   -> FeedState     where the event feed stands
//     "U"                                   -> 16 hex digits  the store's random id, made when the
//         event feed is first turned on and never changed: event ids use it
//     "V" source:bytes                      -> CoverageRecord  when the source was connected
//         (tsdb/coverage.h, which holds its encoding and bounds)
//     "W" source:bytes                      -> u64 last seen ms  an update of the source last
//         received (to within a minute); closes a session an unclean stop left open
//   column family "entries" (delta-engine state, one row per entry of a source):
//     source_id:id table_id:id key_id:id    -> EntryState
//   column family "raw" (the audit trail: the entry updates with a non-zero delta, one or
//   several of a key per row, keyed by the first):
//     table_id:id key_id:id t_ms:u64 seq:u64  -> UpdatesRow (several updates) or EventRow (one)
//   column families "e1m", "e1h24", "e1d" (counter rollups of all counters of an entry,
//   merge operator "stickmeter.sums"):
//     table_id:id key_id:id bucket:u32 source_id:id -> Sums
//     bucket = t_ms / resolution (minutes or days since the Unix epoch, UTC); "e1h24" rows hold
//     a UTC day of hours, keyed by the day, slot = metric_id * 24 + hour of the day
//   column families "k1m", "k1h", "k1d" (the counter rollups again, by time first: every key's
//   sum of one metric over all sources, for queries over every key; merge operator
//   "stickmeter.keysums"; derived from the cells above as they are written, format version 2):
//     table_id:id metric_id:id bucket:u32 block:u32 -> Sums
//     bucket = t_ms / resolution (minutes, hours or days since the Unix epoch, UTC); block =
//     key_id / kKeysPerBlock; slot = key_id % kKeysPerBlock
//   column family "gauge" (gauge samples per minute, merge operator "stickmeter.gauge"):
//     table_id:id metric_id:id key_id:id minute:u32 source_id:id -> i64 last, i64 max (fixed LE)
//
//   TableValue  = varint len, key_type | varint key_size | varint expire_ms |
//                 varint n, n x (varint len, data_type)
//   EntryState  = n >= 1 x (varint metric_id | varint last | varint last_ms | varint
//                 connection_id | varint epoch), metric ids strictly ascending
//   Sums        = n >= 1 x (varint slot | varint sum), slots strictly ascending; slot = metric_id
//                 (minutes, days) or metric_id * 24 + hour of the day (hours)
//   EventRow    = 0x00 | varint source_id | n >= 1 x (varint metric_id | varint value |
//                 varint delta | u8 Reason)        the i-th event's sequence number is seq + i
//   UpdatesRow  = 0x00 0x00 | n >= 1 x (varint t_ms - key t_ms | varint seq - key seq |
//                 varint len | EventRow)          one entry update each, seqs ascending, each
//                 t_ms in [key t_ms, key t_ms + kRawRowSpanMs)
//   JournalRow  = n >= 1 x (0x05 | varint partition | varint len | JournalRecords), partitions
//                 ascending
//   JournalRecords = records back to back, each a tag byte then:
//                 0x00 entry: varint source_id | varint table_id | varint key_id |
//                      varint len | EntryState
//                 0x01, 0x02, 0x03 rollup cell of the minute, hour, day rows: varint table_id |
//                      varint key_id | varint bucket | varint source_id | varint len | Sums
//                 (bucket as in the row's key: hour cells are keyed by their day)
//                 0x04 audit row of an entry update: varint table_id | varint key_id |
//                      varint t_ms | varint seq | varint len | EventRow
//   FeedState   = u64 shipped_through_seq | u64 backfill_below_seq | u8 backfill_done |
//                 backfill_after: 0 or kRawKeySize bytes (the last raw key shipped)
//
// Keys put the table (and for rollups the metric) first so that the usage of one table+metric
// over a range is a bounded scan, and times are big-endian so that byte order is time order.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace stickmeter::tsdb::format {

// The version of the layout above, written into the "F" record of a new store. A build reads its
// own version and upgrades those from kFirstUpgradableVersion on; a store of any other version,
// older or newer, is refused at open, since the build has no code to read or rewrite its layout.
// Version 2 added the "k1m", "k1h" and "k1d" families: a store of version 1 is upgraded at its
// first open for writing (tsdb/key_rollups.h), and read as it is by a read-only open.
inline constexpr uint32_t kFormatVersion = 2;
inline constexpr uint32_t kFirstUpgradableVersion = 1;
// The version whose stores have the every-key rollups.
inline constexpr uint32_t kKeyRollupsVersion = 2;
// Whether a build reads (or upgrades) a store recording `version`.
inline bool ReadableVersion(uint32_t version) {
  return version >= kFirstUpgradableVersion && version <= kFormatVersion;
}

inline constexpr char kMetaCf[] = "default";
inline constexpr char kEntriesCf[] = "entries";
inline constexpr char kRawCf[] = "raw";
inline constexpr char kMinuteCf[] = "e1m";
inline constexpr char kHourCf[] = "e1h24";
inline constexpr char kDayCf[] = "e1d";
inline constexpr char kGaugeCf[] = "gauge";
inline constexpr char kKeyMinuteCf[] = "k1m";
inline constexpr char kKeyHourCf[] = "k1h";
inline constexpr char kKeyDayCf[] = "k1d";

inline constexpr int64_t kMinuteMs = 60'000;
inline constexpr int64_t kHourMs = 3'600'000;
inline constexpr int64_t kDayMs = 86'400'000;

// Meta key tags. Never reuse a letter.
inline constexpr char kTagFormat = 'F';
inline constexpr char kTagSeq = 'Q';
inline constexpr char kTagName = 'N';
inline constexpr char kTagTable = 'T';
inline constexpr char kTagMetric = 'M';
inline constexpr char kTagTableSource = 'S';
inline constexpr char kTagEpoch = 'E';
inline constexpr char kTagJournal = 'J';
inline constexpr char kTagApplied = 'A';
// Settings kept beside the data (quotas): 'C' + name -> value, and their history:
// 'H' + u64 BE Unix ms + u64 BE counter -> u32 BE name length + name + u8 deleted + value.
inline constexpr char kTagSetting = 'C';
inline constexpr char kTagSettingHistory = 'H';
// The event feed (tsdb/event_feed.h): its outbox rows and its position. An older build ignores
// both (it writes no outbox rows; the feed then backfills, see StoreImpl::OpenFeed).
inline constexpr char kTagOutbox = 'O';
inline constexpr char kTagFeedState = 'P';
inline constexpr char kTagStoreId = 'U';
// Data completeness per source (tsdb/coverage.h). An older build ignores both: a store it wrote
// to reads as not covered for that time.
inline constexpr char kTagCoverage = 'V';
inline constexpr char kTagCoverageSeen = 'W';

// Kinds of interned names. Never renumber.
enum class NameKind : uint8_t { kSource = 1, kTable = 2, kMetric = 3, kKey = 4 };

// How a metric is stored. Never renumber.
enum class MetricClass : uint8_t { kCounter32 = 1, kCounter64 = 2, kGauge = 3 };

// Why a delta was recorded (docs/counting.md, rules 1-6). Never renumber.
enum class Reason : uint8_t {
  kRestart = 1,
  kFirst = 2,
  kExpired = 3,
  kIncrement = 4,
  kWrap = 5,
  kReset = 6,
};
inline constexpr int kReasonCount = 7;  // index 0 unused
std::string_view ReasonName(Reason r);

// ---- primitive encoders ----
void PutU32BE(std::string& out, uint32_t v);
void PutU64BE(std::string& out, uint64_t v);
void PutFixed32LE(std::string& out, uint32_t v);
void PutFixed64LE(std::string& out, uint64_t v);
void PutVarint(std::string& out, uint64_t v);
uint32_t GetU32BE(const char* p);
uint64_t GetU64BE(const char* p);
uint32_t GetFixed32LE(const char* p);
uint64_t GetFixed64LE(const char* p);
// Reads a varint of two bytes or more (GetVarint's slower path). Inline too: an audit event's
// counter value is one, and a call per event showed in scans of the audit trail.
inline bool GetLongVarint(std::string_view* in, uint64_t* v) {
  const auto* p = reinterpret_cast<const unsigned char*>(in->data());
  const size_t n = in->size() < 10 ? in->size() : 10;
  uint64_t result = 0;
  for (size_t i = 0; i < n; ++i) {
    const unsigned byte = p[i];
    if (i == 9 && byte > 1) return false;  // past 64 bits
    result |= uint64_t{byte & 0x7fu} << (7 * i);
    if (byte < 0x80) {
      *v = result;
      in->remove_prefix(i + 1);
      return true;
    }
  }
  return false;
}
// Reads a varint at `*in`, advancing it. False on truncation or overflow (then `*in` is left
// as it was). Inline with a one-byte fast path: scans of the audit trail decode several varints
// per event, most of them below 128.
inline bool GetVarint(std::string_view* in, uint64_t* v) {
  if (!in->empty() && static_cast<unsigned char>(in->front()) < 0x80) {
    *v = static_cast<unsigned char>(in->front());
    in->remove_prefix(1);
    return true;
  }
  return GetLongVarint(in, v);
}
// The same for a varint that must fit an id or a bucket (u32): false above UINT32_MAX too.
bool GetVarint32(std::string_view* in, uint32_t* v);

// ---- meta keys ----
std::string FormatKey();
std::string SeqKey();
std::string NameKey(NameKind kind, std::string_view name);
std::string NamePrefix(NameKind kind);
// The interned text of a key: its table id then the key text.
std::string KeyName(uint32_t table_id, std::string_view key);
std::string TableKey(uint32_t table_id);
std::string MetricKey(uint32_t table_id, uint32_t metric_id);
std::string TableSourceKey(uint32_t table_id, uint32_t source_id);
std::string EpochKey(uint32_t source_id);

struct TableValue {
  std::string key_type;
  uint32_t key_size = 0;
  uint64_t expire_ms = 0;
  std::vector<std::string> data_types;
};
std::string EncodeTable(const TableValue& t);
std::optional<TableValue> DecodeTable(std::string_view in);

// ---- entry state ----
// The delta engine's state of one counter of an entry (tsdb/delta.h).
struct SeriesValue {
  uint64_t last = 0;
  int64_t last_ms = 0;
  uint64_t connection_id = 0;
  uint32_t epoch = 0;
};
struct EntryId {
  uint32_t source = 0, table = 0, key = 0;
  bool operator==(const EntryId&) const = default;
};
inline constexpr size_t kEntryKeySize = 12;
void AppendEntryKey(std::string& out, const EntryId& id);
EntryId DecodeEntryKey(const char* p);  // REQUIRES: kEntryKeySize bytes
struct MetricState {
  uint32_t metric = 0;
  SeriesValue v;
};
// REQUIRES: n >= 1, metric ids strictly ascending.
void AppendEntryState(std::string& out, const MetricState* states, size_t n);
// Replaces `*out` with the states of `in`. False if `in` is malformed (empty, truncated, or
// metric ids not strictly ascending).
bool DecodeEntryState(std::string_view in, std::vector<MetricState>* out);

// ---- rollup sums ----
inline constexpr uint32_t kHoursPerRow = 24;
inline uint32_t HourSlot(uint32_t metric_id, uint32_t hour_of_day) {
  return metric_id * kHoursPerRow + hour_of_day;
}
// Appends one (slot, sum); a caller appends slots in strictly ascending order.
void AppendSum(std::string& out, uint32_t slot, uint64_t sum);
// Reads the (slot, sum) pairs of a Sums value in order. Not owning.
class SumsReader {
 public:
  explicit SumsReader(std::string_view in) : in_(in) {}
  // The next pair; false at the end or on a malformed value (see ok()).
  bool Next(uint32_t* slot, uint64_t* sum);
  bool ok() const { return ok_; }

 private:
  std::string_view in_;
  int64_t last_ = -1;
  bool ok_ = true;
};
// `*out` = a + b slot by slot (sums of a slot present in both add up). False if either is
// malformed or empty.
bool AddSums(std::string_view a, std::string_view b, std::string* out);

// Rollup keys: table, key, bucket, source.
inline constexpr size_t kEntryRollupKeySize = 16;
inline constexpr size_t kEntryRollupBucketOffset = 8;
void AppendEntryRollupKey(std::string& out, uint32_t table_id, uint32_t key_id, uint32_t bucket,
                          uint32_t source_id);
struct EntryRollupKeyParts {
  uint32_t table = 0, key = 0, bucket = 0, source = 0;
};
EntryRollupKeyParts DecodeEntryRollupKey(const char* p);  // REQUIRES: kEntryRollupKeySize bytes
// Prefix up to and including the table id (4 bytes) or the key id (8 bytes).
std::string EntryRollupPrefix(uint32_t table_id);
std::string EntryRollupPrefix(uint32_t table_id, uint32_t key_id);

// Every-key rollup keys ("k1m", "k1h", "k1d"): table, metric, bucket, block of key ids.
inline constexpr uint32_t kKeysPerBlock = 1024;
inline constexpr size_t kKeySumsKeySize = 16;
inline constexpr size_t kKeySumsBucketOffset = 8;
void AppendKeySumsKey(std::string& out, uint32_t table_id, uint32_t metric_id, uint32_t bucket,
                      uint32_t block);
struct KeySumsKeyParts {
  uint32_t table = 0, metric = 0, bucket = 0, block = 0;
};
KeySumsKeyParts DecodeKeySumsKey(const char* p);  // REQUIRES: kKeySumsKeySize bytes

// ---- journal ----
std::string JournalKey(uint64_t id);
// The id of a journal key; nullopt if `key` is not one.
std::optional<uint64_t> DecodeJournalKey(std::string_view key);

inline constexpr int kJournalResolutions = 3;  // minute, hour, day
// Appending records to a journal row.
void AppendJournalEntry(std::string& row, const EntryId& id, std::string_view state);
// `resolution`: 0 minute, 1 hour, 2 day; `bucket` as in that column family's keys.
void AppendJournalCell(std::string& row, int resolution, uint32_t table_id, uint32_t key_id,
                       uint32_t bucket, uint32_t source_id, std::string_view sums);
// `event_row`: the EventRow of one entry update, whose first event has sequence number `seq`.
void AppendJournalAudit(std::string& row, uint32_t table_id, uint32_t key_id, int64_t t_ms,
                        uint64_t seq, std::string_view event_row);
// A journal row holds the records of one or more key partitions, each as a chunk; the writer
// out of the journal writes each partition's records (from every row) on its own, and records
// in the same write that the partition's chunks of rows up to some id are written out:
// AppliedKey(partition) -> u64 BE row id. Marks name the partition a chunk was written with, so
// an open after a crash skips exactly the chunks written out, whatever partitioning it uses.
struct JournalChunk {
  uint32_t partition = 0;
  std::string_view records;  // JournalRecords, for AppendJournal
};
// Appends `records` (non-empty) to `row` as the chunk of `partition`.
void AppendJournalChunk(std::string& row, uint32_t partition, std::string_view records);
// Appends the chunks of `row` to `*out` (views into `row`). False if `row` is empty or its
// chunk headers are malformed; the records themselves are checked by AppendJournal.
bool SplitJournalRow(std::string_view row, std::vector<JournalChunk>* out);
std::string AppliedKey(uint32_t partition);
std::optional<uint32_t> DecodeAppliedKey(std::string_view key);  // nullopt if not one

// A decoded journal row: views into the row's bytes, which must outlive it.
struct JournalEntry {
  EntryId id;
  std::string_view state;
};
struct JournalCell {
  uint32_t table = 0, key = 0, bucket = 0, source = 0;
  std::string_view sums;
};
// The sums of cells[i] and of the cells right after it that `same(cells[i], cell)` says belong
// with it, added up: a view of cells[i].sums alone, or of `*scratch` (`*next` is scratch too).
// Sets `*end` past the last cell added. nullopt if sums are malformed.
template <typename Same>
std::optional<std::string_view> AddUpCells(const std::vector<JournalCell>& cells, size_t i,
                                           Same&& same, std::string* scratch, std::string* next,
                                           size_t* end) {
  size_t n = i + 1;
  std::string_view sums = cells[i].sums;
  if (n < cells.size() && same(cells[i], cells[n])) {
    scratch->assign(sums);
    for (; n < cells.size() && same(cells[i], cells[n]); ++n) {
      if (!AddSums(*scratch, cells[n].sums, next)) return std::nullopt;
      scratch->swap(*next);
    }
    sums = *scratch;
  }
  *end = n;
  return sums;
}
struct JournalAudit {
  uint32_t table = 0, key = 0;
  int64_t t_ms = 0;
  uint64_t seq = 0;
  std::string_view row;  // an EventRow
};
struct Journal {
  std::vector<JournalEntry> entries;
  std::vector<JournalCell> cells[kJournalResolutions];
  std::vector<JournalAudit> audit;
  void Clear() {
    entries.clear();
    for (auto& c : cells) c.clear();
    audit.clear();
  }
};
// Appends the records (JournalRecords) `in` to `*j`. False if `in` is malformed (then `*j`
// may hold part of it). The states and sums are checked when they are read.
bool AppendJournal(std::string_view in, Journal* j);
// Which records AppendJournal keeps (a reader that needs a few of many decodes the rest without
// storing it); an empty function keeps every record of its kind.
struct JournalFilter {
  bool entries = true;
  std::function<bool(const JournalAudit&)> audit;
  std::function<bool(int resolution, const JournalCell&)> cell;
};
bool AppendJournal(std::string_view in, Journal* j, const JournalFilter& keep);

// ---- event feed ----
std::string OutboxKey(uint64_t first_seq);
std::optional<uint64_t> DecodeOutboxKey(std::string_view key);  // nullopt if not one
std::string FeedStateKey();
std::string StoreIdKey();
struct FeedState {
  uint64_t shipped_through = 0;  // every outbox event with a seq <= this is shipped
  uint64_t backfill_below = 0;   // the backfill ships the raw events with a seq below this
  bool backfill_done = false;
  std::string backfill_after;  // the last raw key the backfill shipped; empty: none yet
};
std::string EncodeFeedState(const FeedState& s);
std::optional<FeedState> DecodeFeedState(std::string_view in);

// ---- raw events ----
inline constexpr size_t kRawKeySize = 24;
std::string RawKey(uint32_t table_id, uint32_t key_id, int64_t t_ms, uint64_t seq);
// The same into a caller's buffer: a scan over every key makes one per key, and a std::string
// of 24 bytes is an allocation each.
using RawKeyBytes = std::array<char, 24>;
void EncodeRawKey(RawKeyBytes& out, uint32_t table_id, uint32_t key_id, int64_t t_ms, uint64_t seq);
void AppendRawKey(std::string& out, uint32_t table_id, uint32_t key_id, int64_t t_ms, uint64_t seq);
// One event of an entry update, as an EventRow holds it.
struct EventValue {
  uint32_t source = 0;
  uint32_t metric = 0;
  uint64_t value = 0;
  uint64_t delta = 0;
  Reason reason = Reason::kIncrement;
};

// Building an EventRow: the header once, then every event of the entry update.
void StartEventRow(std::string& out, uint32_t source_id);
void AppendRowEvent(std::string& out, uint32_t metric_id, uint64_t value, uint64_t delta,
                    Reason reason);

// Reads the events of one EventRow in order (the i-th has sequence key seq + i).
// Not owning: the row's bytes must outlive the reader.
class EventRowReader {
 public:
  explicit EventRowReader(std::string_view row);
  // The next event into `*e`; false at the end of the row or on a malformed one (see ok()).
  // Inline, as RawRowReader::NextIn: a scan of the audit trail calls them once per event.
  bool Next(EventValue* e);
  // False once the row turned out malformed.
  bool ok() const { return ok_; }

 private:
  std::string_view in_;
  uint32_t source_ = 0;
  bool ok_ = true;
};

// How far past its key's time an UpdatesRow reaches: a scan from time t starts at the rows
// keyed from t - kRawRowSpanMs.
inline constexpr int64_t kRawRowSpanMs = 10'000;
// Starting an UpdatesRow keyed (t_ms, seq), then adding entry updates to it in ascending seq.
void StartUpdatesRow(std::string& out);
void AppendUpdate(std::string& out, int64_t key_t_ms, uint64_t key_seq, int64_t t_ms, uint64_t seq,
                  std::string_view event_row);
// Whether a raw row is an EventRow (one entry update, at its key's time) rather than an
// UpdatesRow. Does not validate the row.
inline bool HoldsOneUpdate(std::string_view row) {
  return !(row.size() >= 2 && row[0] == '\0' && row[1] == '\0');
}
struct RawEvent {
  int64_t t_ms = 0;
  uint64_t seq = 0;
  EventValue e;
};
// Reads the events of one raw row (an UpdatesRow or an EventRow), with their times and sequence
// numbers.
// Not owning: the key's and row's bytes must outlive the reader.
class RawRowReader {
 public:
  // REQUIRES: key.size() == kRawKeySize
  RawRowReader(std::string_view key, std::string_view row);
  // The next event into `*e`; false at the end of the row or on a malformed one (see ok()).
  bool Next(RawEvent* e);
  // The next event at a time in [lo, hi): the events of updates outside it are passed over
  // without being decoded (a scan of a range's edges reads rows that reach past them).
  bool NextIn(int64_t lo, int64_t hi, RawEvent* e);
  bool ok() const { return ok_; }

 private:
  bool NextUpdate();
  int64_t key_t_ms_ = 0;
  uint64_t key_seq_ = 0;
  std::string_view updates_;  // of an UpdatesRow: the updates not yet started
  bool multi_ = false;
  std::optional<EventRowReader> update_;
  int64_t t_ms_ = 0;
  uint64_t seq_ = 0;  // of the next event
  bool ok_ = true;
};

inline bool EventRowReader::Next(EventValue* e) {
  if (!ok_ || in_.empty()) return false;
  uint64_t metric = 0;
  if (!GetVarint(&in_, &metric) || metric > UINT32_MAX || !GetVarint(&in_, &e->value) ||
      !GetVarint(&in_, &e->delta) || in_.empty()) {
    ok_ = false;
    return false;
  }
  const auto r = static_cast<uint8_t>(in_[0]);
  in_.remove_prefix(1);
  if (r < 1 || r >= kReasonCount) {
    ok_ = false;
    return false;
  }
  e->source = source_;
  e->metric = static_cast<uint32_t>(metric);
  e->reason = static_cast<Reason>(r);
  return true;
}

inline bool RawRowReader::NextIn(int64_t lo, int64_t hi, RawEvent* e) {
  if (!ok_) return false;
  // An update's events share its time: one outside the range is passed over whole.
  while (t_ms_ < lo || t_ms_ >= hi || !update_->Next(&e->e)) {
    if (!update_->ok() || !multi_ || updates_.empty()) {
      ok_ = update_->ok();
      return false;
    }
    if (!NextUpdate()) {
      ok_ = false;
      return false;
    }
  }
  e->t_ms = t_ms_;
  e->seq = seq_++;
  return true;
}

// ---- gauges ----
// Gauge keys: table, metric, key, bucket, source.
inline constexpr size_t kRollupKeySize = 20;
inline constexpr size_t kRollupBucketOffset = 12;
std::string RollupKey(uint32_t table_id, uint32_t metric_id, uint32_t key_id, uint32_t bucket,
                      uint32_t source_id);
void AppendRollupKey(std::string& out, uint32_t table_id, uint32_t metric_id, uint32_t key_id,
                     uint32_t bucket, uint32_t source_id);
// Prefix up to and including the key id (12 bytes) or the metric id (8 bytes).
std::string RollupPrefix(uint32_t table_id, uint32_t metric_id, uint32_t key_id);
std::string RollupPrefix(uint32_t table_id, uint32_t metric_id);
struct RollupKeyParts {
  uint32_t table = 0, metric = 0, key = 0, bucket = 0, source = 0;
};
RollupKeyParts DecodeRollupKey(const char* p);  // REQUIRES: kRollupKeySize bytes

// The hours of one day of rollup cells, as a query adds them up: `mask` bit h says hour h is
// present, with sums[h]. In memory only.
struct HourRow {
  uint32_t mask = 0;
  uint64_t sums[kHoursPerRow] = {};
  void Add(uint32_t hour_of_day, uint64_t sum) {  // REQUIRES: hour_of_day < kHoursPerRow
    mask |= uint32_t{1} << hour_of_day;
    sums[hour_of_day] += sum;
  }
};
inline constexpr size_t kGaugeValueSize = 16;
std::string EncodeGauge(int64_t last, int64_t max);

}  // namespace stickmeter::tsdb::format
