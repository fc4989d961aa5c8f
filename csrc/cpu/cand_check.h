// Value errors found inside the kernels' parallel loops: the smallest bad row is remembered and
// its error raised after the loop, so the message names the first bad entry in row-major order
// (the order the CUDA kernels report in). Also: the check of candidate ids (kCandOutOfRange).
#pragma once
#include <c10/util/Exception.h>

#include <atomic>
#include <cstdint>
#include <limits>

#include "autosample/checks.h"

namespace autosample {
namespace cpu {

// true when every c[m], m < M, lies in [0, n).
inline bool ids_in_range(const int64_t* c, int64_t M, int64_t n) {
  bool ok = true;
  for (int64_t m = 0; m < M; ++m) ok &= static_cast<uint64_t>(c[m]) < static_cast<uint64_t>(n);
  return ok;
}

// Smallest row index flagged from several threads.
class FirstBadRow {
 public:
  void flag(int64_t row) {
    int64_t cur = row_.load(std::memory_order_relaxed);
    while (row < cur && !row_.compare_exchange_weak(cur, row, std::memory_order_relaxed)) {
    }
  }
  // The smallest flagged row, or -1 when none was flagged.
  int64_t row() const {
    const int64_t b = row_.load();
    return b == std::numeric_limits<int64_t>::max() ? -1 : b;
  }
  // Raises kCandOutOfRange (errors.h) for the first bad entry of the first flagged row.
  // cand: contiguous [B, M].
  void raise_if_any(Op op, const int64_t* cand, int64_t M, int64_t n) const {
    const int64_t b = row();
    if (b < 0) return;
    for (int64_t m = 0; m < M; ++m) {
      const int64_t v = cand[b * M + m];
      if (v < 0 || v >= n) {
        const int64_t vals[4] = {v, b, m, n};
        raise_value_error(op, Err::kCandOutOfRange, vals);
      }
    }
  }

 private:
  std::atomic<int64_t> row_{std::numeric_limits<int64_t>::max()};
};

}  // namespace cpu
}  // namespace autosample
