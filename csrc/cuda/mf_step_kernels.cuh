// The device kernels of mf_bpr_train on CUDA and their launch geometry, included by mf_step.cu
// alone (an anonymous namespace: one translation unit). What each kernel does and in which order
// the host code runs them: the comment at the top of mf_step.cu.
#pragma once

#include <torch/library.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/sort.h>

#include <algorithm>

#include "autosample/bpr.h"
#include "autosample/csr_check.cuh"
#include "autosample/cuda_utils.cuh"
#include "autosample/mf_checks.h"
#include "autosample/mf_step.h"
#include "autosample/negative_draw.h"
#include "autosample/scoring.cuh"
#include "autosample/topk.h"

namespace autosample {
namespace cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarpsPerBlock = kThreads / kWarp;

// dot.h's dot() without FMA contraction: the CPU kernel's bits (DNS compares these scores).
template <typename T>
__device__ __forceinline__ T dot_rn(const T* __restrict__ a, const T* __restrict__ b, int64_t d) {
  T s[8] = {T(0), T(0), T(0), T(0), T(0), T(0), T(0), T(0)};
  int64_t i = 0;
  for (; i + 8 <= d; i += 8) {
#pragma unroll
    for (int l = 0; l < 8; ++l) s[l] = add_rn(s[l], mul_rn(a[i + l], b[i + l]));
  }
  T tail = T(0);
  for (; i < d; ++i) tail = add_rn(tail, mul_rn(a[i], b[i]));
  return add_rn(add_rn(add_rn(add_rn(s[0], s[4]), add_rn(s[1], s[5])),
                       add_rn(add_rn(s[2], s[6]), add_rn(s[3], s[7]))),
                tail);
}

// <a, b> by the lanes of a warp (lane-strided partial sums, then a butterfly): every lane
// returns the same value. For the loss and the gradient (no bit contract with the CPU).
template <typename T>
__device__ __forceinline__ T warp_dot(const T* __restrict__ a, const T* __restrict__ b, int64_t d,
                                      int lane) {
  T s = T(0);
  for (int64_t k = lane; k < d; k += kWarp) s += a[k] * b[k];
#pragma unroll
  for (int o = kWarp / 2; o > 0; o /= 2) s += __shfl_xor_sync(kFullMask, s, o);
  return s;
}

template <typename T>
struct StepBufs {
  int64_t* neg;      // [B, n]
  T* coef;           // [B, n]
  T* ug;             // [B, d]
  T* urow;           // [B, d]
  T* wg;             // [B, d] (GMF)
  double* row_loss;  // [B]
  double* row_reg;   // [B]
  int64_t* ukeys;    // [B]
  int64_t* ikeys;    // [B, n + 1]
  T* cand_score;     // [B, n, M] (DNS)
  int64_t* cand_id;  // [B, n, M] (DNS)
  uint8_t* touched_u;  // [U] dense Adam: 1 for the step's users (null otherwise)
  uint8_t* touched_i;  // [N] dense Adam: 1 for the step's items
};

// The value checks of every row of the call, reported with index N + r * (n + 2) + sub (the
// CPU's order: alias entries first, then row by row, user / positive / negatives).
__global__ void mf_validate_rows_kernel(MfDraw dr, const int64_t* __restrict__ users,
                                        const int64_t* __restrict__ pos, int64_t rows, int64_t U,
                                        int64_t N, bool entries, const ErrorSink err) {
  const int lane = threadIdx.x % kWarp;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * blockDim.x / kWarp;
  for (int64_t r = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp; r < rows;
       r += warps) {  // warp-uniform
    const int64_t base = N + r * (dr.n + 2), u = users[r];
    ValueError e;
    bool user_ok = true;
    if (dr.sampler == MfSampler::kGiven) {
      if (u < 0 || u >= U) e = value_error(Err::kUserOutOfRange, u, r, U);
    } else {
      e = sample_row_head(dr.ptr, U, dr.nnz, u, r);
      if (!e && entries)
        user_ok = warp_check_csr_row(dr.idx, dr.ptr[u], dr.ptr[u + 1], N, u, base, err);
      if (!e && user_ok) e = sample_row_tail(dr.ptr[u + 1] - dr.ptr[u], u, r, N);
    }
    if (e && lane == 0) err.report(e.code, base, e.v[0], e.v[1], e.v[2], e.v[3]);
    if (e || !user_ok) continue;
    if (pos[r] < 0 || pos[r] >= N) {
      if (lane == 0) err.report(Err::kPosOutOfRange, base + 1, pos[r], r, N);
      continue;
    }
    if (dr.sampler == MfSampler::kGiven) {
      for (int64_t j = lane; j < dr.n; j += kWarp) {
        const int64_t v = dr.given[r * dr.n + j];
        if (v < 0 || v >= N) err.report(Err::kNegOutOfRange, base + 2 + j, v, r, j, N);
      }
    }
  }
}

__global__ void mf_validate_alias_kernel(const float* __restrict__ prob,
                                         const int64_t* __restrict__ alias, int64_t N,
                                         const ErrorSink err) {
  for (int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; j < N;
       j += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const ValueError e = alias_entry_error(prob[j], alias[j], j, N);
    if (e) err.report(e.code, j, e.v[0], e.v[1], e.v[2], e.v[3]);
  }
}

// Step 1, one warp per row b of the step (global row r0 + b).
template <typename T>
__global__ void __launch_bounds__(kThreads)
mf_row_kernel(MfTables<T> tb, MfDraw dr, uint64_t offset, const int64_t* __restrict__ users,
              const int64_t* __restrict__ pos, int64_t r0, int64_t rows, T inv_bn, T r2,
              StepBufs<T> buf, const ErrorSink err) {
  const int lane = threadIdx.x % kWarp;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * blockDim.x / kWarp;
  const int64_t n = dr.n, d = tb.d, N = tb.N;
  for (int64_t b = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp; b < rows;
       b += warps) {  // warp-uniform
    const int64_t r = r0 + b, u = users[r], p = pos[r];
    int64_t* neg = buf.neg + b * n;
    T* coef = buf.coef + b * n;
    int64_t* ikeys = buf.ikeys + b * (n + 1);
    // The O(1) rules (the validate kernel reports): a bad row trains nothing.
    bool ok = u >= 0 && u < tb.U && p >= 0 && p < N;
    int64_t begin = 0, deg = 0;
    if (ok && dr.sampler != MfSampler::kGiven) {
      begin = dr.ptr[u];
      const int64_t end = dr.ptr[u + 1];
      ok = csr_span_ok(begin, end, dr.nnz) && end - begin < N;
      deg = end - begin;
    }
    if (ok && dr.sampler == MfSampler::kGiven) {
      for (int64_t j = 0; j < n; ++j) {
        const int64_t v = dr.given[r * n + j];
        ok = ok && v >= 0 && v < N;
      }
    }
    if (!ok) {
      if (lane == 0) {
        buf.ukeys[b] = tb.U;
        for (int64_t j = 0; j <= n; ++j) ikeys[j] = N;
        for (int64_t j = 0; j < n; ++j) coef[j] = T(0);
        buf.row_loss[b] = 0.0;
        buf.row_reg[b] = 0.0;
      }
      continue;
    }
    const T* Pu = tb.P + u * d;
    T* urow = buf.urow + b * d;  // the user vector of the step (GMF: P_u * w)
    for (int64_t k = lane; k < d; k += kWarp) urow[k] = tb.w != nullptr ? mul_rn(Pu[k], tb.w[k]) : Pu[k];
    __syncwarp();
    const int64_t* row = dr.idx + begin;
    if (dr.sampler == MfSampler::kGiven) {
      for (int64_t j = lane; j < n; j += kWarp) neg[j] = dr.given[r * n + j];
    } else if (dr.sampler != MfSampler::kDns) {
      for (int64_t j = lane; j < n; j += kWarp) {
        ValueError e;
        int64_t item = draw_negative(row, deg, N, dr.seed, offset, static_cast<uint32_t>(b),
                                     static_cast<uint32_t>(j), dr.prob, dr.alias, 0, &e);
        if (e) {  // a bad alias id (without the table scan): reported as sample_negatives does
          err.report(e.code, e.v[1], e.v[0], e.v[1], e.v[2], e.v[3]);
          item = 0;
        }
        neg[j] = item;
      }
    } else {
      const int64_t M = dr.M;
      for (int64_t j = 0; j < n; ++j) {
        T* score = buf.cand_score + (b * n + j) * M;
        int64_t* id = buf.cand_id + (b * n + j) * M;
        for (int64_t m = lane; m < M; m += kWarp) {
          ValueError e;
          const int64_t c = draw_negative(row, deg, N, dr.seed, offset, static_cast<uint32_t>(b),
                                          static_cast<uint32_t>(j * M + m), nullptr, nullptr, 0,
                                          &e);
          id[m] = c;
          score[m] = dot_rn(urow, tb.Q + c * d, d);
        }
        __syncwarp();
        // The candidate at the drawn local rank (0: the best) in topk.h's order.
        const int64_t pick = dr.k == 1 ? 0 : cdf_rank(dr.cdf, dr.k, dr.uniforms[r * n + j]);
        for (int64_t m = lane; m < M; m += kWarp) {
          int64_t rank = 0;
          for (int64_t o = 0; o < M; ++o) rank += ranks_before(score[o], o, score[m], m) ? 1 : 0;
          if (rank == pick) neg[j] = id[m];
        }
        __syncwarp();
      }
    }
    __syncwarp();
    const T* Qp = tb.Q + p * d;
    const T sp = warp_dot(urow, Qp, d, lane);
    double loss = 0.0;
    double reg = static_cast<double>(warp_dot(Pu, Pu, d, lane)) +
                 static_cast<double>(warp_dot(Qp, Qp, d, lane));
    for (int64_t j = 0; j < n; ++j) {
      const T* Qn = tb.Q + neg[j] * d;
      const T x = warp_dot(urow, Qn, d, lane) - sp;
      loss += static_cast<double>(bpr_softplus(x));
      reg += static_cast<double>(warp_dot(Qn, Qn, d, lane));
      if (lane == 0) coef[j] = bpr_softplus_backward(inv_bn, x);
    }
    __syncwarp();
    for (int64_t k = lane; k < d; k += kWarp) {
      T acc = T(0);
      for (int64_t j = 0; j < n; ++j) acc += coef[j] * (tb.Q[neg[j] * d + k] - Qp[k]);
      if (tb.w != nullptr) {
        buf.wg[b * d + k] = Pu[k] * acc;
        buf.ug[b * d + k] = tb.w[k] * acc + r2 * Pu[k];
      } else {
        buf.ug[b * d + k] = acc + r2 * Pu[k];
      }
    }
    if (lane == 0) {
      buf.row_loss[b] = loss;
      buf.row_reg[b] = reg;
      buf.ukeys[b] = u;
      ikeys[0] = p;
      for (int64_t j = 0; j < n; ++j) ikeys[1 + j] = neg[j];
      if (buf.touched_u != nullptr) {  // several rows may write the same 1
        buf.touched_u[u] = 1;
        buf.touched_i[p] = 1;
        for (int64_t j = 0; j < n; ++j) buf.touched_i[neg[j]] = 1;
      }
    }
  }
}

// The optimiser on element k of a row (bpr.h), state rows s0 / s1 (null when unused).
template <typename T>
__device__ __forceinline__ void update_element(SparseOpt opt, T* p, T* s0, T* s1, T g,
                                               const OptStep<T>& c) {
  if (opt == SparseOpt::kSgd) {
    sgd_update(p, g, c);
  } else if (opt == SparseOpt::kAdagrad) {
    adagrad_update(p, s0, g, c);
  } else {
    adam_update(p, s0, s1, g, c);
  }
}

// Step 3 for items: one warp per position i of the sorted item keys that starts a group.
template <typename T>
__global__ void __launch_bounds__(kThreads)
mf_item_kernel(MfTables<T> tb, SparseOpt opt, OptStep<T> oc, const int64_t* __restrict__ keys,
               const int64_t* __restrict__ order, int64_t E, int64_t n, T r2, StepBufs<T> buf) {
  const int lane = threadIdx.x % kWarp;
  const int64_t i = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
  if (i >= E) return;
  const int64_t item = keys[i];
  if (item >= tb.N || (i > 0 && keys[i - 1] == item)) return;  // warp-uniform
  const int64_t d = tb.d;
  T* q = tb.Q + item * d;
  for (int64_t k = lane; k < d; k += kWarp) {
    T g = T(0);
    for (int64_t j = i; j < E && keys[j] == item; ++j) {  // the contributions in batch order
      const int64_t e = order[j], b = e / (n + 1), jj = e % (n + 1);
      g += entry_coef(buf.coef + b * n, n, jj) * buf.urow[b * d + k] + r2 * q[k];
    }
    update_element(opt, q + k, tb.st[1][0] ? tb.st[1][0] + item * d + k : nullptr,
                   tb.st[1][1] ? tb.st[1][1] + item * d + k : nullptr, g, oc);
  }
}

// Step 3 for users: their rows' shares in batch order.
template <typename T>
__global__ void __launch_bounds__(kThreads)
mf_user_kernel(MfTables<T> tb, SparseOpt opt, OptStep<T> oc, const int64_t* __restrict__ keys,
               const int64_t* __restrict__ order, int64_t rows, StepBufs<T> buf) {
  const int lane = threadIdx.x % kWarp;
  const int64_t i = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
  if (i >= rows) return;
  const int64_t user = keys[i];
  if (user >= tb.U || (i > 0 && keys[i - 1] == user)) return;  // warp-uniform
  const int64_t d = tb.d;
  for (int64_t k = lane; k < d; k += kWarp) {
    T g = buf.ug[order[i] * d + k];
    for (int64_t j = i + 1; j < rows && keys[j] == user; ++j) g += buf.ug[order[j] * d + k];
    update_element(opt, tb.P + user * d + k, tb.st[0][0] ? tb.st[0][0] + user * d + k : nullptr,
                   tb.st[0][1] ? tb.st[0][1] + user * d + k : nullptr, g, oc);
  }
}

// Dense Adam: every element of the rows the step did not touch, with a zero gradient.
template <typename T>
__global__ void mf_idle_kernel(T* __restrict__ table, T* __restrict__ m, T* __restrict__ v,
                               const uint8_t* __restrict__ touched, int64_t rows, int64_t d,
                               OptStep<T> oc) {
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < rows * d;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    if (touched[e / d] == 0) adam_idle(table + e, m + e, v + e, oc);
  }
}

// GMF's weight: element k sums the rows' shares in batch order.
template <typename T>
__global__ void mf_weight_kernel(MfTables<T> tb, SparseOpt opt, OptStep<T> oc, int64_t rows,
                                 StepBufs<T> buf) {
  for (int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; k < tb.d;
       k += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    T g = T(0);
    for (int64_t b = 0; b < rows; ++b) g += buf.wg[b * tb.d + k];
    update_element(opt, tb.w + k, tb.st[2][0] ? tb.st[2][0] + k : nullptr,
                   tb.st[2][1] ? tb.st[2][1] + k : nullptr, g, oc);
  }
}

// The step's loss: softplus mean + l2 * the L2 term; one block, a fixed order of additions.
__global__ void mf_loss_kernel(const double* __restrict__ row_loss,
                               const double* __restrict__ row_reg, int64_t rows, int64_t n,
                               double l2, double* __restrict__ out) {
  __shared__ double s_loss[kThreads], s_reg[kThreads];
  double a = 0.0, c = 0.0;
  for (int64_t b = threadIdx.x; b < rows; b += blockDim.x) {
    a += row_loss[b];
    c += row_reg[b];
  }
  s_loss[threadIdx.x] = a;
  s_reg[threadIdx.x] = c;
  __syncthreads();
  for (int o = kThreads / 2; o > 0; o /= 2) {
    if (static_cast<int>(threadIdx.x) < o) {
      s_loss[threadIdx.x] += s_loss[threadIdx.x + o];
      s_reg[threadIdx.x] += s_reg[threadIdx.x + o];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0)
    *out = s_loss[0] / static_cast<double>(rows * n) + l2 * s_reg[0] / static_cast<double>(rows);
}

unsigned blocks_for_warps(int64_t warps) {
  return static_cast<unsigned>(std::max<int64_t>(1, ceil_div(warps, kWarpsPerBlock)));
}

}  // namespace
}  // namespace cuda
}  // namespace autosample
