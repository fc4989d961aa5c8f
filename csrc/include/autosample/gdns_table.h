// GDNS state (docs/search.md, "GDNS state"): H and G of (user, item) pairs, in one of two layouts, and
// the rules both devices apply to them. The formulas of H and G are in math.h.
//
// Dense layout (the paper's exact gain): h, g [U, I]; row u is user u's H and G of every item;
// a pair never selected holds H = G = 1.
//
// Slot layout (a named approximation for data too large for the dense table): for user u,
// slots [u*S, (u+1)*S) hold (item key, H, G); key -1 marks an empty slot. Open addressing with
// linear probing from home(item) = mix(item) mod S. Entries are never deleted, so an empty slot
// ends every probe.
//   * Absent pair, row with an empty slot: nothing was ever evicted from the row, so the pair
//     was never selected: it reads G = 1 and is inserted with H_old = G_old = 1, exactly as in
//     the dense layout (with S above the number of distinct items a user has had selected, the
//     two layouts agree exactly).
//   * Absent pair, full row: the pair may have been evicted; its gain is unknown. It reads the
//     row's DEFAULT GAIN, the mean G of the row's S entries (summed in slot order in double),
//     so that an unknown pair neither wins nor loses against the measured ones by construction.
//     It is inserted with G_old = that default and H_old = 1 (a pair the table does not know is
//     treated as first seen).
//   * Eviction (full row, new item): the entry whose G is CLOSEST to the row's default gain is
//     overwritten (ties: the lowest slot). A forgotten pair reads the default again, so the
//     victim is the entry whose reads change least; the entries kept are the informative ones
//     (gains far above the default, which the selection prefers, and far below, which it
//     avoids). Overwriting never creates an empty slot, so the probe chains stay intact.
#pragma once
#include "autosample/common.h"
#include "autosample/math.h"

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

// The gain an absent pair of this row reads: 1 while the row has an empty slot, else the mean G
// of its entries (summed in slot order, in double).
template <typename T>
AS_HD T gdns_default_gain(const int64_t* keys, const T* g, int64_t num_slots) {
  double acc = 0.0;
  for (int64_t j = 0; j < num_slots; ++j) {
    if (keys[j] == kEmptySlot) return T(1);
    acc += static_cast<double>(g[j]);
  }
  return static_cast<T>(acc / static_cast<double>(num_slots));
}

// The entry of a full row closest to the default gain d (lowest slot on ties).
template <typename T>
AS_HD int64_t gdns_victim(const T* g, int64_t num_slots, T d) {
  int64_t victim = 0;
  T best = g[0] > d ? g[0] - d : d - g[0];
  for (int64_t j = 1; j < num_slots; ++j) {
    const T dist = g[j] > d ? g[j] - d : d - g[j];
    if (dist < best) {
      best = dist;
      victim = j;
    }
  }
  return victim;
}

// Slot where item lives or will be written: its own slot (*found = true), else the first empty
// slot on its probe path, else the eviction victim. *g_absent: the G an absent pair starts from
// (1 for an empty slot, the row's default gain when the row is full).
template <typename T>
AS_HD int64_t gdns_find_or_claim(const int64_t* keys, const T* g, int64_t num_slots,
                                 int64_t item, bool* found, T* g_absent) {
  int64_t s = gdns_home_slot(item, num_slots);
  *found = false;
  *g_absent = T(1);
  for (int64_t probe = 0; probe < num_slots; ++probe) {
    const int64_t key = keys[s];
    if (key == item) {
      *found = true;
      return s;
    }
    if (key == kEmptySlot) return s;
    s = (s + 1 == num_slots) ? 0 : s + 1;
  }
  *g_absent = gdns_default_gain(keys, g, num_slots);
  return gdns_victim(g, num_slots, *g_absent);
}

// One user's row in the slot layout: the gain a pair reads and the update of one selected pair.
template <typename T>
struct GdnsSlotRow {
  int64_t* keys;
  T* h;
  T* g;
  int64_t num_slots;

  // `dflt`: gdns_default_gain of the row (callers compute it once per row).
  AS_HD T gain(int64_t item, T dflt) const {
    const int64_t s = gdns_find(keys, num_slots, item);
    return s >= 0 ? g[s] : dflt;
  }

  AS_HD void apply(int64_t item, T h_new, T alpha, T eps) const {
    bool found = false;
    T g_absent = T(1);
    const int64_t s = gdns_find_or_claim(keys, g, num_slots, item, &found, &g_absent);
    const T h_old = found ? h[s] : T(1), g_old = found ? g[s] : g_absent;
    keys[s] = item;
    g[s] = gdns_next_gain(g_old, h_old, h_new, alpha, eps);
    h[s] = h_new;
  }
};

// One user's row in the dense layout (items in [0, I), checked by the ops).
template <typename T>
struct GdnsDenseRow {
  T* h;
  T* g;

  AS_HD T gain(int64_t item) const { return g[item]; }

  AS_HD void apply(int64_t item, T h_new, T alpha, T eps) const {
    g[item] = gdns_next_gain(g[item], h[item], h_new, alpha, eps);
    h[item] = h_new;
  }
};

}  // namespace autosample
