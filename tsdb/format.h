// The persisted format of a stickmeter store: every key layout and value encoding, in one place.
//
// Pure functions and constants, no state; thread-safe. Anything written here is on users' disks:
// never renumber an enum, never reuse a tag byte, and bump kFormatVersion for any change that an
// older build could misread.
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
//   column family "series" (delta-engine state, one row per counter series):
//     source_id:id table_id:id key_id:id metric_id:id -> SeriesValue
//   column family "raw" (the audit trail, one row per entry update with a non-zero delta):
//     table_id:id key_id:id t_ms:u64 seq:u64         -> EventRow (v2) or EventValue (v1)
//   column families "r1m", "r1d" (counter rollups, merge operator "stickmeter.u64add"):
//     table_id:id metric_id:id key_id:id bucket:u32 source_id:id -> u64 (fixed LE)
//     bucket = t_ms / resolution (minutes or days since the Unix epoch, UTC)
//   column family "r1h24" (hour rollups, a day of them per row, merge operator
//   "stickmeter.hourrow"):
//     table_id:id metric_id:id key_id:id day:u32 source_id:id -> HourRow
//   column family "r1h" (v1 and v2 hour rollups, one hour per row; read, then migrated):
//     table_id:id metric_id:id key_id:id hour:u32 source_id:id -> u64 (fixed LE)
//   column family "gauge" (gauge samples per minute, merge operator "stickmeter.gauge"):
//     table_id:id metric_id:id key_id:id minute:u32 source_id:id -> i64 last, i64 max (fixed LE)
//
//   TableValue  = varint len, key_type | varint key_size | varint expire_ms |
//                 varint n, n x (varint len, data_type)
//   SeriesValue = u64 last | i64 last_ms | u64 connection_id | u32 epoch  (fixed LE, 28 bytes)
//   HourRow     = u32 mask (fixed LE; bit h set: hour h of the day is present, h < 24) |
//                 one varint sum of deltas per set bit, lowest hour first
//   EventRow    = 0x00 | varint source_id | n >= 1 x (varint metric_id | varint value |
//                 varint delta | u8 Reason)        the i-th event's sequence number is seq + i
//   JournalRow  = varint n, n x (varint source_id | varint table_id | varint key_id |
//                 varint metric_id | SeriesValue) |
//                 3 x (varint m, m x (varint table_id | varint metric_id | varint key_id |
//                 varint bucket | varint source_id | varint sum))
//                 the cells of the minute, hour and day rollups; bucket = t_ms / resolution
//   EventValue  = varint source_id | varint metric_id | varint value | varint delta | u8 Reason
//                 (v1: one event per row; still read. Source ids start at 1, so its first byte
//                 is never 0x00.)
//
// Keys put the table (and for rollups the metric) first so that the usage of one table+metric
// over a range is a bounded scan, and times are big-endian so that byte order is time order.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace stickmeter::tsdb::format {

// Version 1: one audit row per event (EventValue). Version 2: one audit row per entry update
// (EventRow), which a v1 build would misread; v2 still reads v1 rows. Version 3: hour rollups
// hold a day per row ("r1h24"), so a month of hours is 31 rows, not 744; opening an older store
// for writing moves its "r1h" rows there once, and read-only it is read as it is.
inline constexpr uint32_t kFormatVersion = 3;

inline constexpr char kMetaCf[] = "default";
inline constexpr char kSeriesCf[] = "series";
inline constexpr char kRawCf[] = "raw";
inline constexpr char kMinuteCf[] = "r1m";
inline constexpr char kHourCf[] = "r1h24";
inline constexpr char kHourCfV2[] = "r1h";
inline constexpr char kDayCf[] = "r1d";
inline constexpr char kGaugeCf[] = "gauge";

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

// Kinds of interned names. Never renumber.
enum class NameKind : uint8_t { kSource = 1, kTable = 2, kMetric = 3, kKey = 4 };

// How a metric is stored. Never renumber.
enum class MetricClass : uint8_t { kCounter32 = 1, kCounter64 = 2, kGauge = 3 };

// Why a delta was recorded (CONTRACT §2 rules 1-6). Never renumber.
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
// Reads a varint at `*in`, advancing it. False on truncation or overflow.
bool GetVarint(std::string_view* in, uint64_t* v);

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

// ---- series state ----
struct SeriesId {
  uint32_t source = 0, table = 0, key = 0, metric = 0;
  bool operator==(const SeriesId&) const = default;
};
struct SeriesValue {
  uint64_t last = 0;
  int64_t last_ms = 0;
  uint64_t connection_id = 0;
  uint32_t epoch = 0;
};
inline constexpr size_t kSeriesKeySize = 16;
inline constexpr size_t kSeriesValueSize = 28;
std::string SeriesKey(const SeriesId& id);
// The Append* forms write the same bytes at the end of `out` (a reused buffer: no allocation).
void AppendSeriesKey(std::string& out, const SeriesId& id);
void AppendSeries(std::string& out, const SeriesValue& v);
SeriesId DecodeSeriesKey(const char* p);  // REQUIRES: kSeriesKeySize bytes
std::string EncodeSeries(const SeriesValue& v);
SeriesValue DecodeSeries(const char* p);  // REQUIRES: kSeriesValueSize bytes

// ---- journal ----
std::string JournalKey(uint64_t id);
// The id of a journal key; nullopt if `key` is not one.
std::optional<uint64_t> DecodeJournalKey(std::string_view key);

// One rollup cell of a journal row: the sum of a series' deltas in one bucket of one resolution.
struct JournalCell {
  uint32_t table = 0, metric = 0, key = 0, bucket = 0, source = 0;
  uint64_t sum = 0;
};
inline constexpr int kJournalResolutions = 3;  // minute, hour, day
struct Journal {
  std::vector<std::pair<SeriesId, SeriesValue>> series;
  std::vector<JournalCell> cells[kJournalResolutions];
  void Clear() {
    series.clear();
    for (auto& c : cells) c.clear();
  }
};
void EncodeJournal(const Journal& j, std::string& out);  // appends
// Appends the rows and cells of the journal row `in` to `*j`. False if `in` is malformed (then
// `*j` may hold part of it).
bool AppendJournal(std::string_view in, Journal* j);

// ---- raw events ----
inline constexpr size_t kRawKeySize = 24;
std::string RawKey(uint32_t table_id, uint32_t key_id, int64_t t_ms, uint64_t seq);
void AppendRawKey(std::string& out, uint32_t table_id, uint32_t key_id, int64_t t_ms, uint64_t seq);
struct EventValue {
  uint32_t source = 0;
  uint32_t metric = 0;
  uint64_t value = 0;
  uint64_t delta = 0;
  Reason reason = Reason::kIncrement;
};
// The v1 layout of one event per row.
std::string EncodeEvent(const EventValue& e);
std::optional<EventValue> DecodeEvent(std::string_view in);

// Building a v2 row: the header once, then every event of the entry update.
void StartEventRow(std::string& out, uint32_t source_id);
void AppendRowEvent(std::string& out, uint32_t metric_id, uint64_t value, uint64_t delta,
                    Reason reason);

// Reads the events of one raw row, v1 or v2, in order (the i-th has sequence key seq + i).
// Not owning: the row's bytes must outlive the reader.
class EventRowReader {
 public:
  explicit EventRowReader(std::string_view row);
  // The next event into `*e`; false at the end of the row or on a malformed one (see ok()).
  bool Next(EventValue* e);
  // False once the row turned out malformed.
  bool ok() const { return ok_; }

 private:
  std::string_view in_;
  uint32_t source_ = 0;
  bool v1_ = false;
  bool ok_ = true;
};

// ---- rollups and gauges ----
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

// The hours of one day of one rollup row: `mask` bit h says hour h is present, with sums[h].
inline constexpr uint32_t kHoursPerRow = 24;
struct HourRow {
  uint32_t mask = 0;
  uint64_t sums[kHoursPerRow] = {};
  void Add(uint32_t hour_of_day, uint64_t sum) {  // REQUIRES: hour_of_day < kHoursPerRow
    mask |= uint32_t{1} << hour_of_day;
    sums[hour_of_day] += sum;
  }
};
void EncodeHourRow(const HourRow& row, std::string& out);  // appends
// A row of one hour, as the writer's merge operands are.
void EncodeHourCell(uint32_t hour_of_day, uint64_t sum, std::string& out);  // appends
// Adds the row in `in` to `*row`. False, with `*row` unspecified, if `in` is malformed.
bool AddHourRow(std::string_view in, HourRow* row);

inline constexpr size_t kGaugeValueSize = 16;
std::string EncodeGauge(int64_t last, int64_t max);

}  // namespace stickmeter::tsdb::format
