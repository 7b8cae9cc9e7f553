// Catalog: what exists in the store. The interned names (sources, tables, metrics, keys and
// the other kinds of format::NameKind) and, per table, its HAProxy definition, its metrics and
// their classes, the sources that sent it, and how many of its keys several sources sent.
//
// Thread-safety: Names and Catalog lock themselves; every method may be called from any thread.
// Only the writer thread (sm-writer) adds to them, so the writer may keep and read a TableMeta*
// without the lock (nobody else changes it); it changes one only through the methods below,
// which take the lock, so readers never see a half-made change. Loading at open runs before
// any other thread starts.
// Ownership: owned by StoreImpl. The catalog's persisted form is the meta column family's name,
// table, metric and table-source records (tsdb/format.h); the caller writes those, the catalog
// only holds them in memory.
// Failure: lookups of unknown names return nullopt or NotFound; nothing else fails.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/status.h"
#include "common/thread_annotations.h"
#include "tsdb/format.h"
#include "tsdb/incremental_hash_map.h"

namespace stickmeter::tsdb {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
};

// Interned names: id <-> text per kind. Ids start at 1 and are never reused.
class Names {
 public:
  std::optional<uint32_t> Find(format::NameKind kind, std::string_view name) const EXCLUDES(mu_);
  // The text of an id; empty for an unknown one.
  std::string Text(format::NameKind kind, uint32_t id) const EXCLUDES(mu_);
  // Returns the id and whether it is new (the caller persists it). Writer thread only.
  std::pair<uint32_t, bool> Intern(format::NameKind kind, std::string_view name) EXCLUDES(mu_);
  // Loading at open. False when the id or the name is taken, or the id is 0.
  bool Insert(format::NameKind kind, std::string name, uint32_t id) EXCLUDES(mu_);
  size_t Count(format::NameKind kind) const EXCLUDES(mu_);
  // Forgets every name (the store reloads them after a failed write). Writer thread only.
  void Clear() EXCLUDES(mu_);
  // Every (text, id) of a kind, sorted by text.
  std::vector<std::pair<std::string, uint32_t>> All(format::NameKind kind) const EXCLUDES(mu_);

 private:
  static constexpr size_t kKinds = 5;
  static size_t Index(format::NameKind kind) { return static_cast<size_t>(kind); }
  bool InsertLocked(format::NameKind kind, std::string name, uint32_t id) REQUIRES(mu_);

  mutable SharedMutex mu_;
  IncrementalHashMap<std::string, uint32_t, StringHash, std::equal_to<>> maps_[kKinds] GUARDED_BY(
      mu_);
  // Points into the keys of maps_ (node-stable), by id.
  std::vector<const std::string*> texts_[kKinds] GUARDED_BY(mu_);
};

// What the store knows of one table.
struct TableMeta {
  format::TableValue info;
  std::map<uint32_t, format::MetricClass> metrics;
  std::set<uint32_t> sources;
  uint64_t multi_source_keys = 0;
  int observed = -1;  // CommitObserver::Observes, asked at first use (writer thread only)
};

class Catalog {
 public:
  Names names;

  // ---- Loading at open, before other threads start ----
  void LoadTable(uint32_t table, format::TableValue info) EXCLUDES(mu_);
  void LoadMetric(uint32_t table, uint32_t metric, format::MetricClass cls) EXCLUDES(mu_);
  void LoadSource(uint32_t table, uint32_t source) EXCLUDES(mu_);
  // Forgets everything, to load again (the store, after a failed write, with no query running).
  void Clear() EXCLUDES(mu_);

  // ---- The writer thread ----
  // The table, made if new. Stable: tables are never removed.
  TableMeta* Table(uint32_t table) EXCLUDES(mu_);
  // Sets the table's definition; true if it changed (the caller persists it).
  bool SetInfo(TableMeta* meta, const format::TableValue& info) EXCLUDES(mu_);
  // Records that `source` sent the table; true if it had not (the caller persists it).
  bool AddSource(TableMeta* meta, uint32_t source) EXCLUDES(mu_);
  // Sets a metric's class; true if it was unknown or had another class (the caller persists it).
  bool SetMetric(TableMeta* meta, uint32_t metric, format::MetricClass cls) EXCLUDES(mu_);
  // A key of the table is now sent by more than one source.
  void CountMultiSourceKey(uint32_t table) EXCLUDES(mu_);
  void CountMultiSourceKey(TableMeta* meta) EXCLUDES(mu_);

  // ---- Any thread ----
  // The id of a known table: InvalidArgument when empty, NotFound when unknown.
  Result<uint32_t> ResolveTable(const std::string& table) const EXCLUDES(mu_);
  // The id and class of a metric of `table_id` (named `table` in messages): InvalidArgument when
  // empty, NotFound when the table has no such metric. REQUIRES: table_id is a known table.
  Result<std::pair<uint32_t, format::MetricClass>> ResolveMetric(uint32_t table_id,
                                                                 const std::string& table,
                                                                 const std::string& metric) const
      EXCLUDES(mu_);
  size_t TableCount() const EXCLUDES(mu_);
  // Calls visit(id, const TableMeta&) for every table, in no particular order, with the lock
  // held shared: `visit` must not call back into the Catalog's tables (Names are fine).
  template <typename Visit>
  void ForEachTable(Visit&& visit) const EXCLUDES(mu_) {
    ReaderLock lock(&mu_);
    for (const auto& [id, meta] : tables_) visit(id, meta);
  }

 private:
  mutable SharedMutex mu_;
  // Node-based: the writer's TableMeta* stay valid as tables are added.
  std::unordered_map<uint32_t, TableMeta> tables_ GUARDED_BY(mu_);
};

}  // namespace stickmeter::tsdb
