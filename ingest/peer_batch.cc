// Batching on a peer session: decoded entry updates are gathered into a batch for the sink while
// the previous one is stored, and acknowledged to the peer once the store says they are durable.
// Bounded by PeerServiceOptions' held-bytes and held-entries limits (HoldingReads).
#include <boost/asio/post.hpp>

#include "common/log.h"
#include "common/metrics.h"
#include "ingest/normalize.h"
#include "ingest/peer_session.h"

namespace stickmeter::ingest {
namespace {

namespace asio = boost::asio;

// What one EntryUpdate costs in memory, roughly: the struct, its strings and vectors.
uint64_t EntryBytes(const EntryUpdate& e) {
  return sizeof(EntryUpdate) + e.key.size() + e.server_key.size() +
         e.values.size() * sizeof(MetricValue) + e.rates.size() * sizeof(RawRate);
}

}  // namespace

void PeerSession::AddBatchBytes(int64_t delta) {
  context_->batch_bytes.fetch_add(static_cast<uint64_t>(delta), std::memory_order_relaxed);
  PeerMetrics::Get().batch_bytes.Add(delta);
}

bool PeerSession::IsTaughtTable(const TableDefinition& table) {
  auto it = taught_ids_.find(table.table_id);
  if (it != taught_ids_.end() && tables_.count(table.table_id) &&
      tables_[table.table_id]->name == table.name) {
    return it->second;
  }
  const TaughtTables* taught = context_->options.taught;
  const bool is_taught = taught != nullptr && taught->IsTaught(table.name);
  taught_ids_[table.table_id] = is_taught;
  const auto& raw = context_->options.raw_rate_tables;
  raw_rate_ids_[table.table_id] = std::find(raw.begin(), raw.end(), table.name) != raw.end();
  return is_taught;
}

void PeerSession::OnUpdate(const EntryUpdateView& update) {
  auto it = tables_.find(update.table->table_id);
  if (it == tables_.end()) {
    it = tables_.emplace(update.table->table_id, MakeTableInfo(*update.table)).first;
  }
  if (IsTaughtTable(*update.table)) {
    dropped_acks_[update.table->table_id] = update.update_id;
    return;
  }
  if (batch_.tables.empty() || batch_.tables.back().table != it->second) {
    batch_.tables.push_back(TableUpdates{it->second, {}});
    // Batches of a session are alike: room for as many entries as the last one had, instead
    // of growing by doubling (each step copies every entry and touches fresh memory).
    if (batch_.tables.size() == 1) batch_.tables.back().entries.reserve(last_batch_entries_);
  }
  CheckLearnedEntry(update);
  AppendEntryUpdate(update, receive_unix_ms_, batch_.tables.back(),
                    raw_rate_ids_[update.table->table_id]);
  const uint64_t bytes = EntryBytes(batch_.tables.back().entries.back());
  batch_bytes_ += bytes;
  AddBatchBytes(static_cast<int64_t>(bytes));
  batch_acks_[update.table->table_id] = update.update_id;
  ++batch_entries_;
  ++entries_decoded_;
}

void PeerSession::CheckLearnedEntry(const EntryUpdateView& update) {
  const uint64_t table_id = update.table->table_id;
  const bool timed = update.message_type == StickTableType::kUpdateTimed ||
                     update.message_type == StickTableType::kIncUpdateTimed;
  auto own = own_update_id_.find(table_id);
  if (!timed || own == own_update_id_.end()) {
    // Ordinary pushes carry only the node's own entries.
    own_update_id_[table_id] = update.update_id;
    return;
  }
  // HAProxy numbers entries learned from other peers 2^31 after its own update counter, so in a
  // full resync they stand about 2^31 away from the node's own ones.
  const uint32_t distance = update.update_id - own->second;
  const uint32_t nearest = std::min(distance, static_cast<uint32_t>(0u - distance));
  if (nearest < (1u << 30) || learned_reported_[table_id]) return;
  learned_reported_[table_id] = true;
  const std::string& table = update.table->name;
  MetricsRegistry::Global()
      .GetCounter("stickmeter_shared_key_warnings_total",
                  "Tables whose full resync carried entries the node learned from other HAProxy "
                  "nodes: a shared peers section, whose totals cannot be summed exactly",
                  {{"peer", context_->registry.MetricLabel(peer_name_)},
                   {"table", context_->registry.TableLabel(table)}})
      .Inc();
  std::string warning = "table " + table +
                        " carries entries learned from other HAProxy nodes: this node shares its "
                        "peers section, so totals summed over nodes are not exact";
  LogWarn("peers", EscapeForLog("peer " + peer_name_ + ": " + warning));
  context_->registry.Warn(std::string(DirectionName(direction_)), peer_name_, warning);
}

void PeerSession::FlushBatch() {
  if (phase_ != Phase::kRunning) return;
  if (batch_entries_ == 0 && !pending_restart_) return;
  if (updates_counter_ != nullptr) updates_counter_->Inc(batch_entries_);
  batch_.source = peer_name_;
  batch_.connection_id = connection_id_;
  batch_.source_restarted = pending_restart_;
  batch_.restart_ms = pending_restart_ ? pending_restart_ms_ : 0;
  std::vector<TableAck> acks;
  for (const auto& [table_id, update_id] : batch_acks_) acks.push_back({table_id, update_id});
  UpdateBatch batch = std::move(batch_);
  batch_ = UpdateBatch{};
  batch_acks_.clear();
  last_batch_entries_ = batch.tables.empty() ? 0 : batch.tables.front().entries.size();
  batch_entries_ = 0;
  pending_restart_ = false;
  ReleaseHeld();
  const uint64_t bytes = std::exchange(batch_bytes_, 0);
  inflight_bytes_ += bytes;

  auto self = shared_from_this();
  auto done = [self, acks = std::move(acks), bytes](Status status) {
    asio::post(self->stream_.get_executor(), [self, status = std::move(status), acks, bytes] {
      self->OnBatchDone(status, acks, bytes);
    });
  };
  Status submitted;
  {
    std::lock_guard<std::mutex> lock(source_->mutex);
    if (source_->owner != connection_id_) {
      submitted = Status::Unavailable(
          "this connection no longer owns the peer (a newer one took over, or the service is "
          "stopping)");
    } else {
      submitted = context_->sink->Submit(std::move(batch), std::move(done));
    }
  }
  if (!submitted.ok()) {
    // The batch is gone, its done callback will not run.
    inflight_bytes_ -= bytes;
    AddBatchBytes(-static_cast<int64_t>(bytes));
    return DoClose("batch not accepted: " + submitted.message(), "");
  }
  ++inflight_;
}

void PeerSession::OnBatchDone(const Status& status, const std::vector<TableAck>& acks,
                              uint64_t bytes) {
  --inflight_;
  inflight_bytes_ -= bytes;
  AddBatchBytes(-static_cast<int64_t>(bytes));
  if (phase_ != Phase::kRunning) return;
  if (!status.ok()) return DoClose("batch not stored: " + status.ToString(), "");
  // Durable now: HAProxy may resume after these ids on its next connection.
  std::string msg;
  for (const auto& ack : acks) AppendAck(msg, ack.table_id, ack.update_id);
  if (!msg.empty()) Send(std::move(msg));
  FlushBatch();
  if (phase_ != Phase::kRunning) return;  // the sink refused the batch
  ReadMessages();
}

void PeerSession::ReleaseHeld() {
  context_->held_entries.fetch_sub(held_, std::memory_order_relaxed);
  PeerMetrics::Get().held_entries.Add(-static_cast<int64_t>(held_));
  held_ = 0;
}

}  // namespace stickmeter::ingest
