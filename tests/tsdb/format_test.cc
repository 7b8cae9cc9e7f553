// The persisted encodings round-trip, sort in time order and reject truncated input.
#include "tsdb/format.h"

#include <gtest/gtest.h>

#include <limits>

namespace stickmeter::tsdb::format {
namespace {

TEST(FormatTest, VarintRoundTripsAndRejectsTruncation) {
  for (uint64_t v :
       {uint64_t{0}, uint64_t{1}, uint64_t{127}, uint64_t{128}, uint64_t{16383}, uint64_t{16384},
        uint64_t{1} << 32, uint64_t{1} << 63, std::numeric_limits<uint64_t>::max()}) {
    std::string s;
    PutVarint(s, v);
    std::string_view in(s);
    uint64_t got = 1;
    ASSERT_TRUE(GetVarint(&in, &got));
    EXPECT_EQ(v, got);
    EXPECT_TRUE(in.empty());
    std::string_view cut(s.data(), s.size() - 1);
    if (!cut.empty()) {
      EXPECT_FALSE(GetVarint(&cut, &got));
    }
  }
}

TEST(FormatTest, VarintRejectsMoreThan64BitsAndLeavesItsInput) {
  std::string past(9, '\x80');
  past.push_back('\x02');  // a 64th bit and a 65th
  std::string_view in(past);
  uint64_t got = 7;
  EXPECT_FALSE(GetVarint(&in, &got));
  EXPECT_EQ(past.size(), in.size());
  EXPECT_EQ(7u, got);
  const std::string endless(11, '\xff');
  in = endless;
  EXPECT_FALSE(GetVarint(&in, &got));
  // Two in a row: each read leaves the next one's first byte.
  std::string two;
  PutVarint(two, 300);
  PutVarint(two, 5);
  in = two;
  ASSERT_TRUE(GetVarint(&in, &got));
  EXPECT_EQ(300u, got);
  ASSERT_TRUE(GetVarint(&in, &got));
  EXPECT_EQ(5u, got);
  EXPECT_TRUE(in.empty());
}

TEST(FormatTest, EntryStatesRoundTripAndRejectMalformedOnes) {
  const MetricState states[] = {{1, SeriesValue{uint64_t{1} << 40, -5, 77, 9}},
                                {4, SeriesValue{0, 1'790'000'000'000, UINT64_MAX, UINT32_MAX}},
                                {UINT32_MAX, SeriesValue{3, 0, 0, 0}}};
  std::string s;
  AppendEntryState(s, states, 3);
  std::vector<MetricState> got{{9, {}}};  // replaced, not appended to
  ASSERT_TRUE(DecodeEntryState(s, &got));
  ASSERT_EQ(3u, got.size());
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(states[i].metric, got[i].metric);
    EXPECT_EQ(states[i].v.last, got[i].v.last);
    EXPECT_EQ(states[i].v.last_ms, got[i].v.last_ms);
    EXPECT_EQ(states[i].v.connection_id, got[i].v.connection_id);
    EXPECT_EQ(states[i].v.epoch, got[i].v.epoch);
  }
  EXPECT_FALSE(DecodeEntryState("", &got));                                        // no state
  EXPECT_FALSE(DecodeEntryState(std::string_view(s.data(), s.size() - 1), &got));  // cut
  std::string twice;
  AppendEntryState(twice, states, 1);
  AppendEntryState(twice, states, 1);
  EXPECT_FALSE(DecodeEntryState(twice, &got));  // metric ids must ascend

  const EntryId id{7, 8, 9};
  std::string k;
  AppendEntryKey(k, id);
  ASSERT_EQ(kEntryKeySize, k.size());
  EXPECT_EQ(id, DecodeEntryKey(k.data()));
}

TEST(FormatTest, SumsAddSlotBySlotAndRejectMalformedOnes) {
  std::string a, b, out;
  AppendSum(a, 1, 10);
  AppendSum(a, HourSlot(2, 23), std::numeric_limits<uint64_t>::max() - 5);
  AppendSum(b, 0, 3);
  AppendSum(b, 1, 5);
  AppendSum(b, HourSlot(2, 23), 5);
  AppendSum(b, HourSlot(3, 0), 7);
  ASSERT_TRUE(AddSums(a, b, &out));
  std::vector<std::pair<uint32_t, uint64_t>> got;
  SumsReader r(out);
  uint32_t slot = 0;
  uint64_t sum = 0;
  while (r.Next(&slot, &sum)) got.emplace_back(slot, sum);
  EXPECT_TRUE(r.ok());
  const std::vector<std::pair<uint32_t, uint64_t>> want = {
      {0, 3}, {1, 15}, {71, std::numeric_limits<uint64_t>::max()}, {72, 7}};
  EXPECT_EQ(want, got);
  EXPECT_EQ(2 * 24 + 23u, HourSlot(2, 23));

  std::string unordered;
  AppendSum(unordered, 2, 1);
  AppendSum(unordered, 2, 1);
  EXPECT_FALSE(AddSums(unordered, b, &out));                                 // repeated
  EXPECT_FALSE(AddSums(a, std::string_view(b.data(), b.size() - 1), &out));  // cut
  EXPECT_FALSE(AddSums("", b, &out));                                        // empty
  std::string wide;
  PutVarint(wide, uint64_t{1} << 32);
  PutVarint(wide, 1);
  EXPECT_FALSE(AddSums(wide, b, &out));  // a slot beyond 32 bits

  // Rollup keys sort by table, key, bucket, source.
  std::string k1, k2;
  AppendEntryRollupKey(k1, 1, 1, 255, 9);
  AppendEntryRollupKey(k2, 1, 1, 256, 0);
  EXPECT_LT(k1, k2);
  const auto parts = DecodeEntryRollupKey(k1.data());
  EXPECT_EQ(std::tie(parts.table, parts.key, parts.bucket, parts.source),
            std::make_tuple(1u, 1u, 255u, 9u));
  EXPECT_EQ(k1.substr(0, 8), EntryRollupPrefix(1, 1));
  EXPECT_EQ(k1.substr(0, 4), EntryRollupPrefix(1));
}

TEST(FormatTest, JournalRowsRoundTripAppendAndRejectMalformedOnes) {
  EXPECT_EQ(JournalKey(42), std::string("J") + std::string(7, '\0') + '*');
  EXPECT_EQ(42u, DecodeJournalKey(JournalKey(42)));
  EXPECT_FALSE(DecodeJournalKey("J42"));

  const MetricState states[] = {{1, SeriesValue{5, 6, 7, 8}}};
  std::string state, sums, row;
  AppendEntryState(state, states, 1);
  AppendSum(sums, 1, 12);
  AppendJournalEntry(row, EntryId{1, 2, 3}, state);
  for (int r = 0; r < kJournalResolutions; ++r) {
    AppendJournalCell(row, r, 2, 3, 29'833'333 + static_cast<uint32_t>(r), UINT32_MAX, sums);
  }
  std::string events;
  StartEventRow(events, 1);
  AppendRowEvent(events, 4, 100, 10, Reason::kIncrement);
  AppendJournalAudit(row, 2, 3, 1'790'000'000'123, uint64_t{1} << 40, events);
  // Appending two rows gives the records of both, in order: how the applier gathers groups.
  Journal got;
  ASSERT_TRUE(AppendJournal(row, &got));
  ASSERT_TRUE(AppendJournal(row, &got));
  ASSERT_EQ(2u, got.entries.size());
  for (const auto& e : got.entries) {
    EXPECT_EQ((EntryId{1, 2, 3}), e.id);
    EXPECT_EQ(state, e.state);
  }
  for (int r = 0; r < kJournalResolutions; ++r) {
    ASSERT_EQ(2u, got.cells[r].size()) << r;
    for (const auto& c : got.cells[r]) {
      EXPECT_EQ(std::make_tuple(2u, 3u, 29'833'333u + static_cast<uint32_t>(r), UINT32_MAX),
                std::tie(c.table, c.key, c.bucket, c.source));
      EXPECT_EQ(sums, c.sums);
    }
  }
  ASSERT_EQ(2u, got.audit.size());
  for (const auto& a : got.audit) {
    EXPECT_EQ(std::make_tuple(2u, 3u, int64_t{1'790'000'000'123}, uint64_t{1} << 40),
              std::tie(a.table, a.key, a.t_ms, a.seq));
    EXPECT_EQ(events, a.row);
  }
  Journal scratch;
  EXPECT_FALSE(AppendJournal(std::string_view(row.data(), row.size() - 1), &scratch));  // cut
  scratch.Clear();
  EXPECT_FALSE(AppendJournal(row + "\x05", &scratch));  // an unknown record
  scratch.Clear();
  std::string empty_state;
  AppendJournalEntry(empty_state, EntryId{1, 2, 3}, "");
  EXPECT_FALSE(AppendJournal(empty_state, &scratch));
  std::string wide;  // an id beyond 32 bits
  wide.push_back('\0');
  PutVarint(wide, uint64_t{1} << 32);
  wide.append("\x01\x01\x01x", 4);
  scratch.Clear();
  EXPECT_FALSE(AppendJournal(wide, &scratch));
  // The same bytes with a 32-bit id are a valid row: the rejection above is the id's width.
  std::string narrow;
  narrow.push_back('\0');
  PutVarint(narrow, 7);
  narrow.append("\x01\x01\x01x", 4);
  scratch.Clear();
  ASSERT_TRUE(AppendJournal(narrow, &scratch));
  EXPECT_EQ(7u, scratch.entries.at(0).id.source);
}

// A journal row holds the records of several partitions as chunks.
TEST(FormatTest, JournalChunksSplitBackAndRejectMalformedOnes) {
  std::string a, b;
  AppendJournalEntry(a, EntryId{1, 2, 3}, "\x01\x02\x03\x04\x05");
  AppendJournalAudit(b, 2, 40, 1'790'000'000'123, 9, "\x00\x01\x02\x03\x04\x04");
  std::string row;
  AppendJournalChunk(row, 3, a);
  AppendJournalChunk(row, 1023, b);
  std::vector<JournalChunk> chunks;
  ASSERT_TRUE(SplitJournalRow(row, &chunks));
  ASSERT_EQ(2u, chunks.size());
  EXPECT_EQ(3u, chunks[0].partition);
  EXPECT_EQ(a, chunks[0].records);
  EXPECT_EQ(1023u, chunks[1].partition);
  EXPECT_EQ(b, chunks[1].records);

  EXPECT_FALSE(SplitJournalRow("", &chunks));
  EXPECT_FALSE(SplitJournalRow(a + b, &chunks));  // records without a chunk header
  EXPECT_FALSE(SplitJournalRow(std::string_view(row.data(), row.size() - 1), &chunks));  // cut
  EXPECT_FALSE(SplitJournalRow(row + a, &chunks));  // records after the chunks
  std::string empty_chunk("\x05\x01\x00", 3);
  EXPECT_FALSE(SplitJournalRow(empty_chunk, &chunks));

  EXPECT_EQ(std::optional<uint32_t>(1023), DecodeAppliedKey(AppliedKey(1023)));
  EXPECT_EQ(std::nullopt, DecodeAppliedKey(JournalKey(1023)));
}

TEST(FormatTest, EventRowsHoldEveryEventOfAnEntryUpdate) {
  std::string row;
  StartEventRow(row, 7);
  AppendRowEvent(row, 3, uint64_t{1} << 40, 12345, Reason::kWrap);
  AppendRowEvent(row, 4, 9, 9, Reason::kFirst);
  EventRowReader reader(row);
  EventValue e;
  ASSERT_TRUE(reader.Next(&e));
  EXPECT_EQ(7u, e.source);
  EXPECT_EQ(3u, e.metric);
  EXPECT_EQ(uint64_t{1} << 40, e.value);
  EXPECT_EQ(12345u, e.delta);
  EXPECT_EQ(Reason::kWrap, e.reason);
  ASSERT_TRUE(reader.Next(&e));
  EXPECT_EQ(7u, e.source);
  EXPECT_EQ(4u, e.metric);
  EXPECT_EQ(Reason::kFirst, e.reason);
  EXPECT_FALSE(reader.Next(&e));
  EXPECT_TRUE(reader.ok());

  // Malformed rows: truncated, unknown reason, a header without events, source 0, empty, and
  // events without the 0x00 header.
  std::string unknown_reason = row;
  unknown_reason.back() = 9;
  for (const std::string& bad : {row.substr(0, row.size() - 1), unknown_reason, row.substr(0, 2),
                                 std::string("\0\0", 2), std::string(), row.substr(1)}) {
    EventRowReader r(bad);
    while (r.Next(&e)) {
    }
    EXPECT_FALSE(r.ok()) << bad.size();
  }
}

// Reads `row` keyed (t_ms, seq) as "t seq source metric delta" lines, then "ok" or "bad".
std::string RenderRawRow(int64_t t_ms, uint64_t seq, const std::string& row) {
  const std::string key = RawKey(1, 2, t_ms, seq);
  RawRowReader reader(key, row);
  RawEvent e;
  std::string out;
  while (reader.Next(&e)) {
    out += std::to_string(e.t_ms) + " " + std::to_string(e.seq) + " " + std::to_string(e.e.source) +
           " " + std::to_string(e.e.metric) + " " + std::to_string(e.e.delta) + "\n";
  }
  return out + (reader.ok() ? "ok" : "bad");
}

TEST(FormatTest, UpdatesRowsHoldSeveralEntryUpdatesOfAKey) {
  std::string a, b;
  StartEventRow(a, 7);
  AppendRowEvent(a, 3, 50, 5, Reason::kIncrement);
  AppendRowEvent(a, 4, 60, 6, Reason::kIncrement);
  StartEventRow(b, 8);
  AppendRowEvent(b, 3, 70, 7, Reason::kFirst);
  std::string row;
  StartUpdatesRow(row);
  AppendUpdate(row, 1000, 40, 1000, 40, a);    // two events: seqs 40, 41
  AppendUpdate(row, 1000, 40, 1000, 42, b);    // the same time
  AppendUpdate(row, 1000, 40, 10'999, 90, a);  // the last ms of the row's span
  EXPECT_EQ("1000 40 7 3 5\n1000 41 7 4 6\n1000 42 8 3 7\n10999 90 7 3 5\n10999 91 7 4 6\nok",
            RenderRawRow(1000, 40, row));
  // A row of one entry update (an EventRow alone) reads the same way.
  EXPECT_EQ("1000 40 7 3 5\n1000 41 7 4 6\nok", RenderRawRow(1000, 40, a));
  // NextIn: the events of the updates inside [lo, hi) only, with their own sequence numbers.
  auto render_in = [](const std::string& r, int64_t lo, int64_t hi) {
    const std::string key = RawKey(1, 2, 1000, 40);
    RawRowReader reader(key, r);
    RawEvent e;
    std::string out;
    while (reader.NextIn(lo, hi, &e)) {
      out += std::to_string(e.t_ms) + " " + std::to_string(e.seq) + " " +
             std::to_string(e.e.delta) + "\n";
    }
    return out + (reader.ok() ? "ok" : "bad");
  };
  EXPECT_EQ("10999 90 5\n10999 91 6\nok", render_in(row, 1001, 20'000));
  EXPECT_EQ("1000 40 5\n1000 41 6\n1000 42 7\nok", render_in(row, 0, 10'999));
  EXPECT_EQ("ok", render_in(row, 2000, 10'000));
  EXPECT_EQ("ok", render_in(a, 1001, 2000));  // one update, outside: nothing decoded
  EXPECT_EQ("1000 40 5\n1000 41 6\nok", render_in(a, 1000, 1001));
  // Read as a single EventRow, an updates row has source 0: rejected, never misread.
  EventRowReader old(row);
  EventValue ev;
  EXPECT_FALSE(old.Next(&ev));
  EXPECT_FALSE(old.ok());

  // Malformed: an update past the span, one whose seq goes back into the previous one's
  // events, a first update not keyed by itself, a cut row, an empty update list.
  auto with = [&](int64_t t, uint64_t seq) {
    std::string r;
    StartUpdatesRow(r);
    AppendUpdate(r, 1000, 40, 1000, 40, a);
    AppendUpdate(r, 1000, 40, t, seq, b);
    return r;
  };
  EXPECT_EQ("1000 40 7 3 5\n1000 41 7 4 6\nbad", RenderRawRow(1000, 40, with(11'000, 42)));
  EXPECT_EQ("1000 40 7 3 5\n1000 41 7 4 6\nbad", RenderRawRow(1000, 40, with(1000, 41)));
  std::string not_first;
  StartUpdatesRow(not_first);
  AppendUpdate(not_first, 1000, 40, 1000, 41, a);
  EXPECT_EQ("bad", RenderRawRow(1000, 40, not_first));
  EXPECT_EQ("1000 40 7 3 5\n1000 41 7 4 6\n1000 42 8 3 7\nbad",
            RenderRawRow(1000, 40, row.substr(0, row.size() - 1)));
  EXPECT_EQ("bad", RenderRawRow(1000, 40, std::string(2, '\0')));
}

TEST(FormatTest, KeysSortInTimeOrder) {
  EXPECT_LT(RawKey(1, 2, 999, 5), RawKey(1, 2, 1000, 0));
  EXPECT_LT(RawKey(1, 2, 1000, 0), RawKey(1, 2, 1000, 1));
  EXPECT_LT(RawKey(1, 2, 1LL << 40, 0), RawKey(1, 3, 0, 0));
  EXPECT_LT(RollupKey(1, 1, 1, 255, 9), RollupKey(1, 1, 1, 256, 0));
  const auto parts = DecodeRollupKey(RollupKey(1, 2, 3, 4, 5).data());
  EXPECT_EQ(3u, parts.key);
  EXPECT_EQ(4u, parts.bucket);
  EXPECT_EQ(5u, parts.source);
}

TEST(FormatTest, TableRoundTrip) {
  TableValue t{"ipv6", 16, 600000, {"gpc", "http_req_cnt"}};
  auto d = DecodeTable(EncodeTable(t));
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ("ipv6", d->key_type);
  EXPECT_EQ(16u, d->key_size);
  EXPECT_EQ(600000u, d->expire_ms);
  EXPECT_EQ(t.data_types, d->data_types);
  EXPECT_FALSE(DecodeTable(EncodeTable(t) + "x").has_value());
}

}  // namespace
}  // namespace stickmeter::tsdb::format
