// CSR row products on CUDA (spmm, graph_propagate), in spmm.h's summation order.
//
// A group of G lanes (G in {8, 16, 32}, aligned within its warp) owns one row; lane t owns the W
// consecutive columns c0 + t*W .. c0 + t*W + W-1 of every tile of G*W columns (W = 16 bytes of
// T when x's rows allow 16-byte loads, else 1; G the smallest that covers d / W, so d = 64 float
// takes 16 lanes with float4 loads: two rows per warp). The row's entries are read G at a time
// (lane t loads entry base + t, coalesced) and broadcast with shuffles; every lane then adds
// v * x[j, its columns] for the entries in storage order (spmm.h's csr_axpy and
// layer_mean_step: the CPU kernel's bits).
//
// Value errors (spmm.h's order, errors.h's messages), reported asynchronously through the call's
// ErrorSink (cuda_utils.cuh) with the row as ordering index: a row with an invalid extent reports
// it and is skipped; otherwise the first entry of the row with a column outside [0, C) reports
// (one report per row, so the smallest bad row wins, as on the CPU) and every such entry is
// skipped. Nothing is read out of bounds.
#pragma once
#include "autosample/cuda_utils.cuh"
#include "autosample/spmm.h"

namespace autosample {
namespace cuda {

// What a row tile does with its sums (MEAN = false: out = the product). graph_propagate's layer
// k: layer (when not null) = the product X_k; acc_out = acc_in + X_k, divided by count when last.
template <typename T>
struct LayerMean {
  T* layer;
  const T* acc_in;
  T* acc_out;
  T count;
  bool last;
};

// W elements at p (16-byte aligned when W > 1); LDG: through the read-only cache (only for
// data the kernel does not write).
template <typename T, int W, bool LDG = true>
__device__ __forceinline__ void load_w(const T* p, T (&v)[W]) {
  if constexpr (W == 1) {
    v[0] = LDG ? __ldg(p) : *p;
  } else {
    using V = typename Vec16<T>::type;
    const V* q = reinterpret_cast<const V*>(p);
    const V a = LDG ? __ldg(q) : *q;
    if constexpr (W == 4) {
      v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w;
    } else {
      v[0] = a.x; v[1] = a.y;
    }
  }
}

template <typename T, int W>
__device__ __forceinline__ void store_w(T* __restrict__ p, const T (&v)[W]) {
  if constexpr (W == 1) {
    p[0] = v[0];
  } else {
    using V = typename Vec16<T>::type;
    V a;
    if constexpr (W == 4) {
      a.x = v[0]; a.y = v[1]; a.z = v[2]; a.w = v[3];
    } else {
      a.x = v[0]; a.y = v[1];
    }
    *reinterpret_cast<V*>(p) = a;
  }
}

template <typename T, int W, int G, bool MEAN>
__global__ void csr_rows_kernel(const int64_t* __restrict__ indptr,
                                const int64_t* __restrict__ indices,
                                const T* __restrict__ values, const T* __restrict__ x, int64_t R,
                                int64_t C, int64_t nnz, int64_t d, T* __restrict__ out,
                                LayerMean<T> mean, const ErrorSink err) {
  const int64_t r = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / G;
  if (r >= R) return;  // uniform within the group
  const int t = threadIdx.x % G;
  unsigned mask = kFullMask;  // the group's lanes
  if constexpr (G < kWarp) mask = ((1u << G) - 1u) << ((threadIdx.x % kWarp) & ~(G - 1));
  if (!csr_row_valid(indptr, r, R, nnz)) {
    if (t == 0) {
      int64_t v[4] = {0, 0, 0, 0};
      const Err code = csr_extent_error(indptr, r, R, nnz, v);
      err.report(code, r, v[0], v[1], v[2], v[3]);
    }
    return;
  }
  const int64_t lo = indptr[r], hi = indptr[r + 1];
  bool reported = false;  // the row's first bad column, once
  for (int64_t c0 = 0; c0 < d; c0 += G * W) {
    const int64_t c = c0 + static_cast<int64_t>(t) * W;
    const bool active = c < d;  // d % W == 0: all W columns exist
    T acc[W];
#pragma unroll
    for (int w = 0; w < W; ++w) acc[w] = T(0);
    for (int64_t base = lo; base < hi; base += G) {
      const int64_t e = base + t;
      long long j = -1;
      T v = T(0);
      bool bad = false;
      if (e < hi) {
        j = indices[e];
        v = values[e];
        bad = !csr_column_valid(j, C);
      }
      const unsigned bad_lanes = __ballot_sync(mask, bad);
      if (bad_lanes != 0u && !reported) {
        if (static_cast<int>(threadIdx.x % kWarp) == __ffs(bad_lanes) - 1)
          err.report(Err::kCsrColumn, r, j, r, e, C);
        reported = true;
      }
      if (bad) j = -1;
      const int n = static_cast<int>(hi - base < G ? hi - base : G);
      for (int q = 0; q < n; ++q) {
        const long long jq = __shfl_sync(mask, j, q, G);
        const T vq = __shfl_sync(mask, v, q, G);
        if (jq < 0 || !active) continue;
        T xv[W];
        load_w<T, W>(x + jq * d + c, xv);
#pragma unroll
        for (int w = 0; w < W; ++w) acc[w] = csr_axpy(acc[w], vq, xv[w]);
      }
    }
    if (!active) continue;
    const int64_t at = r * d + c;
    if constexpr (MEAN) {
      if (mean.layer != nullptr) store_w<T, W>(mean.layer + at, acc);
      T a[W];
      load_w<T, W, false>(mean.acc_in + at, a);  // acc_in may be acc_out
#pragma unroll
      for (int w = 0; w < W; ++w) a[w] = layer_mean_step(a[w], acc[w], mean.last, mean.count);
      store_w<T, W>(mean.acc_out + at, a);
    } else {
      store_w<T, W>(out + at, acc);
    }
  }
}

// Launches csr_rows_kernel over the R rows on the current stream. vec_ok: every dense pointer
// (x, out / layer, acc_in, acc_out) is 16-byte aligned.
template <typename T, bool MEAN>
void launch_csr_rows(const int64_t* indptr, const int64_t* indices, const T* values, const T* x,
                     int64_t R, int64_t C, int64_t nnz, int64_t d, bool vec_ok, T* out,
                     LayerMean<T> mean, const ErrorSink& err) {
  constexpr int VW = Vec16<T>::width;
  const bool vec = vec_ok && d % VW == 0;
  const int64_t lanes = vec ? d / VW : d;
  const int G = lanes <= 8 ? 8 : lanes <= 16 ? 16 : 32;
  constexpr int threads = 256;
  const auto blocks = static_cast<unsigned>(ceil_div(R * G, threads));
  auto stream = at::cuda::getCurrentCUDAStream();
#define AS_CSR_LAUNCH(W_, G_)                                                               \
  csr_rows_kernel<T, W_, G_, MEAN><<<blocks, threads, 0, stream>>>(indptr, indices, values, x, \
                                                                   R, C, nnz, d, out, mean, err)
  if (vec) {
    if (G == 8) AS_CSR_LAUNCH(VW, 8);
    else if (G == 16) AS_CSR_LAUNCH(VW, 16);
    else AS_CSR_LAUNCH(VW, 32);
  } else {
    if (G == 8) AS_CSR_LAUNCH(1, 8);
    else if (G == 16) AS_CSR_LAUNCH(1, 16);
    else AS_CSR_LAUNCH(1, 32);
  }
#undef AS_CSR_LAUNCH
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace cuda
}  // namespace autosample
