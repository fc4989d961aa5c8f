// Warp-level bounded top-k for the CUDA kernels (select_topk, score_topk, rank_topk).
//
// WarpTopK<T, I, KW> holds the current best (at most 32*KW) (key, index) pairs of one warp in
// registers, sorted in the canonical order of topk.h (ranks_before: NaN first, larger key, ties
// to the smaller index): entry i lives in lane i % 32, register i / 32. Empty entries hold the
// sentinel (-inf, max I), which every real pair ranks before, so no size is tracked.
// offer() takes one candidate per lane (32 at a time): lanes that beat the current k-th entry
// (the threshold) are inserted one by one, each insertion a ballot (position) plus a one-lane
// shift by shuffles. After the first few chunks almost every chunk is rejected by one ballot.
#pragma once
#include <ATen/ops/sort.h>

#include <limits>

#include "autosample/cuda_utils.cuh"
#include "autosample/topk.h"

namespace autosample {
namespace cuda {

constexpr int kMaxWarpK = 128;  // larger k: callers fall back to a stable device sort

template <typename T, typename I, int KW>
struct WarpTopK {
  T key[KW];
  I idx[KW];
  T thr_key;
  I thr_idx;
  int k;     // 1 <= k <= 32 * KW
  int lane;

  __device__ __forceinline__ explicit WarpTopK(int k_) : k(k_), lane(threadIdx.x % kWarp) {
#pragma unroll
    for (int j = 0; j < KW; ++j) {
      key[j] = -std::numeric_limits<T>::infinity();
      idx[j] = std::numeric_limits<I>::max();
    }
    thr_key = key[0];
    thr_idx = idx[0];
  }

  __device__ __forceinline__ void refresh_threshold() {
    const int jk = (k - 1) / kWarp, lk = (k - 1) % kWarp;
    T tk = key[0];
    I ti = idx[0];
#pragma unroll
    for (int j = 1; j < KW; ++j) {
      if (j == jk) { tk = key[j]; ti = idx[j]; }
    }
    thr_key = __shfl_sync(kFullMask, tk, lk);
    thr_idx = __shfl_sync(kFullMask, ti, lk);
  }

  // Inserts (nk, ni), warp-uniform, known to rank before the current k-th entry.
  __device__ __forceinline__ void insert(T nk, I ni) {
    int pos = 0;
#pragma unroll
    for (int j = 0; j < KW; ++j)
      pos += __popc(__ballot_sync(kFullMask, ranks_before(key[j], idx[j], nk, ni)));
    T prev_k[KW];
    I prev_i[KW];
#pragma unroll
    for (int j = 0; j < KW; ++j) {
      prev_k[j] = __shfl_up_sync(kFullMask, key[j], 1);
      prev_i[j] = __shfl_up_sync(kFullMask, idx[j], 1);
      if (j > 0) {
        const T wk = __shfl_sync(kFullMask, key[j - 1], kWarp - 1);
        const I wi = __shfl_sync(kFullMask, idx[j - 1], kWarp - 1);
        if (lane == 0) { prev_k[j] = wk; prev_i[j] = wi; }
      }
    }
#pragma unroll
    for (int j = 0; j < KW; ++j) {
      const int i = lane + kWarp * j;
      if (i == pos) { key[j] = nk; idx[j] = ni; }
      else if (i > pos) { key[j] = prev_k[j]; idx[j] = prev_i[j]; }
    }
    refresh_threshold();
  }

  // Every lane of the warp calls this with its own candidate; valid=false lanes offer nothing.
  __device__ __forceinline__ void offer(T ck, I ci, bool valid) {
    bool want = valid && ranks_before(ck, ci, thr_key, thr_idx);
    unsigned m = __ballot_sync(kFullMask, want);
    while (m) {
      const int src = __ffs(m) - 1;
      const T nk = __shfl_sync(kFullMask, ck, src);
      const I ni = __shfl_sync(kFullMask, ci, src);
      insert(nk, ni);
      want = want && lane != src && ranks_before(ck, ci, thr_key, thr_idx);
      m = __ballot_sync(kFullMask, want);
    }
  }

  // Writes the first k entries: out_key[i], out_idx[i] = map(idx) for i < k.
  template <typename Map>
  __device__ __forceinline__ void write(T* out_key, int64_t* out_idx, Map map) const {
#pragma unroll
    for (int j = 0; j < KW; ++j) {
      const int i = lane + kWarp * j;
      if (i < k) {
        out_key[i] = key[j];
        out_idx[i] = map(idx[j]);
      }
    }
  }
};

// select_topk: one warp per row of keys (element (b, m) at keys[b*sb + m], rows contiguous:
// the host makes them so, each warp load is one 128-byte run); writes values [B, k] and
// positions [B, k] (contiguous). 1 <= k <= 32*KW. The next chunk's keys are loaded before the
// current chunk is offered, so a load is in flight while the ballots run.
template <typename T, int KW>
__global__ void select_topk_kernel(const T* __restrict__ keys, int64_t B, int64_t M, int64_t sb,
                                   int k, T* __restrict__ out_v, int64_t* __restrict__ out_p) {
  const int64_t row = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
  if (row >= B) return;  // warp-uniform
  WarpTopK<T, int64_t, KW> top(k);
  const T* rk = keys + row * sb;
  T next = top.lane < M ? __ldg(rk + top.lane) : T(0);
  for (int64_t m0 = 0; m0 < M; m0 += kWarp) {
    const int64_t m = m0 + top.lane;
    const T v = next;
    next = m + kWarp < M ? __ldg(rk + m + kWarp) : T(0);
    top.offer(v, m, m < M);
  }
  top.write(out_v + row * k, out_p + row * k, [](int64_t p) { return p; });
}

// Launches select_topk_kernel on the current stream; requires 1 <= k <= kMaxWarpK and rows
// with unit stride.
template <typename T>
inline void launch_select_topk(const T* keys, int64_t B, int64_t M, int64_t sb, int64_t k,
                               T* out_v, int64_t* out_p) {
  constexpr int threads = 128;
  const auto blocks = static_cast<unsigned>(ceil_div(B * kWarp, threads));
  auto stream = at::cuda::getCurrentCUDAStream();
  const int kk = static_cast<int>(k);
  if (k <= 32) {
    select_topk_kernel<T, 1><<<blocks, threads, 0, stream>>>(keys, B, M, sb, kk, out_v, out_p);
  } else if (k <= 64) {
    select_topk_kernel<T, 2><<<blocks, threads, 0, stream>>>(keys, B, M, sb, kk, out_v, out_p);
  } else {
    select_topk_kernel<T, 4><<<blocks, threads, 0, stream>>>(keys, B, M, sb, kk, out_v, out_p);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// Canonical top-k of each row of a [B, M] device tensor by a stable descending sort (NaN first,
// ties by position), for k > kMaxWarpK.
inline std::tuple<at::Tensor, at::Tensor> sort_topk(const at::Tensor& keys, int64_t k) {
  auto sorted = at::sort(keys, /*stable=*/true, /*dim=*/1, /*descending=*/true);
  return {std::get<0>(sorted).narrow(1, 0, k).contiguous(),
          std::get<1>(sorted).narrow(1, 0, k).contiguous()};
}

}  // namespace cuda
}  // namespace autosample
