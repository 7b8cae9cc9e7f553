// A hash map that grows without stopping the thread that inserts.
//
// std::unordered_map rehashes every element at once when it outgrows its buckets. For the
// store's per-key maps that walk over scattered nodes took 26 ms at 42k elements and 42 ms at
// 85k, during which the writer commits nothing. Here the map that filled up becomes the old one,
// a new one is reserved twice as large, and each later TryEmplace moves a couple of the old
// map's nodes across (node handles: no element is copied or reallocated). Lookups try the new
// map, then the old one while it still holds elements.
//
// Contract: elements never move in memory while they are in the map, so pointers returned by
// Find and TryEmplace stay valid until the map is destroyed (there is no erase). Keys may be
// looked up by any type the hasher and key-equal accept (transparent hashing). Not thread-safe.
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <unordered_map>
#include <utility>

namespace stickmeter::tsdb {

template <class Key, class Value, class Hash = std::hash<Key>, class KeyEqual = std::equal_to<Key>>
class IncrementalHashMap {
  using Map = std::unordered_map<Key, Value, Hash, KeyEqual>;

 public:
  using value_type = typename Map::value_type;

  // Nodes moved from the old map per TryEmplace. The new map is reserved for twice the old one's
  // size, so with 2 moves per call it holds at most 1.5x that when the old map empties, and
  // never rehashes while the old map still holds nodes.
  static constexpr size_t kMovesPerInsert = 2;

  template <class Query>
  value_type* Find(const Query& key) {
    if (auto it = current_.find(key); it != current_.end()) return &*it;
    if (old_.empty()) return nullptr;
    auto it = old_.find(key);
    return it == old_.end() ? nullptr : &*it;
  }
  template <class Query>
  const value_type* Find(const Query& key) const {
    return const_cast<IncrementalHashMap*>(this)->Find(key);
  }

  // Inserts Value(args...) under `key` unless the key is present; returns the element and
  // whether it was inserted. Every call, found or not, moves some of the old map's nodes, so the
  // old map empties even when no new keys arrive.
  template <class K, class... Args>
  std::pair<value_type*, bool> TryEmplace(K&& key, Args&&... args) {
    MoveSome();
    if (value_type* found = Find(key)) return {found, false};
    if (old_.empty() &&
        current_.size() + 1 > current_.max_load_factor() * current_.bucket_count()) {
      old_.swap(current_);
      current_.reserve(std::max<size_t>(2 * old_.size(), 16));
      MoveSome();
    }
    auto [it, inserted] = current_.try_emplace(std::forward<K>(key), std::forward<Args>(args)...);
    return {&*it, inserted};
  }

  // Whether an old map is still being emptied, and moving some of its nodes: for callers whose
  // lookups (Find) are many and insertions few, so that the old map does not linger.
  bool Growing() const { return !old_.empty(); }
  void MoveSome() {
    for (size_t i = 0; i < kMovesPerInsert && !old_.empty(); ++i) {
      current_.insert(old_.extract(old_.begin()));
    }
  }

  size_t size() const { return current_.size() + old_.size(); }
  // Removes every element and gives the memory back.
  void Clear() {
    current_ = Map();
    old_ = Map();
  }
  bool empty() const { return size() == 0; }

  // Calls visit(key, value) once for every element, in no particular order.
  template <class Visit>
  void ForEach(Visit&& visit) const {
    for (const auto& [k, v] : current_) visit(k, v);
    for (const auto& [k, v] : old_) visit(k, v);
  }

 private:
  Map current_;
  Map old_;  // being emptied into current_
};

}  // namespace stickmeter::tsdb
