#include "tsdb/feed_reader.h"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>

#include "tsdb/format.h"
#include "tsdb/rocks_status.h"

namespace stickmeter::tsdb {
namespace {

using format::NameKind;

// Names of ids, looked up once per Read.
class NameCache {
 public:
  explicit NameCache(const Names* names) : names_(names) {}
  const std::string& Get(NameKind kind, uint32_t id) {
    auto& map = maps_[static_cast<int>(kind)];
    auto it = map.find(id);
    if (it != map.end()) return it->second;
    std::string text = names_->Text(kind, id);
    // A key's interned name is its table id (4 bytes) then the key text.
    if (kind == NameKind::kKey) text = text.size() >= 4 ? text.substr(4) : std::string();
    return map.emplace(id, std::move(text)).first->second;
  }

 private:
  const Names* names_;
  std::unordered_map<uint32_t, std::string> maps_[5];
};

FeedEvent MakeEvent(NameCache& names, uint32_t table, uint32_t key, int64_t t_ms, uint64_t seq,
                    const format::EventValue& e) {
  FeedEvent ev;
  ev.seq = seq;
  ev.t_ms = t_ms;
  ev.source = names.Get(NameKind::kSource, e.source);
  ev.table = names.Get(NameKind::kTable, table);
  ev.key = names.Get(NameKind::kKey, key);
  ev.metric = names.Get(NameKind::kMetric, e.metric);
  ev.value = e.value;
  ev.delta = e.delta;
  ev.reason = std::string(format::ReasonName(e.reason));
  return ev;
}

// 64 random bits as 16 hex digits.
std::string NewStoreId() {
  std::random_device rd;
  const uint64_t id = (uint64_t{rd()} << 32) ^ rd();
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(id));
  return buf;
}

FeedPosition ToPosition(const format::FeedState& s) {
  FeedPosition p;
  p.shipped_through = s.shipped_through;
  p.backfill_below = s.backfill_below;
  p.backfill_done = s.backfill_done;
  p.backfill_after = s.backfill_after;
  return p;
}

}  // namespace

Result<bool> FeedReader::OpenFeed(DbHandle* db, bool feed_on, uint64_t next_seq) {
  std::string value;
  auto s = db->db()->Get(rocksdb::ReadOptions(), db->cf(kMeta), format::FeedStateKey(), &value);
  if (!s.ok() && !s.IsNotFound()) return FromRocks(s, "read the event feed position");
  const bool exists = s.ok();
  if (exists && !format::DecodeFeedState(value)) {
    return Status::Corruption("the event feed position is malformed");
  }
  if (!feed_on) return exists;
  rocksdb::WriteBatch wb;
  s = db->db()->Get(rocksdb::ReadOptions(), db->cf(kMeta), format::StoreIdKey(), &value);
  if (!s.ok() && !s.IsNotFound()) return FromRocks(s, "read the store id");
  if (s.IsNotFound()) wb.Put(db->cf(kMeta), format::StoreIdKey(), NewStoreId());
  if (exists && wb.Count() == 0) return true;
  format::FeedState state;
  state.shipped_through = next_seq - 1;
  state.backfill_below = next_seq;
  state.backfill_done = next_seq <= 1;
  if (!exists) wb.Put(db->cf(kMeta), format::FeedStateKey(), format::EncodeFeedState(state));
  rocksdb::WriteOptions wo;
  wo.sync = true;
  s = db->db()->Write(wo, &wb);
  if (!s.ok()) return FromRocks(s, "write the event feed position");
  return true;
}

void FeedReader::AddStop(DbHandle* db, rocksdb::WriteBatch& wb) {
  wb.Delete(db->cf(kMeta), format::FeedStateKey());
  wb.DeleteRange(db->cf(kMeta), format::OutboxKey(0), format::OutboxKey(UINT64_MAX));
}

Result<std::string> FeedReader::StoreId() {
  std::string value;
  auto s = db_->db()->Get(rocksdb::ReadOptions(), db_->cf(kMeta), format::StoreIdKey(), &value);
  if (s.IsNotFound()) return Status::Unavailable("the event feed is off");
  if (!s.ok()) return FromRocks(s, "read the store id");
  return value;
}

Result<FeedPosition> FeedReader::Position() {
  std::string value;
  auto s = db_->db()->Get(rocksdb::ReadOptions(), db_->cf(kMeta), format::FeedStateKey(), &value);
  if (s.IsNotFound()) return Status::Unavailable("the event feed is off");
  if (!s.ok()) return FromRocks(s, "read the event feed position");
  auto state = format::DecodeFeedState(value);
  if (!state) return Status::Corruption("the event feed position is malformed");
  return ToPosition(*state);
}

namespace {

// What an event counts against FeedLimits::bytes.
size_t EventBytes(const FeedEvent& e) {
  return kFeedEventOverhead + e.source.size() + e.table.size() + e.key.size() + e.metric.size() +
         e.reason.size();
}

// Counts a batch's events and bytes against its limits.
class Budget {
 public:
  explicit Budget(const FeedLimits& limits) : limits_(limits) {}
  void Add(const FeedEvent& e) {
    ++events_;
    bytes_ += EventBytes(e);
  }
  // Whether the batch is full (it always takes its first event).
  bool Full() const {
    return events_ > 0 && (events_ >= limits_.events || bytes_ >= limits_.bytes);
  }

 private:
  const FeedLimits limits_;
  size_t events_ = 0;
  size_t bytes_ = 0;
};

}  // namespace

Result<FeedBatch> FeedReader::Read(const FeedPosition& from, const FeedLimits& limits) {
  FeedBatch out;
  out.next = from;
  if (!from.backfill_done) {
    out.backfill = true;
    if (Status s = ReadBackfill(from, limits, &out); !s.ok()) return s;
    // A backfill that just ended returns what it found; the outbox comes with the next read.
    return out;
  }
  if (Status s = ReadOutbox(from, limits, &out); !s.ok()) return s;
  return out;
}

Status FeedReader::ReadBackfill(const FeedPosition& from, const FeedLimits& limits,
                                FeedBatch* out) {
  NameCache names(names_);
  Budget budget(limits);
  std::unique_ptr<rocksdb::Iterator> it(
      db_->db()->NewIterator(rocksdb::ReadOptions(), db_->cf(kRaw)));
  if (from.backfill_after.empty()) {
    it->SeekToFirst();
  } else {
    it->Seek(from.backfill_after);
    if (it->Valid() && it->key() == rocksdb::Slice(from.backfill_after)) it->Next();
  }
  for (; it->Valid(); it->Next()) {
    const auto k = it->key();
    if (k.size() != format::kRawKeySize) return Status::Corruption("event feed: bad audit key");
    const uint32_t table = format::GetU32BE(k.data());
    const uint32_t key = format::GetU32BE(k.data() + 4);
    format::RawRowReader reader(std::string_view(k.data(), k.size()),
                                std::string_view(it->value().data(), it->value().size()));
    format::RawEvent e;
    while (reader.Next(&e)) {
      // Newer events come from the outbox.
      if (e.seq < from.backfill_below) {
        out->events.push_back(MakeEvent(names, table, key, e.t_ms, e.seq, e.e));
        budget.Add(out->events.back());
      }
    }
    if (!reader.ok()) return Status::Corruption("event feed: a malformed audit row");
    out->next.backfill_after.assign(k.data(), k.size());
    if (budget.Full()) return FromRocks(it->status(), "event feed backfill");
  }
  if (!it->status().ok()) return FromRocks(it->status(), "event feed backfill");
  out->next.backfill_done = true;
  out->next.backfill_after.clear();
  return Status::Ok();
}

Status FeedReader::ReadOutbox(const FeedPosition& from, const FeedLimits& limits, FeedBatch* out) {
  NameCache names(names_);
  Budget budget(limits);
  const std::string upper(1, static_cast<char>(format::kTagOutbox + 1));
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(ro, db_->cf(kMeta)));
  format::Journal j;
  for (it->Seek(format::OutboxKey(from.outbox_from)); it->Valid(); it->Next()) {
    const auto first =
        format::DecodeOutboxKey(std::string_view(it->key().data(), it->key().size()));
    if (!first) break;
    j.Clear();
    if (!format::AppendJournal(std::string_view(it->value().data(), it->value().size()), &j)) {
      return Status::Corruption("event feed: outbox row " + std::to_string(*first) +
                                " is malformed");
    }
    uint64_t last_seq = *first - 1;
    bool whole = true;
    for (const auto& a : j.audit) {
      format::EventRowReader reader(a.row);
      format::EventValue e;
      for (uint64_t seq = a.seq; whole && reader.Next(&e); ++seq) {
        last_seq = seq;
        if (seq <= from.shipped_through) continue;
        if (budget.Full()) {
          whole = false;
          break;
        }
        out->events.push_back(MakeEvent(names, a.table, a.key, a.t_ms, seq, e));
        budget.Add(out->events.back());
        out->next.shipped_through = seq;
      }
      if (!whole) break;
      if (!reader.ok()) return Status::Corruption("event feed: a malformed outbox event");
    }
    if (!whole) {
      out->next.outbox_from = *first;
      break;
    }
    out->next.outbox_from = last_seq + 1;
    if (budget.Full()) break;
  }
  return FromRocks(it->status(), "event feed outbox");
}

Status FeedReader::Ack(const FeedPosition& pos) {
  format::FeedState state;
  state.shipped_through = pos.shipped_through;
  state.backfill_below = pos.backfill_below;
  state.backfill_done = pos.backfill_done;
  state.backfill_after = pos.backfill_after;
  rocksdb::WriteBatch wb;
  wb.Put(db_->cf(kMeta), format::FeedStateKey(), format::EncodeFeedState(state));
  if (pos.outbox_from > 0) {
    wb.DeleteRange(db_->cf(kMeta), format::OutboxKey(0), format::OutboxKey(pos.outbox_from));
  }
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return FromRocks(db_->db()->Write(wo, &wb), "event feed: write the position");
}

Result<FeedStats> FeedReader::Stats() {
  FeedStats stats;
  std::string value;
  auto s = db_->db()->Get(rocksdb::ReadOptions(), db_->cf(kMeta), format::SeqKey(), &value);
  if (!s.ok() && !s.IsNotFound()) return FromRocks(s, "read the sequence number");
  if (s.ok() && value.size() == 8) stats.committed_seq = format::GetU64BE(value.data()) - 1;
  auto pos = Position();
  if (!pos.ok()) return pos.status();
  stats.shipped_through = pos->shipped_through;
  stats.backfill_done = pos->backfill_done;
  return stats;
}

}  // namespace stickmeter::tsdb
