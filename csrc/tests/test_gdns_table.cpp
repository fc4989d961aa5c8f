// gdns_table.h: home slot, probing, claiming an empty slot, eviction (largest G, lowest slot).
#include <vector>

#include "autosample/gdns_table.h"
#include "harness.h"

using namespace autosample;

namespace {
// Inserts item the way gdns_update does (claim, write key); returns the slot.
int64_t insert(std::vector<int64_t>& keys, std::vector<double>& g, int64_t item, double value) {
  bool found = false;
  const int64_t s = gdns_find_or_claim(keys.data(), g.data(), static_cast<int64_t>(keys.size()),
                                       item, &found);
  keys[s] = item;
  g[s] = value;
  return s;
}
}  // namespace

TEST(home_slot_is_the_murmur_finaliser_step) {
  // x ^= x >> 33; x *= 0xff51afd7ed558ccd; x ^= x >> 33; mod S.
  for (int64_t item : {int64_t{0}, int64_t{1}, int64_t{12345}, int64_t{1} << 40}) {
    uint64_t x = static_cast<uint64_t>(item);
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    for (int64_t s : {int64_t{1}, int64_t{7}, int64_t{256}}) {
      const int64_t home = gdns_home_slot(item, s);
      CHECK(home >= 0 && home < s);
      CHECK_EQ(home, static_cast<int64_t>(x % static_cast<uint64_t>(s)));
    }
  }
  CHECK_EQ(gdns_home_slot(0, 5), 0);
}

TEST(find_and_claim_probe_linearly) {
  const int64_t S = 8;
  std::vector<int64_t> keys(S, kEmptySlot);
  std::vector<double> g(S, 1.0);
  // Several items with the same home slot: they occupy consecutive slots (wrapping).
  std::vector<int64_t> same_home;
  const int64_t target = gdns_home_slot(1000, S);
  for (int64_t item = 1000; same_home.size() < 3; ++item) {
    if (gdns_home_slot(item, S) == target) same_home.push_back(item);
  }
  for (size_t i = 0; i < same_home.size(); ++i) {
    CHECK_EQ(gdns_find(keys.data(), S, same_home[i]), -1);
    CHECK_EQ(insert(keys, g, same_home[i], 0.5), (target + static_cast<int64_t>(i)) % S);
  }
  for (size_t i = 0; i < same_home.size(); ++i) {
    CHECK_EQ(gdns_find(keys.data(), S, same_home[i]), (target + static_cast<int64_t>(i)) % S);
    bool found = false;
    CHECK_EQ(gdns_find_or_claim(keys.data(), g.data(), S, same_home[i], &found),
             (target + static_cast<int64_t>(i)) % S);
    CHECK(found);
  }
}

TEST(full_table_evicts_largest_g_lowest_slot_on_ties) {
  const int64_t S = 4;
  std::vector<int64_t> keys = {10, 11, 12, 13};
  std::vector<double> g = {0.2, 0.9, 0.3, 0.9};
  bool found = true;
  CHECK_EQ(gdns_find(keys.data(), S, 99), -1);  // full table, absent item: every slot probed
  CHECK_EQ(gdns_find_or_claim(keys.data(), g.data(), S, 99, &found), 1);
  CHECK(!found);
  g[3] = 0.95;
  CHECK_EQ(gdns_find_or_claim(keys.data(), g.data(), S, 99, &found), 3);
  CHECK_EQ(gdns_find_or_claim(keys.data(), g.data(), S, 12, &found), 2);  // present: no eviction
  CHECK(found);
}

TEST(overwriting_keeps_other_probe_chains) {
  const int64_t S = 16;
  std::vector<int64_t> keys(S, kEmptySlot);
  std::vector<double> g(S, 0.0);
  for (int64_t item = 0; item < S; ++item) insert(keys, g, item * 7 + 3, 0.1 * item);
  // Table full; insert new items (each evicts the current largest G), then all others remain.
  for (int64_t extra = 0; extra < 5; ++extra) {
    int64_t victim = 0;
    for (int64_t j = 1; j < S; ++j) if (g[j] > g[victim]) victim = j;
    const int64_t evicted = keys[victim];
    CHECK_EQ(insert(keys, g, 1000 + extra, 0.0), victim);
    CHECK_EQ(gdns_find(keys.data(), S, evicted), -1);
    for (int64_t j = 0; j < S; ++j) CHECK_EQ(gdns_find(keys.data(), S, keys[j]), j);
  }
}

TEST_MAIN()
