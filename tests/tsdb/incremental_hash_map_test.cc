// The per-key maps of the store: elements stay put while the map grows, and every element is
// found and visited exactly once while one map is being emptied into the other.
#include "tsdb/incremental_hash_map.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace stickmeter::tsdb {
namespace {

TEST(IncrementalHashMapTest, ElementsKeepTheirAddressesAndValuesWhileGrowing) {
  IncrementalHashMap<uint64_t, uint64_t> map;
  constexpr uint64_t kCount = 100'000;
  std::vector<const std::pair<const uint64_t, uint64_t>*> addresses;
  for (uint64_t k = 0; k < kCount; ++k) {
    auto [element, inserted] = map.TryEmplace(k * 7919, k);
    ASSERT_TRUE(inserted) << k;
    addresses.push_back(element);
    ASSERT_EQ(k + 1, map.size());
  }
  for (uint64_t k = 0; k < kCount; ++k) {
    const auto* found = map.Find(k * 7919);
    ASSERT_NE(nullptr, found) << k;
    EXPECT_EQ(addresses[k], found) << k;
    EXPECT_EQ(k, found->second);
  }
  EXPECT_EQ(nullptr, map.Find(uint64_t{1}));
}

TEST(IncrementalHashMapTest, AnExistingKeyIsNotReplaced) {
  IncrementalHashMap<uint64_t, uint64_t> map;
  for (uint64_t k = 0; k < 1000; ++k) map.TryEmplace(k, k);
  // Every key again, including those still in the map being emptied.
  for (uint64_t k = 0; k < 1000; ++k) {
    auto [element, inserted] = map.TryEmplace(k, 999'999);
    EXPECT_FALSE(inserted) << k;
    EXPECT_EQ(k, element->second) << k;
  }
  EXPECT_EQ(1000u, map.size());
}

TEST(IncrementalHashMapTest, ForEachVisitsEveryElementOnceInTheMiddleOfGrowing) {
  IncrementalHashMap<uint64_t, uint64_t> map;
  // Every size up to 2,000 passes through several growth steps, and through the inserts while
  // the old map still holds some of the elements.
  for (uint64_t count = 1; count <= 2000; ++count) {
    while (map.size() < count) map.TryEmplace(map.size(), map.size() * 3);
    std::vector<int> seen(count, 0);
    map.ForEach([&](uint64_t k, uint64_t v) {
      ASSERT_LT(k, count);
      EXPECT_EQ(k * 3, v);
      ++seen[k];
    });
    for (uint64_t k = 0; k < count; ++k) EXPECT_EQ(1, seen[k]) << "key " << k << " of " << count;
  }
}

TEST(IncrementalHashMapTest, MoveSomeEmptiesTheOldMapWithoutInsertions) {
  using Map = IncrementalHashMap<uint64_t, uint64_t>;
  Map map;
  uint64_t count = 0;
  while (!map.Growing() || count < 1000) {
    map.TryEmplace(count, count);
    ++count;
  }
  EXPECT_TRUE(map.Growing());
  size_t calls = 0;
  while (map.Growing()) {
    map.MoveSome();
    ++calls;
  }
  // Two nodes a call, and the old map held at most the elements inserted so far.
  EXPECT_LE(calls, count / Map::kMovesPerInsert + 1);
  for (uint64_t k = 0; k < count; ++k) {
    const auto* found = map.Find(k);
    ASSERT_NE(nullptr, found) << k;
    EXPECT_EQ(k, found->second);
  }
  EXPECT_EQ(count, map.size());
}

struct TextHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
};

TEST(IncrementalHashMapTest, StringKeysAreFoundByView) {
  IncrementalHashMap<std::string, uint32_t, TextHash, std::equal_to<>> map;
  for (uint32_t i = 0; i < 3000; ++i) map.TryEmplace("tenant-" + std::to_string(i), i);
  for (uint32_t i = 0; i < 3000; ++i) {
    const std::string text = "tenant-" + std::to_string(i);
    const auto* found = map.Find(std::string_view(text));
    ASSERT_NE(nullptr, found) << text;
    EXPECT_EQ(i, found->second);
  }
  EXPECT_EQ(nullptr, map.Find(std::string_view("tenant-3000")));
}

}  // namespace
}  // namespace stickmeter::tsdb
