// Dot product shared by the CPU and CUDA scoring kernels.
#pragma once
#include "autosample/common.h"

namespace autosample {

// <a, b> over d contiguous elements. Eight independent partial sums let the compiler vectorise
// the loop without -ffast-math; the summation order is fixed (lanes i mod 8, then a pairwise
// tree, then the tail), so CPU and CUDA give the same bits.
template <typename T>
AS_HD_INLINE T dot(const T* a, const T* b, int64_t d) {
  T s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
  int64_t i = 0;
  for (; i + 8 <= d; i += 8) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
    s4 += a[i + 4] * b[i + 4];
    s5 += a[i + 5] * b[i + 5];
    s6 += a[i + 6] * b[i + 6];
    s7 += a[i + 7] * b[i + 7];
  }
  T tail = 0;
  for (; i < d; ++i) tail += a[i] * b[i];
  return (((s0 + s4) + (s1 + s5)) + ((s2 + s6) + (s3 + s7))) + tail;
}

}  // namespace autosample
