// Warp-cooperative gather + dot products for score_candidates and score_topk.
//
// One warp owns one row b and walks its M candidates in chunks of 32. Within a chunk, groups of
// G lanes (G = lanes_per_dot(d / width), a power of two) each compute one dot product with
// coalesced 16-byte loads of the candidate's item row (VEC) or scalar loads; the chunk takes G
// steps of 32 / G candidates, and the result of candidate m0 + l is routed to lane l.
#pragma once
#include "autosample/cuda_utils.cuh"

namespace autosample {
namespace cuda {

struct ChunkScore {
  int64_t id;    // candidate item id (0 when invalid or out of range)
  bool valid;    // position m0 + lane < M
};

// Returns the score of candidate m0 + lane of row `cand_row` (length M) in `*score`; ids outside
// [0, N) are reported to err as flat index err_base + m and scored as item 0.
template <typename T, bool VEC>
__device__ __forceinline__ ChunkScore chunk_score(const T* __restrict__ u,
                                                  const T* __restrict__ items,
                                                  const int64_t* __restrict__ cand_row,
                                                  int64_t M, int64_t N, int64_t d, int G,
                                                  int64_t m0, int64_t err_base,
                                                  unsigned long long* err, T* score) {
  const int lane = threadIdx.x % kWarp;
  const int per_step = kWarp / G, t = lane % G, grp = lane / G;
  const int64_t m = m0 + lane;
  ChunkScore cs{0, m < M};
  if (cs.valid) {
    cs.id = __ldg(cand_row + m);
    if (cs.id < 0 || cs.id >= N) {
      report_error(err, err_base + m);
      cs.id = 0;
    }
  }
  T mine = T(0);
#pragma unroll 4
  for (int s = 0; s < G; ++s) {
    const int c = s * per_step + grp;  // candidate of this group in this step
    const int64_t cid = __shfl_sync(kFullMask, cs.id, c);
    const T part = (m0 + c < M) ? partial_dot<T, VEC>(u, items + cid * d, d, t, G) : T(0);
    const T sum = group_sum(part, G);
    const T got = __shfl_sync(kFullMask, sum, (lane % per_step) * G);
    if (lane / per_step == s) mine = got;
  }
  *score = mine;
  return cs;
}

}  // namespace cuda
}  // namespace autosample
