// Bounded top-k with the canonical order (docs/design.md):
//   larger key first; equal keys -> smaller index first; NaN ranks above every number
//   (as torch.topk / torch.sort(descending=True) do), NaNs among themselves by index.
#pragma once
#include "autosample/common.h"

namespace autosample {

template <typename T>
AS_HD bool key_is_nan(T x) { return x != x; }

// true when (ka, ia) comes strictly before (kb, ib) in the canonical order.
template <typename T, typename I>
AS_HD bool ranks_before(T ka, I ia, T kb, I ib) {
  const bool na = key_is_nan(ka), nb = key_is_nan(kb);
  if (na || nb) {
    if (na != nb) return na;
    return ia < ib;
  }
  if (ka != kb) return ka > kb;
  return ia < ib;
}

// A sorted list of at most k (key, index) pairs, best first, in caller-provided storage.
// push() keeps the k best seen so far; O(k) per insertion, meant for small k.
template <typename T, typename I>
struct BoundedTopK {
  T* keys;
  I* idx;
  int64_t k;
  int64_t size;

  AS_HD BoundedTopK(T* keys_, I* idx_, int64_t k_) : keys(keys_), idx(idx_), k(k_), size(0) {}

  // true if (key, id) would enter the current list (never when k == 0).
  AS_HD bool admits(T key, I id) const {
    return size < k || (size > 0 && ranks_before(key, id, keys[size - 1], idx[size - 1]));
  }

  AS_HD void push(T key, I id) {
    if (!admits(key, id)) return;
    int64_t pos = size < k ? size++ : k - 1;
    while (pos > 0 && ranks_before(key, id, keys[pos - 1], idx[pos - 1])) {
      keys[pos] = keys[pos - 1];
      idx[pos] = idx[pos - 1];
      --pos;
    }
    keys[pos] = key;
    idx[pos] = id;
  }
};

}  // namespace autosample
