// The teacher: turns what the store commits into the values stickmeter teaches HAProxy.
//
// It observes the store's commits (tsdb/commit_observer.h) of the tables named by --aggregate
// and --quota, keeps one Aggregator per --aggregate pair and one QuotaBook per --quota pair, and
// writes what changed into the TaughtTables that every peer session sends from. Changes are
// coalesced: a key is taught at most once per `window_ms`, and a change waits at most that
// long (plus the time to apply what arrived meanwhile). Every taught entry is taught again each
// `refresh_ms`, so nodes keep it before their table's expire ends it. It also implements the
// quota API (teach/quota.h): quotas are kept in the store's settings, each change in their
// history.
//
// Threads: OnCommitted() only queues (committer thread); one thread, "sm-teacher", applies and
// teaches; the QuotaService methods may be called from any thread, and puts and deletes take
// effect one at a time (a Put of a new metric, period or zone waits for that usage to be read
// from the store, up to 10 s).
// Ownership: borrows the store and the taught tables, which must outlive Stop().
// Failure: Start() fails with the store's error when quotas or usage cannot be read, or with
// InvalidArgument for a stored quota that no longer parses.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/metrics.h"
#include "ingest/taught_tables.h"
#include "teach/aggregator.h"
#include "teach/quota.h"
#include "teach/quota_book.h"
#include "tsdb/commit_observer.h"
#include "tsdb/store.h"

namespace stickmeter::teach {

struct TeacherOptions {
  // --aggregate SRC[=DST] and --quota SRC[=DST], resolved: (source, taught) table names.
  std::vector<std::pair<std::string, std::string>> aggregate;
  std::vector<std::pair<std::string, std::string>> quota;
  // At most one push of a key per window, and no change waits longer. Default: 20.
  int64_t window_ms = 20;
  // Under heavy change the window stretches, up to max_window_ms, so that no more than about
  // max_taught_per_second entries are taught a second: every node pays for each entry it is
  // taught (and here the ACK of it), and past that rate pushing each key more often buys little.
  // Defaults: 60 ms, 200,000 entries a second.
  int64_t max_window_ms = 60;
  uint64_t max_taught_per_second = 200'000;
  // Every taught entry is sent again this often. Default: 60000.
  int64_t refresh_ms = 60000;
};

// "SRC[=DST]" -> (SRC, DST), DST defaulting to SRC + `suffix` (".aggregate", ".quota").
// InvalidArgument for an empty or malformed name.
Result<std::pair<std::string, std::string>> ParseTeachPair(std::string_view text,
                                                           std::string_view suffix);
// Checks the pairs together: no name taught twice, no taught table also a source.
Status CheckTeachPairs(const TeacherOptions& options);
// Every taught table name, for ingest::TaughtTables.
std::vector<std::string> TaughtNames(const TeacherOptions& options);
// The window after a flush that taught `taught` entries: window_ms, or longer (up to
// max_window_ms) when teaching that many entries every window_ms would pass
// max_taught_per_second.
int64_t NextWindowMs(const TeacherOptions& options, size_t taught);

class Teacher final : public tsdb::CommitObserver, public QuotaService {
 public:
  Teacher(TeacherOptions options, tsdb::Store& store, ingest::TaughtTables& taught);
  ~Teacher() override;

  // Loads the stored quotas and their usage, teaches them, starts the thread. Call once, after
  // the store is open and before peers connect.
  Status Start();
  // Stops the thread. Idempotent.
  void Stop();

  // ---- tsdb::CommitObserver ----
  bool Observes(const std::string& table) const override;
  void OnCommitted(tsdb::CommittedGroup group) override;

  // ---- QuotaService ----
  Result<QuotaStatus> Put(const Quota& quota) override;
  Status Delete(const std::string& table, const std::string& metric,
                const std::optional<std::string>& key) override;
  Result<std::vector<QuotaStatus>> List(const std::optional<std::string>& table,
                                        const std::optional<std::string>& key) override;
  Result<std::vector<KeyQuotaStatus>> Keys(const std::optional<std::string>& table,
                                           const std::optional<std::string>& key,
                                           size_t limit) override;
  Result<std::vector<QuotaChange>> History(const std::optional<std::string>& table,
                                           size_t limit) override;

 private:
  struct BaseLoad {
    size_t book;
    QuotaBook::BaseRequest request;
  };
  void Loop();
  void Apply(const tsdb::CommittedGroup& group);  // REQUIRES: mu_
  size_t FlushAll(int64_t now_ms);                // entries taught; REQUIRES: mu_
  // Reads the usage the queued base loads wait for; a load whose read fails stays queued and is
  // tried again (not before kRetryLoadMs). Returns the first failure.
  Status LoadBases();                                                 // EXCLUDES: mu_
  QuotaBook* BookFor(const std::string& table);                       // REQUIRES: mu_
  Status Validate(const Quota& quota, const date::time_zone** zone);  // REQUIRES: mu_
  void DefineFromCatalog();

  const TeacherOptions options_;
  tsdb::Store& store_;
  ingest::TaughtTables& taught_;
  Gauge& over_keys_;

  // Quota changes one at a time, from the setting written to the book updated: two at once
  // could leave the store with one quota and the book with the other. Taken before mu_.
  std::mutex change_mu_;
  // Books and aggregators, and the base loads they wait for.
  std::mutex mu_;
  std::condition_variable base_cv_;
  std::vector<Aggregator> aggregators_;  // GUARDED_BY(mu_)
  std::vector<QuotaBook> books_;         // GUARDED_BY(mu_)
  std::vector<BaseLoad> base_loads_;     // GUARDED_BY(mu_)
  uint64_t bases_loaded_ = 0;            // GUARDED_BY(mu_)
  int64_t retry_loads_at_ms_ = 0;        // GUARDED_BY(mu_)
  bool loads_failing_ = false;           // GUARDED_BY(mu_)
  int64_t last_expire_ms_ = 0;           // GUARDED_BY(mu_)

  // Committed groups waiting for the thread.
  std::mutex inbox_mu_;
  std::condition_variable inbox_cv_;
  std::vector<tsdb::CommittedGroup> inbox_;  // GUARDED_BY(inbox_mu_)
  bool wake_ = false;                        // GUARDED_BY(inbox_mu_)
  bool stopping_ = false;                    // GUARDED_BY(inbox_mu_)

  std::thread thread_;  // "sm-teacher"
};

}  // namespace stickmeter::teach
