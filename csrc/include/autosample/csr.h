// Searches in one sorted CSR row: row[0..len) ascending, no duplicates.
#pragma once
#include "autosample/common.h"

namespace autosample {

// First position p in [0, len) with row[p] >= value, or len.
template <typename I>
AS_HD int64_t lower_bound(const I* row, int64_t len, I value) {
  int64_t lo = 0, hi = len;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (row[mid] < value) lo = mid + 1; else hi = mid;
  }
  return lo;
}

template <typename I>
AS_HD bool row_contains(const I* row, int64_t len, I value) {
  int64_t p = lower_bound(row, len, value);
  return p < len && row[p] == value;
}

// The r-th smallest id in [0, n) that is NOT in row (0 <= r < n - len).
// Non-members below row[i] number row[i] - i, which is non-decreasing in i, so the answer is
// r + (count of i with row[i] - i <= r), found by binary search: O(log len), no rejection.
template <typename I>
AS_HD I rank_to_non_member(const I* row, int64_t len, I r) {
  int64_t lo = 0, hi = len;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (row[mid] - static_cast<I>(mid) <= r) lo = mid + 1; else hi = mid;
  }
  return r + static_cast<I>(lo);
}

}  // namespace autosample
