// gdns_table.h: home slot, probing, claiming an empty slot, the default gain of a full row and
// eviction (the entry closest to it, lowest slot on ties), and the two row layouts.
#include <vector>

#include "autosample/gdns_table.h"
#include "harness.h"

using namespace autosample;

namespace {
// Inserts item the way gdns_update does (claim, write key); returns the slot.
int64_t insert(std::vector<int64_t>& keys, std::vector<double>& g, int64_t item, double value) {
  bool found = false;
  double g_absent = 0.0;
  const int64_t s = gdns_find_or_claim(keys.data(), g.data(), static_cast<int64_t>(keys.size()),
                                       item, &found, &g_absent);
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
    double g_absent = 0.0;
    CHECK_EQ(gdns_find_or_claim(keys.data(), g.data(), S, same_home[i], &found, &g_absent),
             (target + static_cast<int64_t>(i)) % S);
    CHECK(found);
  }
}

TEST(default_gain_is_one_with_an_empty_slot_else_the_mean) {
  std::vector<int64_t> keys = {10, kEmptySlot, 12, 13};
  std::vector<double> g = {0.2, 1.0, 0.3, 0.9};
  CHECK_EQ(gdns_default_gain(keys.data(), g.data(), 4), 1.0);
  keys[1] = 11;
  g[1] = 0.9;
  CHECK_EQ(gdns_default_gain(keys.data(), g.data(), 4), (0.2 + 0.9 + 0.3 + 0.9) / 4);
}

TEST(full_table_evicts_the_entry_closest_to_the_mean_lowest_slot_on_ties) {
  const int64_t S = 4;
  std::vector<int64_t> keys = {10, 11, 12, 13};
  std::vector<double> g = {0.2, 0.9, 0.3, 0.9};  // mean 0.575: 0.3 is closest
  bool found = true;
  double g_absent = 0.0;
  CHECK_EQ(gdns_find(keys.data(), S, 99), -1);  // full table, absent item: every slot probed
  CHECK_EQ(gdns_find_or_claim(keys.data(), g.data(), S, 99, &found, &g_absent), 2);
  CHECK(!found);
  CHECK_EQ(g_absent, (0.2 + 0.9 + 0.3 + 0.9) / 4);
  g = {0.4, 0.6, 0.4, 0.6};  // every entry 0.1 from the mean: the lowest slot
  CHECK_EQ(gdns_find_or_claim(keys.data(), g.data(), S, 99, &found, &g_absent), 0);
  CHECK_EQ(gdns_find_or_claim(keys.data(), g.data(), S, 12, &found, &g_absent), 2);  // present
  CHECK(found);
}

TEST(overwriting_keeps_other_probe_chains) {
  const int64_t S = 16;
  std::vector<int64_t> keys(S, kEmptySlot);
  std::vector<double> g(S, 0.0);
  for (int64_t item = 0; item < S; ++item) insert(keys, g, item * 7 + 3, 0.1 * item);
  // Table full; insert new items (each evicts the entry closest to the mean), others remain.
  for (int64_t extra = 0; extra < 5; ++extra) {
    const double mean = gdns_default_gain(keys.data(), g.data(), S);
    const int64_t victim = gdns_victim(g.data(), S, mean);
    const int64_t evicted = keys[victim];
    CHECK_EQ(insert(keys, g, 1000 + extra, 5.0), victim);
    CHECK_EQ(gdns_find(keys.data(), S, evicted), -1);
    for (int64_t j = 0; j < S; ++j) CHECK_EQ(gdns_find(keys.data(), S, keys[j]), j);
  }
}

TEST(rows_apply_the_gain_formula) {
  // Dense: H_old = G_old = 1 for a fresh pair, then the stored values.
  std::vector<double> h(3, 1.0), g(3, 1.0);
  const GdnsDenseRow<double> dense{h.data(), g.data()};
  dense.apply(1, 0.25, 0.2, 1e-8);
  CHECK_EQ(g[1], gdns_next_gain(1.0, 1.0, 0.25, 0.2, 1e-8));
  CHECK_EQ(h[1], 0.25);
  dense.apply(1, 0.5, 0.2, 1e-8);
  CHECK_EQ(g[1], gdns_next_gain(gdns_next_gain(1.0, 1.0, 0.25, 0.2, 1e-8), 0.25, 0.5, 0.2, 1e-8));
  CHECK_EQ(g[0], 1.0);
  // Slots: the same sequence while the row has room.
  std::vector<int64_t> keys(4, kEmptySlot);
  std::vector<double> sh(4, 1.0), sg(4, 1.0);
  const GdnsSlotRow<double> slot{keys.data(), sh.data(), sg.data(), 4};
  slot.apply(1, 0.25, 0.2, 1e-8);
  slot.apply(1, 0.5, 0.2, 1e-8);
  CHECK_EQ(slot.gain(1, 1.0), g[1]);
  CHECK_EQ(slot.gain(7, 1.0), 1.0);
  // H_new: the mean over the positives of sigmoid(neg - pos).
  const double pos[2] = {0.0, 1.0};
  CHECK_EQ(gdns_h_new(0.5, pos, 2), (sigmoid(0.5) + sigmoid(-0.5)) / 2);
}

TEST_MAIN()
