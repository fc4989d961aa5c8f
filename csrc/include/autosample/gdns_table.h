// GDNS per-user slot table (DESIGN.md §3): for user u, slots [u*S, (u+1)*S) hold
// (item key, H, G); key -1 marks an empty slot. Open addressing with linear probing from
// home(item) = mix(item) mod S. Entries are never deleted, so an empty slot ends every probe.
//
// Eviction (table full, new item): the entry with the LARGEST G is overwritten (ties: the
// lowest slot). A forgotten pair reads G = 1 again, the largest value G can take, so the entry
// whose value is closest to 1 is the one whose loss changes the selection least. Overwriting
// never creates an empty slot, so the probe chains of the other keys stay intact.
#pragma once
#include "autosample/common.h"

namespace autosample {

constexpr int64_t kEmptySlot = -1;

AS_HD int64_t gdns_home_slot(int64_t item, int64_t num_slots) {
  uint64_t x = static_cast<uint64_t>(item);
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return static_cast<int64_t>(x % static_cast<uint64_t>(num_slots));
}

// Slot of item in one user's row of keys, or -1 when absent.
AS_HD int64_t gdns_find(const int64_t* keys, int64_t num_slots, int64_t item) {
  int64_t s = gdns_home_slot(item, num_slots);
  for (int64_t probe = 0; probe < num_slots; ++probe) {
    const int64_t key = keys[s];
    if (key == item) return s;
    if (key == kEmptySlot) return -1;
    s = (s + 1 == num_slots) ? 0 : s + 1;
  }
  return -1;
}

// Slot where item lives or will be written: its own slot, else the first empty slot on its
// probe path, else the eviction victim (largest G, lowest slot on ties). *found tells which.
template <typename T>
AS_HD int64_t gdns_find_or_claim(const int64_t* keys, const T* g, int64_t num_slots,
                                 int64_t item, bool* found) {
  int64_t s = gdns_home_slot(item, num_slots);
  for (int64_t probe = 0; probe < num_slots; ++probe) {
    const int64_t key = keys[s];
    if (key == item) { *found = true; return s; }
    if (key == kEmptySlot) { *found = false; return s; }
    s = (s + 1 == num_slots) ? 0 : s + 1;
  }
  int64_t victim = 0;
  for (int64_t j = 1; j < num_slots; ++j) {
    if (g[j] > g[victim]) victim = j;
  }
  *found = false;
  return victim;
}

}  // namespace autosample
