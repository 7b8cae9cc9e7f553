#include "tsdb/catalog.h"

#include <algorithm>

namespace stickmeter::tsdb {

using format::MetricClass;
using format::NameKind;

// ---- Names ----

std::optional<uint32_t> Names::Find(NameKind kind, std::string_view name) const {
  ReaderLock lock(&mu_);
  const auto* found = maps_[Index(kind)].Find(name);
  if (found == nullptr) return std::nullopt;
  return found->second;
}

std::string Names::Text(NameKind kind, uint32_t id) const {
  ReaderLock lock(&mu_);
  auto& v = texts_[Index(kind)];
  return id < v.size() && v[id] != nullptr ? *v[id] : std::string();
}

std::pair<uint32_t, bool> Names::Intern(NameKind kind, std::string_view name) {
  {
    ReaderLock lock(&mu_);
    const auto& m = maps_[Index(kind)];
    const auto* found = m.Find(name);
    if (found != nullptr && !m.Growing()) return {found->second, false};
  }
  WriterLock lock(&mu_);
  auto& m = maps_[Index(kind)];
  // While the map grows, lookups move it along too: most names are looked up, few are new.
  if (const auto* found = m.Find(name)) {
    m.MoveSome();
    return {found->second, false};
  }
  auto& v = texts_[Index(kind)];
  const auto id = static_cast<uint32_t>(std::max<size_t>(v.size(), 1));
  InsertLocked(kind, std::string(name), id);
  return {id, true};
}

bool Names::Insert(NameKind kind, std::string name, uint32_t id) {
  WriterLock lock(&mu_);
  return InsertLocked(kind, std::move(name), id);
}

bool Names::InsertLocked(NameKind kind, std::string name, uint32_t id) {
  auto& m = maps_[Index(kind)];
  auto& v = texts_[Index(kind)];
  if (id == 0) return false;
  if (v.size() <= id) v.resize(id + 1, nullptr);
  if (v[id] != nullptr) return false;
  auto [it, inserted] = m.TryEmplace(std::move(name), id);
  if (!inserted) return false;
  v[id] = &it->first;
  return true;
}

void Names::Clear() {
  WriterLock lock(&mu_);
  for (size_t k = 0; k < kKinds; ++k) {
    maps_[k].Clear();
    texts_[k].clear();
  }
}

size_t Names::Count(NameKind kind) const {
  ReaderLock lock(&mu_);
  return maps_[Index(kind)].size();
}

std::vector<std::pair<std::string, uint32_t>> Names::All(NameKind kind) const {
  ReaderLock lock(&mu_);
  std::vector<std::pair<std::string, uint32_t>> out;
  out.reserve(maps_[Index(kind)].size());
  maps_[Index(kind)].ForEach(
      [&](const std::string& text, uint32_t id) { out.emplace_back(text, id); });
  std::sort(out.begin(), out.end());
  return out;
}

// ---- Catalog ----

void Catalog::LoadTable(uint32_t table, format::TableValue info) {
  WriterLock lock(&mu_);
  tables_[table].info = std::move(info);
}

void Catalog::LoadMetric(uint32_t table, uint32_t metric, MetricClass cls) {
  WriterLock lock(&mu_);
  tables_[table].metrics[metric] = cls;
}

void Catalog::LoadSource(uint32_t table, uint32_t source) {
  WriterLock lock(&mu_);
  tables_[table].sources.insert(source);
}

void Catalog::Clear() {
  names.Clear();
  WriterLock lock(&mu_);
  tables_.clear();
}

TableMeta* Catalog::Table(uint32_t table) {
  WriterLock lock(&mu_);
  return &tables_[table];
}

bool Catalog::SetInfo(TableMeta* meta, const format::TableValue& info) {
  // Reading without the lock: only this (the writer) thread changes a TableMeta.
  if (meta->info.key_type == info.key_type && meta->info.key_size == info.key_size &&
      meta->info.expire_ms == info.expire_ms && meta->info.data_types == info.data_types) {
    return false;
  }
  WriterLock lock(&mu_);
  meta->info = info;
  return true;
}

bool Catalog::AddSource(TableMeta* meta, uint32_t source) {
  if (meta->sources.count(source) != 0) return false;
  WriterLock lock(&mu_);
  meta->sources.insert(source);
  return true;
}

bool Catalog::SetMetric(TableMeta* meta, uint32_t metric, MetricClass cls) {
  auto it = meta->metrics.find(metric);
  if (it != meta->metrics.end() && it->second == cls) return false;
  WriterLock lock(&mu_);
  meta->metrics[metric] = cls;
  return true;
}

void Catalog::CountMultiSourceKey(uint32_t table) {
  WriterLock lock(&mu_);
  ++tables_[table].multi_source_keys;
}

void Catalog::CountMultiSourceKey(TableMeta* meta) {
  WriterLock lock(&mu_);
  ++meta->multi_source_keys;
}

Result<uint32_t> Catalog::ResolveTable(const std::string& table) const {
  if (table.empty()) return Status::InvalidArgument("table: required");
  auto id = names.Find(NameKind::kTable, table);
  if (!id) return Status::NotFound("table: unknown table '" + table + "'");
  ReaderLock lock(&mu_);
  if (tables_.find(*id) == tables_.end()) {
    return Status::NotFound("table: unknown table '" + table + "'");
  }
  return *id;
}

Result<std::pair<uint32_t, MetricClass>> Catalog::ResolveMetric(uint32_t table_id,
                                                                const std::string& table,
                                                                const std::string& metric) const {
  if (metric.empty()) return Status::InvalidArgument("metric: required");
  auto id = names.Find(NameKind::kMetric, metric);
  ReaderLock lock(&mu_);
  const auto& metrics = tables_.at(table_id).metrics;
  auto it = id ? metrics.find(*id) : metrics.end();
  if (it == metrics.end()) {
    return Status::NotFound("metric: table '" + table + "' has no metric '" + metric + "'");
  }
  return std::make_pair(*id, it->second);
}

size_t Catalog::TableCount() const {
  ReaderLock lock(&mu_);
  return tables_.size();
}

}  // namespace stickmeter::tsdb
