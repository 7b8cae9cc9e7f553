#include "sink/clickhouse_sink.h"

#include <openssl/evp.h>

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/log.h"
#include "common/thread_setup.h"
#include "common/time.h"
#include "sink/http_client.h"

namespace stickmeter::sink {
namespace {

constexpr size_t kMaxErrorText = 300;  // of a ClickHouse error body, in a log line

std::string Base64(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(std::max(n, 0)));
  return out;
}

// The first line of an error body, bounded, for a log line.
std::string Excerpt(const std::string& body) {
  std::string line = body.substr(0, std::min(body.find('\n'), kMaxErrorText));
  for (char& c : line) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  return line;
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// POSTs `body` with query `sql`; an answer other than 200 is an error with its first line.
Status Query(HttpClient& client, const std::string& sql, const std::string& body) {
  auto reply = client.Post("/?query=" + UrlEncode(sql), body);
  if (!reply.ok()) return reply.status();
  if (reply->status != 200) {
    return Status::Unavailable("ClickHouse answered " + std::to_string(reply->status) + ": " +
                               Excerpt(reply->body));
  }
  return Status::Ok();
}

}  // namespace

ClickHouseSink::ClickHouseSink(ClickHouseSinkOptions options, tsdb::EventFeed& feed)
    : options_(std::move(options)),
      feed_(feed),
      backlog_(MetricsRegistry::Global().GetGauge(
          "stickmeter_sink_clickhouse_backlog_events",
          "Committed audit events not yet confirmed by ClickHouse (backfill not counted)")),
      lag_(MetricsRegistry::Global().GetGauge(
          "stickmeter_sink_clickhouse_lag_milliseconds",
          "Age of the oldest committed event ClickHouse has not confirmed, as of the sink's last "
          "read of the store; 0 when caught up")),
      backfilling_(MetricsRegistry::Global().GetGauge(
          "stickmeter_sink_clickhouse_backfilling",
          "1 while the sink ships the events stored before it was enabled")),
      up_(MetricsRegistry::Global().GetGauge("stickmeter_sink_clickhouse_up",
                                             "1 if the last request to ClickHouse succeeded")),
      rows_(MetricsRegistry::Global().GetCounter("stickmeter_sink_clickhouse_rows_total",
                                                 "Rows ClickHouse confirmed")),
      errors_(MetricsRegistry::Global().GetCounter(
          "stickmeter_sink_clickhouse_errors_total",
          "Failed attempts (connect, HTTP error, store read); each is retried")),
      insert_seconds_(MetricsRegistry::Global().GetHistogram(
          "stickmeter_sink_clickhouse_insert_seconds", "Latency of one confirmed INSERT")) {}

ClickHouseSink::~ClickHouseSink() { Stop(); }

void ClickHouseSink::Start() {
  thread_ = std::thread([this] {
    // Background work: the writer, the peers and the queries go first when the cores are busy.
    SetUpThisThread("sm-clickhouse", 10);
    Loop();
  });
}

void ClickHouseSink::Stop() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  stopping_ = true;
  cv_.SignalAll();
  if (thread_.joinable()) thread_.join();
}

bool ClickHouseSink::Sleep(std::chrono::milliseconds d) {
  const auto deadline = std::chrono::steady_clock::now() + d;
  MutexLock lock(&mu_);
  while (!stop_) {
    if (!cv_.WaitUntil(&mu_, deadline)) break;
  }
  return !stop_;
}

void ClickHouseSink::Failed(const std::string& what, const Status& s) {
  errors_.Inc();
  up_.Set(0);
  ++failures_;
  const auto now = std::chrono::steady_clock::now();
  if (!failing_ || now - last_log_ >= options_.log_every) {
    LogWarn("sink", "ClickHouse " + Describe(options_.target) + ": " + what + " failed (" +
                        s.message() + "); retrying, " + std::to_string(failures_) +
                        " failed attempts so far");
    last_log_ = now;
  }
  failing_ = true;
}

void ClickHouseSink::Succeeded() {
  up_.Set(1);
  if (failing_) {
    LogInfo("sink", "ClickHouse " + Describe(options_.target) + " answers again after " +
                        std::to_string(failures_) + " failed attempts");
    failing_ = false;
    failures_ = 0;
  }
}

namespace internal {
bool BatchIsFull(const tsdb::FeedBatch& batch, size_t row_bytes,
                 const ClickHouseSinkOptions& options) {
  return batch.events.size() >= options.max_rows || row_bytes >= options.max_bytes;
}

int64_t LagFromAfterInsert(const tsdb::FeedBatch& batch, bool full) {
  return full && !batch.backfill && !batch.events.empty() ? batch.events.back().t_ms : 0;
}
}  // namespace internal

void ClickHouseSink::UpdateStats(int64_t oldest_pending_ms) {
  auto stats = feed_.Stats();
  if (stats.ok()) {
    backlog_.Set(static_cast<int64_t>(stats->committed_seq -
                                      std::min(stats->committed_seq, stats->shipped_through)));
    backfilling_.Set(stats->backfill_done ? 0 : 1);
  }
  lag_.Set(oldest_pending_ms > 0 ? std::max<int64_t>(0, NowUnixMs() - oldest_pending_ms) : 0);
}

void ClickHouseSink::Loop() {
  HttpClientOptions http;
  http.tls = options_.target.tls;
  http.host = options_.target.host;
  http.port = options_.target.port;
  http.ca_file = options_.ca_file;
  http.timeout = options_.timeout;
  http.abort = [this] { return stopping_.load(); };
  if (!options_.target.user.empty() || !options_.target.password.empty()) {
    const std::string user = options_.target.user.empty() ? "default" : options_.target.user;
    http.headers.emplace_back("Authorization",
                              "Basic " + Base64(user + ":" + options_.target.password));
  }
  HttpClient client(std::move(http));
  LogInfo("sink", "shipping audit events to ClickHouse " + Describe(options_.target));

  std::chrono::milliseconds backoff{0};
  auto fail_wait = [&] {
    backoff = std::min(options_.max_backoff, std::max(2 * backoff, std::chrono::milliseconds(100)));
    return Sleep(backoff);
  };
  std::string id_prefix;  // "<server name>:<store id>", once read
  auto last_trim = std::chrono::steady_clock::time_point{};
  std::optional<tsdb::FeedPosition> pos;
  bool table_ready = false;
  std::string rows;
  const std::string insert_sql = InsertSql(options_.target);
  // Creates the table once (IF NOT EXISTS). kRetry: it failed and the backoff was waited.
  enum class Step { kDone, kRetry, kStop };
  auto create_table = [&] {
    if (table_ready) return Step::kDone;
    if (Status s = Query(client, CreateTableSql(options_.target), ""); !s.ok()) {
      Failed("creating the table", s);
      return fail_wait() ? Step::kRetry : Step::kStop;
    }
    table_ready = true;
    Succeeded();
    backoff = std::chrono::milliseconds(0);
    return Step::kDone;
  };
  for (;;) {
    {
      MutexLock lock(&mu_);
      if (stop_) break;
    }
    if (id_prefix.empty()) {
      auto id = feed_.StoreId();
      if (!id.ok()) {
        Failed("reading the store id", id.status());
        if (!fail_wait()) break;
        continue;
      }
      id_prefix = options_.server_name + ":" + *id;
    }
    if (!pos) {
      auto p = feed_.Position();
      if (!p.ok()) {
        Failed("reading the position", p.status());
        if (!fail_wait()) break;
        continue;
      }
      pos = *p;
    }
    auto batch = feed_.Read(*pos, tsdb::FeedLimits{options_.max_rows, options_.max_bytes});
    if (!batch.ok()) {
      Failed("reading the store", batch.status());
      if (!fail_wait()) break;
      continue;
    }
    if (batch->events.empty()) {
      UpdateStats(0);
      // Idle: the table is still created at start, which also tells whether ClickHouse answers.
      if (const Step step = create_table(); step != Step::kDone) {
        if (step == Step::kStop) break;
        continue;
      }
      if (batch->next.backfill_done != pos->backfill_done ||
          batch->next.outbox_from != pos->outbox_from) {
        if (Status s = feed_.Ack(batch->next); !s.ok()) {
          Failed("recording the position", s);
          if (!fail_wait()) break;
          continue;
        }
        if (batch->next.backfill_done && !pos->backfill_done) {
          LogInfo("sink", "backfill to ClickHouse done");
        }
        pos = batch->next;
        continue;
      }
      if (!Sleep(options_.poll)) break;
      continue;
    }
    UpdateStats(batch->backfill ? 0 : batch->events.front().t_ms);
    if (const Step step = create_table(); step != Step::kDone) {
      if (step == Step::kStop) break;
      continue;
    }
    rows.clear();
    for (const auto& e : batch->events) AppendRow(rows, id_prefix, e);
    const auto start = std::chrono::steady_clock::now();
    if (Status s = Query(client, insert_sql, rows); !s.ok()) {
      // The table may have been dropped meanwhile: create it again before the next attempt.
      table_ready = false;
      Failed("INSERT of " + std::to_string(batch->events.size()) + " rows", s);
      if (!fail_wait()) break;
      continue;
    }
    insert_seconds_.Observe(SecondsSince(start));
    rows_.Inc(batch->events.size());
    Succeeded();
    backoff = std::chrono::milliseconds(0);
    // Recorded only now that ClickHouse has the rows; a failure here ships them again (same ids).
    // The shipped outbox rows are deleted every trim interval only: each deletion is a range
    // tombstone in the store's meta family, which every read of it then steps over.
    tsdb::FeedPosition ack = batch->next;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_trim >= options_.trim_every) {
      last_trim = now;
    } else {
      ack.outbox_from = 0;  // keep the rows for now; the position alone says they are shipped
    }
    if (Status s = feed_.Ack(ack); !s.ok()) {
      Failed("recording the position", s);
      pos.reset();
      if (!fail_wait()) break;
      continue;
    }
    if (batch->backfill && batch->next.backfill_done)
      LogInfo("sink", "backfill to ClickHouse done");
    pos = batch->next;
    // A full batch: more is waiting, right behind it; go on at once. Otherwise let the next rows
    // gather for a poll interval.
    const bool full = internal::BatchIsFull(*batch, rows.size(), options_);
    UpdateStats(internal::LagFromAfterInsert(*batch, full));
    if (!full && !Sleep(options_.poll)) break;
  }
}

}  // namespace stickmeter::sink
