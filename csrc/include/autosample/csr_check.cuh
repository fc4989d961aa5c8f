// Warp-cooperative value checks of CSR rows for the CUDA kernels: the rules of validate.h, the
// same first bad entry as the CPU kernels' sequential scan, reported through an ErrorSink.
#pragma once
#include "autosample/cuda_utils.cuh"
#include "autosample/validate.h"

namespace autosample {
namespace cuda {

// Row `row_id` = indices[begin, end) (span already checked), ids in [0, n), strictly increasing.
// Called by all 32 lanes of a warp with the same arguments; returns the same value on every
// lane. On failure the lane holding the first bad entry reports it with ordering key `index`.
__device__ __forceinline__ bool warp_check_csr_row(const int64_t* __restrict__ indices,
                                                   int64_t begin, int64_t end, int64_t n,
                                                   int64_t row_id, int64_t index,
                                                   const ErrorSink& err) {
  const int lane = threadIdx.x % kWarp;
  const int64_t* row = indices + begin;
  for (int64_t p0 = 0; p0 < end - begin; p0 += kWarp) {
    const int64_t p = p0 + lane;
    const bool bad = p < end - begin && !csr_entry_ok(row, p, n);
    const unsigned m = __ballot_sync(kFullMask, bad);
    if (m != 0) {
      if (lane == __ffs(m) - 1) {
        if (csr_entry_error(row, p, n) == Err::kCsrEntryRange) {
          err.report(Err::kCsrEntryRange, index, row[p], row_id, begin + p, n);
        } else {
          err.report(Err::kCsrEntryOrder, index, row_id, row[p - 1], row[p], begin + p);
        }
      }
      return false;
    }
  }
  return true;
}

}  // namespace cuda
}  // namespace autosample
