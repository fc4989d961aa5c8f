// gdns_lookup / gdns_update on CUDA over the per-user slot table of gdns_table.h.
//
// Value errors (users outside [0, U), negative items) are reported asynchronously
// (cuda_utils.cuh) in the CPU kernels' order: row by row, the user before the row's items; a
// user is checked even when its row has no items.
// lookup: one thread per (b, m) plus one per row for the user check; G or 1 (also for bad pairs).
// update: race-free and equal to the sequential row-major semantics. Rows are grouped by user
//   with a stable device sort of `users` (rows of one user keep their order); one warp per
//   group computes the H_new of 32 pairs at once and applies that user's pairs one after
//   another, columns left to right, each pair reading what the previous wrote (a repeated pair
//   is updated twice). Different users own disjoint
//   table rows, so groups never race. A first kernel validates every pair and sets a per-call
//   device flag that the update kernel reads, so a bad call leaves the table untouched.
#include <ATen/ops/empty.h>
#include <ATen/ops/sort.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include "autosample/checks.h"
#include "autosample/cuda_utils.cuh"
#include "autosample/gdns_table.h"
#include "autosample/math.h"

namespace autosample {
namespace cuda {
namespace {

// Thread t of B * (M + 1): t = b * (M + 1) + c; c = 0 checks users[b], c > 0 item (b, c - 1).
// Returns true when the pair (b, c - 1) (or the row, c = 0) is valid; reports otherwise.
__device__ __forceinline__ bool check_pair(const int64_t* __restrict__ users,
                                           const int64_t* __restrict__ items, int64_t t,
                                           int64_t M, int64_t U, const ErrorSink& err) {
  const int64_t b = t / (M + 1), c = t % (M + 1);
  const int64_t u = users[b];
  if (u < 0 || u >= U) {
    if (c == 0) err.report(Err::kUserOutOfRange, t, u, b, U);
    return false;
  }
  if (c == 0) return true;
  const int64_t item = items[b * M + c - 1];
  if (item < 0) {
    err.report(Err::kItemNegative, t, item, b, c - 1);
    return false;
  }
  return true;
}

__global__ void gdns_validate_kernel(const int64_t* __restrict__ users,
                                     const int64_t* __restrict__ items, int64_t B, int64_t M,
                                     int64_t U, int* __restrict__ bad, const ErrorSink err) {
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < B * (M + 1);
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    if (!check_pair(users, items, t, M, U, err)) *bad = 1;
  }
}

template <typename T>
__global__ void gdns_lookup_kernel(const int64_t* __restrict__ keys, const T* __restrict__ g,
                                   int64_t S, const int64_t* __restrict__ users,
                                   const int64_t* __restrict__ items, int64_t B, int64_t M,
                                   int64_t U, T* __restrict__ out, const ErrorSink err) {
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < B * (M + 1);
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const bool ok = check_pair(users, items, t, M, U, err);
    const int64_t b = t / (M + 1), c = t % (M + 1);
    if (c == 0) continue;
    const int64_t o = b * M + c - 1;
    if (!ok) { out[o] = T(1); continue; }
    const int64_t u = users[b];
    const int64_t slot = gdns_find(keys + u * S, S, items[o]);
    out[o] = slot >= 0 ? g[u * S + slot] : T(1);
  }
}

at::Tensor gdns_lookup_cuda(const at::Tensor& slot_keys_in, const at::Tensor& slot_g_in,
                            const at::Tensor& users_in, const at::Tensor& items_in) {
  check_gdns_lookup_args(slot_keys_in, slot_g_in, users_in, items_in);
  const c10::cuda::CUDAGuard guard(slot_keys_in.device());
  const int64_t B = items_in.size(0), M = items_in.size(1);
  const int64_t U = slot_keys_in.size(0), S = slot_keys_in.size(1);
  auto out = at::empty({B, M}, slot_g_in.options());
  if (B == 0) return out;
  const auto keys = slot_keys_in.contiguous();
  const auto g = slot_g_in.contiguous();
  const auto users = users_in.contiguous();
  const auto items = items_in.contiguous();
  const ErrorSink err = begin_call(Op::kGdnsLookup, users);
  constexpr int threads = 256;
  auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "gdns_lookup_cuda", [&] {
    gdns_lookup_kernel<scalar_t><<<grid_for(B * (M + 1), threads), threads, 0, stream>>>(
        keys.data_ptr<int64_t>(), g.data_ptr<scalar_t>(), S, users.data_ptr<int64_t>(),
        items.data_ptr<int64_t>(), B, M, U, out.data_ptr<scalar_t>(), err);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  end_call(err);
  return out;
}

// One warp per position i of the sorted order (8 warps, 256 threads per block); the warp whose
// position starts a user's group applies that user's rows in order. For each row, lane n
// computes H_new of pair n (its P sigmoids in order, accumulated in double: the CPU kernel's
// arithmetic) for 32 pairs at once; then lane 0 applies the pairs one after another
// (find-or-claim, write), each reading what the previous wrote, as the CPU kernel does.
constexpr int kUpdateThreads = 256;

template <typename T>
__global__ void __launch_bounds__(kUpdateThreads)
gdns_update_kernel(int64_t* __restrict__ keys, T* __restrict__ h, T* __restrict__ g, int64_t S,
                   const int64_t* __restrict__ sorted_users, const int64_t* __restrict__ order,
                   const int64_t* __restrict__ items, const T* __restrict__ pos,
                   const T* __restrict__ neg, int64_t B, int64_t N, int64_t P, T alpha, T eps,
                   const int* __restrict__ bad) {
  __shared__ T h_new[kUpdateThreads / kWarp][kWarp];
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int64_t i = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
  if (i >= B || *bad != 0) return;  // warp-uniform
  const int64_t u = sorted_users[i];
  if (i > 0 && sorted_users[i - 1] == u) return;  // not the first row of its user
  int64_t* krow = keys + u * S;
  T* hrow = h + u * S;
  T* grow = g + u * S;
  for (int64_t j = i; j < B && sorted_users[j] == u; ++j) {
    const int64_t b = order[j];
    const T* pb = pos + b * P;
    for (int64_t n0 = 0; n0 < N; n0 += kWarp) {
      const int64_t n = n0 + lane;
      if (n < N) {
        const T nv = neg[b * N + n];
        double acc = 0.0;
        for (int64_t p = 0; p < P; ++p) acc += sigmoid<T>(nv - pb[p]);
        h_new[warp][lane] = static_cast<T>(acc / static_cast<double>(P));
      }
      __syncwarp();
      if (lane == 0) {
        const int64_t count = N - n0 < kWarp ? N - n0 : kWarp;
        for (int64_t c = 0; c < count; ++c) {
          const int64_t item = items[b * N + n0 + c];
          bool found = false;
          const int64_t slot = gdns_find_or_claim(krow, grow, S, item, &found);
          const T h_old = found ? hrow[slot] : T(1);
          const T g_old = found ? grow[slot] : T(1);
          krow[slot] = item;
          grow[slot] = gdns_next_gain(g_old, h_old, h_new[warp][c], alpha, eps);
          hrow[slot] = h_new[warp][c];
        }
      }
      __syncwarp();  // h_new is rewritten next
    }
  }
}

void gdns_update_cuda(const at::Tensor& slot_keys, const at::Tensor& slot_h,
                      const at::Tensor& slot_g, const at::Tensor& users_in,
                      const at::Tensor& items_in, const at::Tensor& pos_in,
                      const at::Tensor& neg_in, double alpha, double eps) {
  check_gdns_update_args(slot_keys, slot_h, slot_g, users_in, items_in, pos_in, neg_in, alpha,
                         eps);
  const c10::cuda::CUDAGuard guard(slot_keys.device());
  const int64_t B = items_in.size(0), N = items_in.size(1), P = pos_in.size(1);
  const int64_t U = slot_keys.size(0), S = slot_keys.size(1);
  if (B == 0) return;
  const auto users = users_in.contiguous();
  const auto items = items_in.contiguous();
  const auto pos = pos_in.contiguous();
  const auto neg = neg_in.contiguous();
  const ErrorSink err = begin_call(Op::kGdnsUpdate, users);
  constexpr int threads = 256;
  auto stream = at::cuda::getCurrentCUDAStream();
  auto bad = at::zeros({1}, users.options().dtype(at::kInt));
  gdns_validate_kernel<<<grid_for(B * (N + 1), threads), threads, 0, stream>>>(
      users.data_ptr<int64_t>(), items.data_ptr<int64_t>(), B, N, U, bad.data_ptr<int>(), err);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  if (N == 0) {
    end_call(err);
    return;
  }
  const auto sorted = at::sort(users, /*stable=*/true, /*dim=*/0, /*descending=*/false);
  const auto sorted_users = std::get<0>(sorted).contiguous();
  const auto order = std::get<1>(sorted).contiguous();
  AT_DISPATCH_FLOATING_TYPES(slot_h.scalar_type(), "gdns_update_cuda", [&] {
    gdns_update_kernel<scalar_t><<<static_cast<unsigned>(ceil_div(B * kWarp, kUpdateThreads)),
                                   kUpdateThreads, 0, stream>>>(
        slot_keys.data_ptr<int64_t>(), slot_h.data_ptr<scalar_t>(), slot_g.data_ptr<scalar_t>(),
        S, sorted_users.data_ptr<int64_t>(), order.data_ptr<int64_t>(),
        items.data_ptr<int64_t>(), pos.data_ptr<scalar_t>(), neg.data_ptr<scalar_t>(), B, N, P,
        static_cast<scalar_t>(alpha), static_cast<scalar_t>(eps), bad.data_ptr<int>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  end_call(err);
}

}  // namespace
}  // namespace cuda
}  // namespace autosample

TORCH_LIBRARY_IMPL(autosample, CUDA, m) {
  m.impl("gdns_lookup", &autosample::cuda::gdns_lookup_cuda);
  m.impl("gdns_update", &autosample::cuda::gdns_update_cuda);
}
