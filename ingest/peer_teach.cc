// Teaching on a peer session: what changed in the taught tables goes to the peer, at the pace it
// reads and acknowledges (see PeerServiceOptions::taught).
#include <algorithm>
#include <boost/asio/post.hpp>
#include <optional>

#include "common/time.h"
#include "ingest/peer_session.h"

namespace stickmeter::ingest {
namespace {

namespace asio = boost::asio;

// Taught updates are pulled while less than this waits to be written, well under
// kMaxPendingWriteBytes: a peer that reads slowly is taught at its own pace.
constexpr size_t kTeachOutputBytes = 256 << 10;
// Updates pulled per table per step, so that one table does not hold back the others.
constexpr size_t kTeachMessagesPerStep = 512;
// Sequence numbers kept per table for the acknowledged-updates metric of a peer that never
// acknowledges.
constexpr size_t kMaxUnackedTracked = 1 << 20;

}  // namespace

void PeerSession::StartTeaching() {
  TaughtTables* taught = context_->options.taught;
  if (taught == nullptr || taught->table_count() == 0) return;
  const std::string label = context_->registry.MetricLabel(peer_name_);
  taught_sent_ = &PeerMetrics::TaughtSent(label);
  taught_acked_ = &PeerMetrics::TaughtAcked(label);
  // Resume after what this peer acknowledged on its previous connection; the DEFINEs go again.
  const auto acks = context_->registry.TaughtAcks(peer_name_, taught->table_count());
  teach_cursors_.resize(acks.size());
  teach_unacked_.resize(acks.size());
  for (size_t i = 0; i < acks.size(); ++i) {
    teach_cursors_[i].sent = acks[i].seq;
    teach_cursors_[i].sent_version = acks[i].version;
  }
  std::weak_ptr<PeerSession> weak = weak_from_this();
  teach_listener_ = taught->AddListener([weak] {
    if (auto self = weak.lock()) self->ScheduleTeach();
  });
  PumpTeach();
}

void PeerSession::StopTeaching() {
  if (teach_listener_ == 0) return;
  context_->options.taught->RemoveListener(teach_listener_);
  teach_listener_ = 0;
}

void PeerSession::ScheduleTeach() {
  if (teach_posted_.exchange(true)) return;
  asio::post(stream_.get_executor(), [self = shared_from_this()] {
    self->teach_posted_.store(false);
    self->PumpTeach();
  });
}

void PeerSession::PumpTeach() {
  TaughtTables* taught = context_->options.taught;
  if (teach_cursors_.empty() || phase_ != Phase::kRunning) return;
  const int64_t now = NowUnixMs();
  Histogram& lag = PeerMetrics::TeachLag();
  std::string msg;
  // Entries of one flush share their lag to the millisecond: observed once per run of equal
  // lags, not once per entry (the histogram's counters are shared by every session).
  int64_t run_lag_ms = -1;
  uint64_t run_length = 0;
  auto observe_run = [&] {
    if (run_length > 0) lag.Observe(static_cast<double>(run_lag_ms) / 1e3, run_length);
  };
  while (pending_.size() + msg.size() < kTeachOutputBytes) {
    size_t appended = 0;
    for (size_t i = 0; i < teach_cursors_.size(); ++i) {
      auto got =
          taught->Collect(i, teach_cursors_[i], kTeachMessagesPerStep, msg, &teach_selected_table_);
      appended += got.messages;
      auto& unacked = teach_unacked_[i];
      for (const auto& [seq, origin_ms] : got.sent) {
        if (unacked.size() >= kMaxUnackedTracked) unacked.pop_front();
        unacked.push_back(seq);
        if (origin_ms <= 0) continue;
        const int64_t lag_ms = std::max<int64_t>(0, now - origin_ms);
        if (lag_ms != run_lag_ms) {
          observe_run();
          run_lag_ms = lag_ms;
          run_length = 0;
        }
        ++run_length;
      }
    }
    if (appended == 0) break;
    taught_sent_->Inc(appended);
  }
  observe_run();
  if (!msg.empty()) Send(std::move(msg));
  if (resync_answer_pending_ && phase_ == Phase::kRunning) {
    for (size_t i = 0; i < teach_cursors_.size(); ++i) {
      if (taught->Behind(i, teach_cursors_[i], resync_target_seq_)) return;  // more to send
    }
    resync_answer_pending_ = false;
    std::string finished;
    AppendControl(finished, ControlType::kResyncFinished);
    Send(std::move(finished));
  }
}

void PeerSession::OnAck(uint64_t table_id, uint32_t update_id) {
  if (table_id == 0 || table_id > teach_cursors_.size()) return;
  const size_t i = static_cast<size_t>(table_id - 1);
  const std::optional<uint64_t> unwrapped = TaughtTables::Unwrap(teach_cursors_[i].sent, update_id);
  if (!unwrapped) return;  // nothing sent on this cursor has that id: nothing to account for
  const uint64_t acked = *unwrapped;
  auto& unacked = teach_unacked_[i];
  uint64_t count = 0;
  while (!unacked.empty() && unacked.front() <= acked) {
    unacked.pop_front();
    ++count;
  }
  if (count > 0) taught_acked_->Inc(count);
  context_->registry.SetTaughtAck(peer_name_, i, {acked, teach_cursors_[i].sent_version});
}

}  // namespace stickmeter::ingest
