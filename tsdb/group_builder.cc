#include "tsdb/group_builder.h"

#include <algorithm>
#include <optional>
#include <tuple>

#include "tsdb/delta.h"
#include "tsdb/feed_reader.h"
#include "tsdb/query_plan.h"

namespace stickmeter::tsdb {

using format::MetricClass;
using format::NameKind;
using format::Reason;

GroupBuilder::GroupBuilder(const StoreOptions& options, Catalog& catalog, EntryTable& entries,
                           MetricsRegistry& metrics)
    : expiry_margin_ms_(options.expiry_margin_ms),
      feed_on_(options.event_feed),
      repeat_window_(
          std::max(std::chrono::milliseconds(options.apply_delay_ms), config::kMinRepeatWindow)),
      catalog_(catalog),
      entries_(entries),
      updates_received_(metrics.GetCounter("stickmeter_updates_received_total",
                                           "Counter and gauge values received for storage")),
      multi_source_keys_(metrics.GetCounter(
          "stickmeter_multi_source_keys_total",
          "Keys of one table seen from more than one HAProxy node (normal with one peers "
          "section per node: the total is the sum over nodes)")) {
  for (int r = 1; r < format::kReasonCount; ++r) {
    deltas_by_reason_[r] = &metrics.GetCounter(
        "stickmeter_deltas_written_total", "Non-zero deltas committed, by counting rule",
        {{"reason", std::string(format::ReasonName(static_cast<Reason>(r)))}});
  }
}

void GroupBuilder::Clear() {
  next_seq_ = 1;
  // Emptied by every Build already; cleared in case a build stopped half-way.
  pending_.clear();
  pending_sums_.clear();
  raw_.clear();
  raw_bytes_.clear();
  gauge_agg_.clear();
  spilled_ = 0;
  new_entries_in_group_ = 0;
  for (auto& row : journal_rows_) row.clear();
  outbox_buf_.clear();
  feed_stale_ = false;
}

void GroupBuilder::Add(ingest::UpdateBatch& batch, BuiltGroup& built) {
  // A batch of no source only wakes the writer for the coverage rows (Build writes them).
  if (batch.source.empty() && batch.tables.empty() && !batch.source_restarted) return;
  observed_batch_ = static_cast<uint32_t>(built.observed.batches.size());
  const size_t keys_before = observed_keys_.size();
  ApplyBatch(batch, built.wb);
  if (batch_observed_) {
    built.observed.batches.push_back(std::move(batch));
  } else {
    observed_keys_.resize(keys_before);
  }
}

void GroupBuilder::TakeObserved(BuiltGroup& built) {
  // The next group is likely as large: start it with the vectors of one the observer handed
  // back, else with as much room as this one took.
  built.observed.deltas.swap(observed_deltas_);
  built.observed.entry_keys.swap(observed_keys_);
  {
    MutexLock lock(&spare_mu_);
    observed_deltas_.swap(spare_deltas_);
    observed_keys_.swap(spare_keys_);
  }
  observed_deltas_.reserve(built.observed.deltas.size());
  observed_keys_.reserve(built.observed.entry_keys.size());
}

void GroupBuilder::Recycle(CommittedGroup group) {
  group.deltas.clear();
  group.entry_keys.clear();
  MutexLock lock(&spare_mu_);
  if (spare_deltas_.capacity() < group.deltas.capacity()) spare_deltas_.swap(group.deltas);
  if (spare_keys_.capacity() < group.entry_keys.capacity()) spare_keys_.swap(group.entry_keys);
}

uint32_t GroupBuilder::Intern(NameKind kind, std::string_view name, rocksdb::WriteBatch& wb) {
  auto [id, fresh] = catalog_.names.Intern(kind, name);
  if (fresh) {
    std::string v;
    format::PutU32BE(v, id);
    wb.Put(db_->cf(kMeta), format::NameKey(kind, name), v);
  }
  return id;
}

TableMeta* GroupBuilder::AddTable(const ingest::TableInfo& info, uint32_t table, uint32_t source,
                                  rocksdb::WriteBatch& wb, bool* observed) {
  TableMeta* meta = catalog_.Table(table);
  if (catalog_.SetInfo(meta, format::TableValue{info.key_type, info.key_size, info.expire_ms,
                                                info.data_types})) {
    wb.Put(db_->cf(kMeta), format::TableKey(table), format::EncodeTable(meta->info));
  }
  if (catalog_.AddSource(meta, source)) {
    wb.Put(db_->cf(kMeta), format::TableSourceKey(table, source), "");
  }
  if (meta->observed < 0) meta->observed = observer_ != nullptr && observer_->Observes(info.name);
  *observed = meta->observed > 0;
  return meta;
}

const GroupBuilder::MetricSlot& GroupBuilder::SlotOf(const ingest::MetricValue& mv, TableMeta* meta,
                                                     uint32_t table, rocksdb::WriteBatch& wb) {
  for (const auto& s : slots_) {
    if (s.kind == mv.kind && s.name == mv.metric) return s;
  }
  const uint32_t metric = Intern(NameKind::kMetric, mv.metric, wb);
  const MetricClass cls = mv.kind == ingest::MetricKind::kGauge       ? MetricClass::kGauge
                          : mv.kind == ingest::MetricKind::kCounter64 ? MetricClass::kCounter64
                                                                      : MetricClass::kCounter32;
  if (catalog_.SetMetric(meta, metric, cls)) {
    wb.Put(db_->cf(kMeta), format::MetricKey(table, metric),
           std::string(1, static_cast<char>(cls)));
  }
  return slots_.emplace_back(MetricSlot{mv.metric, mv.kind, metric, cls});
}

void GroupBuilder::WidenPending(uint32_t pending_index, size_t width, const uint32_t* buckets) {
  SpillCells(pending_index, /*all=*/true, buckets);
  PendingEntry& p = pending_[pending_index];
  p.has_cells = false;
  p.sums = static_cast<uint32_t>(pending_sums_.size());
  p.sums_width = static_cast<uint32_t>(width);
  pending_sums_.resize(pending_sums_.size() + 3 * p.sums_width, 0);
}

void GroupBuilder::SpillCells(uint32_t pending_index, bool all, const uint32_t* buckets) {
  PendingEntry& p = pending_[pending_index];
  if (!p.has_cells) return;
  const format::EntryId& id = p.entry->first;
  std::string& row = journal_rows_[JournalPartition(id.table, id.key)];
  uint64_t* sums = pending_sums_.data() + p.sums;
  for (int r = 0; r < format::kJournalResolutions; ++r) {
    if (!all && p.bucket[r] == buckets[r]) continue;
    AppendCell(row, id, p.entry->second.metrics, sums, p.sums_width, r, p.bucket[r]);
    ++spilled_;
    for (uint32_t m = 0; m < p.sums_width; ++m) sums[m * 3 + r] = 0;
  }
}

void GroupBuilder::AppendCell(std::string& row, const format::EntryId& id,
                              const std::vector<format::MetricState>& metrics, const uint64_t* sums,
                              size_t width, int r, uint32_t bucket) {
  sums_buf_.clear();
  for (size_t m = 0; m < width; ++m) {
    const uint64_t v = sums[m * 3 + r];
    if (v == 0) continue;
    const uint32_t metric = metrics[m].metric;
    format::AppendSum(sums_buf_,
                      r == 1 ? format::HourSlot(metric, bucket % format::kHoursPerRow) : metric, v);
  }
  if (sums_buf_.empty()) return;
  format::AppendJournalCell(row, r, id.table, id.key,
                            r == 1 ? bucket / format::kHoursPerRow : bucket, id.source, sums_buf_);
}

EntryTable::Entry* GroupBuilder::FindEntry(uint32_t source, uint32_t table, uint32_t key,
                                           TableMeta* meta) {
  auto [entry, fresh] = entries_.Add(format::EntryId{source, table, key});
  if (fresh) {
    ++new_entries_in_group_;
    if (entries_.AddKeySource(table, key, source)) {
      multi_source_keys_.Inc();
      catalog_.CountMultiSourceKey(meta);
    }
  }
  return entry;
}

void GroupBuilder::AddPending(EntryTable::Entry* entry) {
  LiveEntry& live = entry->second;
  live.pending = static_cast<uint32_t>(pending_.size());
  const auto width = static_cast<uint32_t>(live.metrics.size());
  pending_.push_back(
      PendingEntry{entry, false, {}, static_cast<uint32_t>(pending_sums_.size()), width});
  pending_sums_.resize(pending_sums_.size() + 3 * width, 0);
  ++window_touches_;
  if (live.window != window_) {
    live.window = window_;
    ++window_entries_;
  }
}

// The hot path of the write side: runs once per counter and gauge value (millions a second),
// so the per-value steps stay in one function the compiler sees whole; the rarer steps (a new
// table, metric or series, interning) are out of line.
void GroupBuilder::ApplyBatch(const ingest::UpdateBatch& batch, rocksdb::WriteBatch& wb) {
  const uint32_t source = Intern(NameKind::kSource, batch.source, wb);
  batch_observed_ = observer_ != nullptr && batch.source_restarted;
  uint32_t& epoch = entries_.Epoch(source);
  if (batch.source_restarted) {
    ++epoch;
    std::string v;
    format::PutFixed32LE(v, epoch);
    format::PutFixed64LE(v, static_cast<uint64_t>(batch.restart_ms));
    wb.Put(db_->cf(kMeta), format::EpochKey(source), v);
    if (coverage_ != nullptr) coverage_->Resync(batch.source, batch.restart_ms);
  }
  uint64_t received = 0, deltas = 0;
  uint64_t by_reason[format::kReasonCount] = {};
  for (const auto& tu : batch.tables) {
    if (!tu.table) continue;
    const ingest::TableInfo& info = *tu.table;
    const uint32_t table = Intern(NameKind::kTable, info.name, wb);
    bool observed = false;
    TableMeta* meta = AddTable(info, table, source, wb, &observed);
    batch_observed_ |= observed;
    slots_.clear();
    for (const auto& entry : tu.entries) {
      key_name_.clear();
      format::PutU32BE(key_name_, table);
      key_name_.append(entry.key);
      const uint32_t key = Intern(NameKind::kKey, key_name_, wb);
      if (observer_ != nullptr) observed_keys_.push_back(key);
      const int64_t t = entry.received_ms;
      if (t > latest_received_ms_.load(std::memory_order_relaxed)) {
        latest_received_ms_.store(t, std::memory_order_relaxed);
      }
      const uint32_t buckets[3] = {
          static_cast<uint32_t>(FloorTo(t, format::kMinuteMs) / format::kMinuteMs),
          static_cast<uint32_t>(FloorTo(t, format::kHourMs) / format::kHourMs),
          static_cast<uint32_t>(FloorTo(t, format::kDayMs) / format::kDayMs)};
      // This entry update's audit row, started at its first non-zero delta.
      const size_t row_offset = raw_bytes_.size();
      const uint64_t row_seq = next_seq_;
      // The entry's state, looked up at its first counter value.
      EntryTable::Entry* live_entry = nullptr;
      for (const auto& mv : entry.values) {
        ++received;
        const MetricSlot& slot = SlotOf(mv, meta, table, wb);
        const uint32_t metric = slot.id;
        if (slot.cls == MetricClass::kGauge) {
          const auto g = static_cast<int64_t>(mv.value);
          auto [git, fresh] =
              gauge_agg_.try_emplace(AggKey{table, metric, key, buckets[0], source}, g, g);
          if (!fresh) {
            git->second.first = g;
            git->second.second = std::max(git->second.second, g);
          }
          continue;
        }
        if (live_entry == nullptr) live_entry = FindEntry(source, table, key, meta);
        LiveEntry& live = live_entry->second;
        auto& states = live.metrics;
        size_t m = 0;
        while (m < states.size() && states[m].metric < metric) ++m;
        std::optional<format::SeriesValue> prev;
        if (m < states.size() && states[m].metric == metric) {
          prev = states[m].v;
        } else {
          // A series first seen: the pending sums are laid out by metric index, so the open
          // cells go out before the index shifts, and the entry gets a wider region.
          if (live.pending != LiveEntry::kClean) {
            WidenPending(live.pending, states.size() + 1, buckets);
          }
          states.insert(states.begin() + static_cast<ptrdiff_t>(m),
                        format::MetricState{metric, {}});
          entries_.CountNewSeries();
        }
        const DeltaResult d = ComputeDelta(
            prev, DeltaInput{mv.value, slot.cls == MetricClass::kCounter32, t, batch.connection_id,
                             epoch, info.expire_ms, expiry_margin_ms_});
        states[m].v = d.next;
        if (live.pending == LiveEntry::kClean) AddPending(live_entry);
        if (d.delta == 0) continue;
        if (next_seq_ == row_seq) format::StartEventRow(raw_bytes_, source);
        format::AppendRowEvent(raw_bytes_, metric, mv.value, d.delta, d.reason);
        ++next_seq_;
        {
          PendingEntry& p = pending_[live.pending];
          // A new hour or day is always a new minute too.
          if (p.has_cells && p.bucket[0] != buckets[0]) {
            SpillCells(live.pending, /*all=*/false, buckets);
          }
          p.bucket[0] = buckets[0];
          p.bucket[1] = buckets[1];
          p.bucket[2] = buckets[2];
          p.has_cells = true;
          pending_sums_[p.sums + m * 3 + 0] += d.delta;
          pending_sums_[p.sums + m * 3 + 1] += d.delta;
          pending_sums_[p.sums + m * 3 + 2] += d.delta;
        }
        ++by_reason[static_cast<int>(d.reason)];
        ++deltas;
        if (observed) {
          observed_deltas_.push_back(
              CommittedDelta{observed_batch_, static_cast<uint32_t>(&tu - batch.tables.data()),
                             static_cast<uint32_t>(&entry - tu.entries.data()),
                             static_cast<uint32_t>(&mv - entry.values.data()), key, d.delta});
        }
      }
      if (next_seq_ != row_seq) {
        raw_.push_back(RawRow{table, key, t, row_seq, static_cast<uint32_t>(row_offset),
                              static_cast<uint32_t>(raw_bytes_.size() - row_offset)});
      }
    }
  }
  for (int r = 1; r < format::kReasonCount; ++r) {
    if (by_reason[r] > 0) deltas_by_reason_[r]->Inc(by_reason[r]);
  }
  stat_deltas_.fetch_add(deltas, std::memory_order_relaxed);
  updates_received_.Inc(received);
  stat_updates_.fetch_add(received, std::memory_order_relaxed);
  // Once per batch, not per value: the source's last seen time (entries arrive in order).
  if (coverage_ != nullptr && !batch.tables.empty() && !batch.tables.back().entries.empty()) {
    coverage_->Alive(batch.source, batch.tables.back().entries.back().received_ms);
  }
}

bool GroupBuilder::WantsDirect() {
  // Nothing to write but catalog and coverage rows: never wait for the journal to drain.
  if (pending_.empty() && raw_.empty() && spilled_ == 0) return false;
  // The audit rows, state rows and rollup cells go into journal rows (one per key partition): a
  // few memtable inserts on the path to the acknowledgement instead of one per entry update,
  // entry and resolution. The applier writes them to their column families afterwards
  // (tsdb/journal.h), an entry's audit rows of all the groups it writes at once as one row.
  // Groups that gain nothing from that write their state and rollups directly: one whose journal
  // would not fit its memtable (its rows would reach the disk before the applier deletes them),
  // every group while entries rarely recur from group to group (the applier saves by summing an
  // entry over the groups it writes at once; without repeats the journal only adds its own
  // cost, e.g. with 100k+ keys below saturation), and a group whose entries are mostly new (a
  // fresh store's first burst: they will not recur within the applier's pass either).
  const auto now = std::chrono::steady_clock::now();
  if (now - window_start_ >= repeat_window_) {
    repeats_per_window_ = window_entries_ == 0 ? config::kMinJournalRepeats
                                               : double(window_touches_) / window_entries_;
    window_touches_ = window_entries_ = 0;
    ++window_;
    window_start_ = now;
  }
  const size_t journal_bytes =
      pending_.size() * (config::kJournalEntryBytes + 3 * config::kJournalCellBytes) +
      spilled_ * config::kJournalCellBytes + raw_bytes_.size() +
      raw_.size() * config::kJournalAuditBytes;
  bool direct = journal_bytes > config::kMaxJournalGroupBytes ||
                repeats_per_window_ < config::kMinJournalRepeats ||
                2 * new_entries_in_group_ > pending_.size();
  new_entries_in_group_ = 0;
  switch (journal_mode_.load(std::memory_order_relaxed)) {
    case testing_internal::JournalMode::kAlways:
      direct = false;
      break;
    case testing_internal::JournalMode::kNever:
      direct = true;
      break;
    case testing_internal::JournalMode::kAuto:
      break;
  }
  return direct;
}

void GroupBuilder::Build(BuiltGroup& built, uint64_t seq_before, bool direct) {
  rocksdb::WriteBatch& wb = built.wb;
  MoveAuditRows(wb, seq_before);
  MovePendingEntries();
  Status status;
  if (direct) {
    status = AddDirect(wb);
  } else {
    AddJournalRows(built);
  }
  for (auto& row : journal_rows_) {
    row.clear();
    // A burst leaves big buffers behind; they go back to the system rather than stay resident.
    if (row.capacity() > (64u << 10)) row.shrink_to_fit();
  }
  AddGauges(wb);
  if (coverage_ != nullptr && coverage_->dirty()) coverage_->AddDirty(wb, db_->cf(kMeta));
  if (next_seq_ != seq_before) {
    std::string seq;
    format::PutU64BE(seq, next_seq_);
    wb.Put(db_->cf(kMeta), format::SeqKey(), seq);
  }
  built.status = status;
}

void GroupBuilder::MoveAuditRows(rocksdb::WriteBatch& wb, uint64_t seq_before) {
  for (const auto& row : raw_) {
    format::AppendJournalAudit(journal_rows_[JournalPartition(row.table, row.key)], row.table,
                               row.key, row.t_ms, row.seq,
                               std::string_view(raw_bytes_).substr(row.offset, row.size));
    if (feed_on_) {
      format::AppendJournalAudit(outbox_buf_, row.table, row.key, row.t_ms, row.seq,
                                 std::string_view(raw_bytes_).substr(row.offset, row.size));
    }
  }
  // The event feed's outbox row, in the commit's own WriteBatch (tsdb/event_feed.h).
  if (!outbox_buf_.empty()) {
    wb.Put(db_->cf(kMeta), format::OutboxKey(seq_before), outbox_buf_);
    outbox_buf_.clear();
  } else if (feed_stale_ && next_seq_ != seq_before) {
    FeedReader::AddStop(db_, wb);
    feed_stale_ = false;
  }
  raw_.clear();
  raw_bytes_.clear();
}

void GroupBuilder::MovePendingEntries() {
  for (const auto& p : pending_) {
    const format::EntryId& id = p.entry->first;
    LiveEntry& live = p.entry->second;
    std::string& row = journal_rows_[JournalPartition(id.table, id.key)];
    state_buf_.clear();
    format::AppendEntryState(state_buf_, live.metrics.data(), live.metrics.size());
    format::AppendJournalEntry(row, id, state_buf_);
    live.pending = LiveEntry::kClean;
    if (!p.has_cells) continue;
    for (int r = 0; r < format::kJournalResolutions; ++r) {
      AppendCell(row, id, live.metrics, pending_sums_.data() + p.sums, p.sums_width, r,
                 p.bucket[r]);
    }
  }
  pending_.clear();
  pending_sums_.clear();
  spilled_ = 0;
}

Status GroupBuilder::AddDirect(rocksdb::WriteBatch& wb) {
  Status status;
  format::Journal j;
  for (const auto& row : journal_rows_) {
    if (!row.empty() && !format::AppendJournal(row, &j)) {
      status = Status::Corruption("a journal row the writer built is malformed");
    }
  }
  if (status.ok()) status = AddStateAndRollups(*db_, j, wb);
  return status;
}

void GroupBuilder::AddJournalRows(BuiltGroup& built) {
  rocksdb::WriteBatch& wb = built.wb;
  // At most what a chunk adds to its records: a tag, its partition and its length.
  constexpr size_t kChunkHeaderBytes = 16;
  size_t left = 0, largest = 0;  // bytes of the chunks not in a row yet, and of the largest
  for (const auto& records : journal_rows_) {
    if (records.empty()) continue;
    left += records.size() + kChunkHeaderBytes;
    largest = std::max(largest, records.size() + kChunkHeaderBytes);
  }
  std::string row;
  // Each row is sized once for what it will hold (at most kJournalRowBytes and one more chunk)
  // instead of growing by doubling: every step copied the row into fresh memory.
  auto start_row = [&] { row.reserve(std::min(left, config::kJournalRowBytes + largest)); };
  auto finish_row = [&] {
    if (row.empty()) return;
    wb.Put(db_->cf(kMeta), format::JournalKey(next_journal_id_), row);
    built.journal.push_back(
        JournalRow{next_journal_id_++, std::make_shared<const std::string>(std::move(row)), {}});
    row = std::string();
  };
  start_row();
  for (uint32_t i = 0; i < config::kJournalPartitions; ++i) {
    if (journal_rows_[i].empty()) continue;
    if (row.size() >= config::kJournalRowBytes) {
      finish_row();
      start_row();
    }
    format::AppendJournalChunk(row, i, journal_rows_[i]);
    left -= journal_rows_[i].size() + kChunkHeaderBytes;
  }
  finish_row();
}

void GroupBuilder::AddGauges(rocksdb::WriteBatch& wb) {
  std::string k;
  k.reserve(64);
  auto by_key = [](const auto& a, const auto& b) {
    return std::tie(a.first.table, a.first.metric, a.first.key, a.first.bucket, a.first.source) <
           std::tie(b.first.table, b.first.metric, b.first.key, b.first.bucket, b.first.source);
  };
  std::vector<std::pair<AggKey, std::pair<int64_t, int64_t>>> gauges(gauge_agg_.begin(),
                                                                     gauge_agg_.end());
  gauge_agg_.clear();
  std::sort(gauges.begin(), gauges.end(), by_key);
  for (const auto& [cell, v] : gauges) {
    k.clear();
    format::AppendRollupKey(k, cell.table, cell.metric, cell.key, cell.bucket, cell.source);
    wb.Merge(db_->cf(kGauge), k, format::EncodeGauge(v.first, v.second));
  }
}

}  // namespace stickmeter::tsdb
