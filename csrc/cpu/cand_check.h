// Value check of candidate ids, done row by row inside the kernels' parallel loops (the row is
// read anyway); the error, raised after the loop, names the first bad entry in row-major order.
#pragma once
#include <ATen/ATen.h>

#include <atomic>
#include <cstdint>
#include <limits>

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
  // Raises naming op, argument 'cand', the entry and its value if a row was flagged.
  // cand: contiguous [B, M].
  void raise_if_any(const char* op, const int64_t* cand, int64_t M, int64_t n) const {
    const int64_t b = row_.load();
    if (b == std::numeric_limits<int64_t>::max()) return;
    for (int64_t m = 0; m < M; ++m) {
      const int64_t v = cand[b * M + m];
      TORCH_CHECK(v >= 0 && v < n, "autosample::", op, ": argument 'cand' must hold item ids in "
                  "[0, N) with N = ", n, ", got cand[", b, ", ", m, "] = ", v);
    }
  }

 private:
  std::atomic<int64_t> row_{std::numeric_limits<int64_t>::max()};
};

}  // namespace cpu
}  // namespace autosample
