// Warp-cooperative gather + dot products for score_candidates and score_topk.
//
// Every dot product has the summation order of dot.h (the CPU kernels'), so CPU and CUDA scores
// are bit-identical: eight partial sums s_j = sum over 8-blocks m, in order, of a[8m+j] * b[8m+j]
// (separate multiply and add, no FMA contraction: __fmul_rn / __fadd_rn), combined as
// ((s0+s4)+(s1+s5))+((s2+s6)+(s3+s7)), plus the sequential tail of the last d % 8 elements.
// (The CPU side compiles dot.h without FMA: x86-64 baseline, no -ffast-math.)
//
// One warp owns one row b and walks its M candidates in chunks of 32. A group of G lanes computes
// one dot product: VEC (16-byte aligned rows, d % 4 == 0): lane h of the group loads the 16-byte
// vector h of every 8-block (float4: G = 2, double2: G = 4) and keeps the partial sums of its
// components; else G = 8 lanes, lane j keeps s_j with scalar loads. A chunk takes G steps of 32 / G
// candidates each; the result of candidate m0 + l is routed to lane l.
// FIXED (VEC and d = 8 * NB, NB a compile-time 4 or 8, i.e. d = 32 or 64): the user row lives in
// registers for the whole row (lane h holds its vectors h, h + G, ...: NB of them) and each dot
// issues its NB item loads before the first multiply, so a warp has NB 16-byte loads per lane in
// flight instead of a few; same products, same order, same bits.
#pragma once
#include "autosample/cuda_utils.cuh"

namespace autosample {
namespace cuda {

__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double add_rn(double a, double b) { return __dadd_rn(a, b); }

template <typename T, bool VEC>
struct DotGroup {
  static constexpr int lanes = VEC ? 8 / Vec16<T>::width : 8;
};

// The total over a group of the per-lane partial sums s[0..W), in dot.h's order. W = 4 (float,
// G = 2 lanes): lane 0 holds s0..s3, lane 1 holds s4..s7. W = 2 (double, G = 4 lanes): lane h
// holds s_{2h}, s_{2h+1}; lanes 0/2 pair into (s0+s4, s1+s5), lanes 1/3 into (s2+s6, s3+s7).
// Every lane of the group returns the same bits.
template <typename T, int W>
__device__ __forceinline__ T group_total(const T (&s)[W]) {
  if constexpr (W == 4) {
    T p[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) p[j] = s[j] + __shfl_xor_sync(kFullMask, s[j], 1);
    return (p[0] + p[1]) + (p[2] + p[3]);
  } else {
    const T p0 = s[0] + __shfl_xor_sync(kFullMask, s[0], 2);
    const T p1 = s[1] + __shfl_xor_sync(kFullMask, s[1], 2);
    const T q = p0 + p1;
    return q + __shfl_xor_sync(kFullMask, q, 1);
  }
}

// <u, v> over d elements in dot.h's order, by the G = DotGroup<T, VEC>::lanes lanes of an aligned
// group; t = lane % G. Every lane of the group returns the same bits.
template <typename T, bool VEC>
__device__ __forceinline__ T group_dot(const T* __restrict__ u, const T* __restrict__ v,
                                       int64_t d, int t) {
  const int64_t blocks = d / 8;
  T total;
  if constexpr (VEC) {
    using V = typename Vec16<T>::type;
    constexpr int W = Vec16<T>::width, G = 8 / W;
    const V* uv = reinterpret_cast<const V*>(u) + t;
    const V* vv = reinterpret_cast<const V*>(v) + t;
    T s[W];
#pragma unroll
    for (int j = 0; j < W; ++j) s[j] = T(0);
#pragma unroll 4
    for (int64_t m = 0; m < blocks; ++m) {
      const V a = __ldg(uv + m * G), b = __ldg(vv + m * G);
      if constexpr (W == 4) {
        s[0] = add_rn(s[0], mul_rn(a.x, b.x));
        s[1] = add_rn(s[1], mul_rn(a.y, b.y));
        s[2] = add_rn(s[2], mul_rn(a.z, b.z));
        s[3] = add_rn(s[3], mul_rn(a.w, b.w));
      } else {
        s[0] = add_rn(s[0], mul_rn(a.x, b.x));
        s[1] = add_rn(s[1], mul_rn(a.y, b.y));
      }
    }
    total = group_total<T, W>(s);
  } else {
    T s = T(0);
#pragma unroll 4
    for (int64_t m = 0; m < blocks; ++m) s = add_rn(s, mul_rn(__ldg(u + 8 * m + t), __ldg(v + 8 * m + t)));
    s = s + __shfl_xor_sync(kFullMask, s, 4);  // s_j + s_{j+4}
    s = s + __shfl_xor_sync(kFullMask, s, 1);  // (s0+s4)+(s1+s5), (s2+s6)+(s3+s7)
    total = s + __shfl_xor_sync(kFullMask, s, 2);
  }
  T tail = T(0);
  for (int64_t i = blocks * 8; i < d; ++i) tail = add_rn(tail, mul_rn(__ldg(u + i), __ldg(v + i)));
  return total + tail;
}

// The FIXED path: user vectors of lane t of a group (its share of the row) ...
template <typename T, int NB>
struct UserRegs {
  using V = typename Vec16<T>::type;
  static constexpr int G = 8 / Vec16<T>::width;
  V u[NB];
  __device__ __forceinline__ void load(const T* __restrict__ row, int t) {
    const V* uv = reinterpret_cast<const V*>(row) + t;
#pragma unroll
    for (int m = 0; m < NB; ++m) u[m] = __ldg(uv + m * G);
  }
};

// ... and <u, v> in dot.h's order (as group_dot<T, true> with d = 8 * NB), all loads first.
template <typename T, int NB>
__device__ __forceinline__ T group_dot_fixed(const UserRegs<T, NB>& ur, const T* __restrict__ v,
                                             int t) {
  using V = typename Vec16<T>::type;
  constexpr int W = Vec16<T>::width, G = 8 / W;
  const V* vv = reinterpret_cast<const V*>(v) + t;
  V b[NB];
#pragma unroll
  for (int m = 0; m < NB; ++m) b[m] = __ldg(vv + m * G);
  T s[W];
#pragma unroll
  for (int j = 0; j < W; ++j) s[j] = T(0);
#pragma unroll
  for (int m = 0; m < NB; ++m) {
    const V a = ur.u[m];
    if constexpr (W == 4) {
      s[0] = add_rn(s[0], mul_rn(a.x, b[m].x));
      s[1] = add_rn(s[1], mul_rn(a.y, b[m].y));
      s[2] = add_rn(s[2], mul_rn(a.z, b[m].z));
      s[3] = add_rn(s[3], mul_rn(a.w, b[m].w));
    } else {
      s[0] = add_rn(s[0], mul_rn(a.x, b[m].x));
      s[1] = add_rn(s[1], mul_rn(a.y, b[m].y));
    }
  }
  const T total = group_total<T, W>(s);
  return add_rn(total, T(0));  // dot.h adds its (empty) tail: -0 becomes +0 there too
}

struct ChunkScore {
  int64_t id;    // candidate item id (0 when invalid or out of range)
  bool valid;    // position m0 + lane < M
};

// Returns in *score the score of candidate m0 + lane of row b's candidates `cand_row` (length
// M); ids outside [0, N) are reported (kCandOutOfRange, index b * M + m) and scored as item 0.
// dot_of(cid, t) is the group dot product with item cid (G lanes per group).
template <typename T, int G, typename DotOf>
__device__ __forceinline__ ChunkScore chunk_score_with(const int64_t* __restrict__ cand_row,
                                                       int64_t b, int64_t M, int64_t N, int64_t m0,
                                                       const ErrorSink& err, T* score,
                                                       DotOf dot_of) {
  constexpr int per_step = kWarp / G;
  const int lane = threadIdx.x % kWarp, t = lane % G, grp = lane / G;
  const int64_t m = m0 + lane;
  ChunkScore cs{0, m < M};
  if (cs.valid) {
    cs.id = __ldg(cand_row + m);
    if (cs.id < 0 || cs.id >= N) {
      err.report(Err::kCandOutOfRange, b * M + m, cs.id, b, m, N);
      cs.id = 0;
    }
  }
  T mine = T(0);
#pragma unroll
  for (int s = 0; s < G; ++s) {
    const int c = s * per_step + grp;  // candidate of this group in this step
    const int64_t cid = __shfl_sync(kFullMask, cs.id, c);
    // Groups past M compute a dot with item 0 (cid = 0): keeps the group's shuffles converged.
    const T dot = dot_of(cid, t);
    const T got = __shfl_sync(kFullMask, dot, (lane % per_step) * G);
    if (lane / per_step == s) mine = got;
  }
  *score = mine;
  return cs;
}

// The scores of one row's candidates, chunk by chunk: visit(m0, chunk_score, score) for each
// chunk of 32. NB = 0: group_dot<T, VEC> over a run-time d; NB > 0: the FIXED path (VEC,
// d = 8 * NB, user row in registers).
template <typename T, bool VEC, int NB, typename Visit>
__device__ __forceinline__ void score_row(const T* __restrict__ u, const T* __restrict__ items,
                                          const int64_t* __restrict__ cand_row, int64_t b,
                                          int64_t M, int64_t N, int64_t d, const ErrorSink& err,
                                          Visit visit) {
  if constexpr (NB > 0) {
    static_assert(VEC, "the fixed-width path reads 16-byte vectors");
    constexpr int G = UserRegs<T, NB>::G;
    UserRegs<T, NB> ur;
    ur.load(u, static_cast<int>(threadIdx.x % kWarp) % G);
    for (int64_t m0 = 0; m0 < M; m0 += kWarp) {
      T s;
      const ChunkScore cs = chunk_score_with<T, G>(
          cand_row, b, M, N, m0, err, &s,
          [&](int64_t cid, int t) { return group_dot_fixed<T, NB>(ur, items + cid * (8 * NB), t); });
      visit(m0, cs, s);
    }
  } else {
    constexpr int G = DotGroup<T, VEC>::lanes;
    for (int64_t m0 = 0; m0 < M; m0 += kWarp) {
      T s;
      const ChunkScore cs = chunk_score_with<T, G>(
          cand_row, b, M, N, m0, err, &s,
          [&](int64_t cid, int t) { return group_dot<T, VEC>(u, items + cid * d, d, t); });
      visit(m0, cs, s);
    }
  }
}

// The variant for d and the pointers: NB = 8 (d = 64) or 4 (d = 32) when 16-byte aligned.
template <typename T>
inline int fixed_blocks(const void* user, const void* items, int64_t d) {
  const bool vec = can_vectorise<T>(user, d) && can_vectorise<T>(items, d);
  return vec && (d == 64 || d == 32) ? static_cast<int>(d / 8) : 0;
}

}  // namespace cuda
}  // namespace autosample
