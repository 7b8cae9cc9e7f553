// Per-key state of the teacher found by the store's key id instead of by the key's text.
//
// The store numbers every (table, key) from 1 as it is first seen and never reuses a number
// (tsdb::CommittedGroup::entry_keys), so a vector indexed by that id finds a key's state in one
// step: at full speed the teacher looks a key up for every update, and hashing and comparing
// the key's text was a third of its work. Id 0 means "unknown": never found, never stored.
//
// Thread-safety: none (the teacher's thread). Ownership: holds pointers into its owner's map,
// whose nodes must stay put; the owner clears a slot before erasing what it points to.
#pragma once

#include <cstdint>
#include <vector>

namespace stickmeter::teach {

template <typename T>
class KeyIdIndex {
 public:
  T* Find(uint32_t id) const { return id < slots_.size() ? slots_[id] : nullptr; }
  void Set(uint32_t id, T* value) {
    if (id == 0) return;
    if (id >= slots_.size()) slots_.resize(id + 1, nullptr);
    slots_[id] = value;
  }
  void Clear() { slots_.clear(); }

 private:
  std::vector<T*> slots_;
};

}  // namespace stickmeter::teach
