// The GDNS ops on CUDA over both layouts of gdns_table.h: gdns_lookup / gdns_update /
// gdns_contains (slot table) and gdns_dense_lookup / gdns_dense_update (dense H, G).
//
// Value errors (users outside [0, U), item ids negative (slots) or outside [0, I) (dense)) are
// reported asynchronously (cuda_utils.cuh) in the CPU kernels' order: row by row, the user
// before the row's items; a user is checked even when its row has no items.
// lookup: one thread per (b, m) plus one per row for the user check; the gain, or 1 for a bad
//   pair. The slot layout's default gain of a row (an absent pair in a full row) is computed by
//   the thread that needs it, with the CPU's arithmetic (gdns_default_gain: slot order, double).
// update: race-free and equal to the sequential row-major semantics. Rows are grouped by user
//   with a stable device sort of `users` (rows of one user keep their order); one warp per
//   group computes the H_new of 32 pairs at once and applies that user's pairs one after
//   another, columns left to right, each pair reading what the previous wrote (a repeated pair
//   is updated twice). Different users own disjoint table rows, so groups never race. A first
//   kernel validates every pair and sets a per-call device flag that the update kernel reads,
//   so a bad call leaves the table untouched. One kernel template serves both layouts.
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
// I < 0: item ids need only be >= 0 (slot table); else they must lie in [0, I) (dense).
// Returns true when the pair (b, c - 1) (or the row, c = 0) is valid; reports otherwise.
__device__ __forceinline__ bool check_pair(const int64_t* __restrict__ users,
                                           const int64_t* __restrict__ items, int64_t t,
                                           int64_t M, int64_t U, int64_t I,
                                           const ErrorSink& err) {
  const int64_t b = t / (M + 1), c = t % (M + 1);
  const int64_t u = users[b];
  if (u < 0 || u >= U) {
    if (c == 0) err.report(Err::kUserOutOfRange, t, u, b, U);
    return false;
  }
  if (c == 0) return true;
  const int64_t item = items[b * M + c - 1];
  if (I < 0 && item < 0) {
    err.report(Err::kItemNegative, t, item, b, c - 1);
    return false;
  }
  if (I >= 0 && (item < 0 || item >= I)) {
    err.report(Err::kItemOutOfRange, t, item, b, c - 1, I);
    return false;
  }
  return true;
}

__global__ void gdns_validate_kernel(const int64_t* __restrict__ users,
                                     const int64_t* __restrict__ items, int64_t B, int64_t M,
                                     int64_t U, int64_t I, int* __restrict__ bad,
                                     const ErrorSink err) {
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < B * (M + 1);
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    if (!check_pair(users, items, t, M, U, I, err)) *bad = 1;
  }
}

// The two layouts as the kernels see them: gain(u, item) and row(u) (an object with apply()).
template <typename T>
struct SlotTable {
  int64_t* keys;
  T* h;
  T* g;
  int64_t S;
  __device__ T gain(int64_t u, int64_t item) const {  // the default only when absent
    const int64_t slot = gdns_find(keys + u * S, S, item);
    return slot >= 0 ? g[u * S + slot] : gdns_default_gain(keys + u * S, g + u * S, S);
  }
  __device__ GdnsSlotRow<T> row(int64_t u) const {
    return GdnsSlotRow<T>{keys + u * S, h + u * S, g + u * S, S};
  }
};

// gdns_contains: whether the slot table holds the pair.
struct ContainsTable {
  const int64_t* keys;
  int64_t S;
  __device__ bool gain(int64_t u, int64_t item) const { return gdns_find(keys + u * S, S, item) >= 0; }
};

template <typename T>
struct DenseTable {
  T* h;
  T* g;
  int64_t I;
  __device__ T gain(int64_t u, int64_t item) const { return g[u * I + item]; }
  __device__ GdnsDenseRow<T> row(int64_t u) const { return GdnsDenseRow<T>{h + u * I, g + u * I}; }
};

// out[b, m] = table.gain(users[b], items[b, m]), `invalid` for a bad pair.
template <typename T, typename Table>
__global__ void gdns_lookup_kernel(const Table table, const int64_t* __restrict__ users,
                                   const int64_t* __restrict__ items, int64_t B, int64_t M,
                                   int64_t U, int64_t I, T* __restrict__ out, T invalid,
                                   const ErrorSink err) {
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < B * (M + 1);
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const bool ok = check_pair(users, items, t, M, U, I, err);
    const int64_t b = t / (M + 1), c = t % (M + 1);
    if (c == 0) continue;
    const int64_t o = b * M + c - 1;
    out[o] = ok ? table.gain(users[b], items[o]) : invalid;
  }
}

template <typename MakeTable>
at::Tensor lookup(Op op, const at::Tensor& g_in, const at::Tensor& users_in,
                  const at::Tensor& items_in, int64_t U, int64_t I, const MakeTable& make) {
  const c10::cuda::CUDAGuard guard(g_in.device());
  const int64_t B = items_in.size(0), M = items_in.size(1);
  auto out = at::empty({B, M}, g_in.options());
  if (B == 0) return out;
  const auto users = users_in.contiguous();
  const auto items = items_in.contiguous();
  const ErrorSink err = begin_call(op, users);
  constexpr int threads = 256;
  auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(g_in.scalar_type(), "gdns_lookup_cuda", [&] {
    const auto table = make(scalar_t(0));
    gdns_lookup_kernel<scalar_t><<<grid_for(B * (M + 1), threads), threads, 0, stream>>>(
        table, users.data_ptr<int64_t>(), items.data_ptr<int64_t>(), B, M, U, I,
        out.data_ptr<scalar_t>(), scalar_t(1), err);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  end_call(err);
  return out;
}

at::Tensor gdns_lookup_cuda(const at::Tensor& slot_keys_in, const at::Tensor& slot_g_in,
                            const at::Tensor& users_in, const at::Tensor& items_in) {
  check_gdns_lookup_args(slot_keys_in, slot_g_in, users_in, items_in);
  const auto keys = slot_keys_in.contiguous();
  const auto g = slot_g_in.contiguous();
  const int64_t S = keys.size(1);
  return lookup(Op::kGdnsLookup, g, users_in, items_in, keys.size(0), -1, [&](auto zero) {
    using T = decltype(zero);
    return SlotTable<T>{keys.data_ptr<int64_t>(), nullptr, g.data_ptr<T>(), S};
  });
}

at::Tensor gdns_contains_cuda(const at::Tensor& slot_keys_in, const at::Tensor& users_in,
                              const at::Tensor& items_in) {
  check_gdns_contains_args(slot_keys_in, users_in, items_in);
  const c10::cuda::CUDAGuard guard(slot_keys_in.device());
  const int64_t B = items_in.size(0), M = items_in.size(1);
  auto out = at::empty({B, M}, users_in.options().dtype(at::kBool));
  if (B == 0) return out;
  const auto keys = slot_keys_in.contiguous();
  const auto users = users_in.contiguous();
  const auto items = items_in.contiguous();
  const ErrorSink err = begin_call(Op::kGdnsContains, users);
  constexpr int threads = 256;
  gdns_lookup_kernel<bool><<<grid_for(B * (M + 1), threads), threads, 0,
                             at::cuda::getCurrentCUDAStream()>>>(
      ContainsTable{keys.data_ptr<int64_t>(), keys.size(1)}, users.data_ptr<int64_t>(),
      items.data_ptr<int64_t>(), B, M, keys.size(0), -1, out.data_ptr<bool>(), false, err);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  end_call(err);
  return out;
}

at::Tensor gdns_dense_lookup_cuda(const at::Tensor& g_in, const at::Tensor& users_in,
                                  const at::Tensor& items_in) {
  check_gdns_dense_lookup_args(g_in, users_in, items_in);
  const auto g = g_in.contiguous();
  const int64_t I = g.size(1);
  return lookup(Op::kGdnsDenseLookup, g, users_in, items_in, g.size(0), I, [&](auto zero) {
    using T = decltype(zero);
    return DenseTable<T>{nullptr, g.data_ptr<T>(), I};
  });
}

// One warp per position i of the sorted order (8 warps, 256 threads per block); the warp whose
// position starts a user's group applies that user's rows in order. For each row, lane n
// computes H_new of pair n (gdns_h_new: the CPU kernel's arithmetic) for 32 pairs at once; then
// lane 0 applies the pairs one after another, each reading what the previous wrote, as the CPU
// kernel does.
constexpr int kUpdateThreads = 256;

template <typename T, typename Table>
__global__ void __launch_bounds__(kUpdateThreads)
gdns_update_kernel(const Table table, const int64_t* __restrict__ sorted_users,
                   const int64_t* __restrict__ order, const int64_t* __restrict__ items,
                   const T* __restrict__ pos, const T* __restrict__ neg, int64_t B, int64_t N,
                   int64_t P, T alpha, T eps, const int* __restrict__ bad) {
  __shared__ T h_new[kUpdateThreads / kWarp][kWarp];
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int64_t i = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
  if (i >= B || *bad != 0) return;  // warp-uniform
  const int64_t u = sorted_users[i];
  if (i > 0 && sorted_users[i - 1] == u) return;  // not the first row of its user
  const auto row = table.row(u);
  for (int64_t j = i; j < B && sorted_users[j] == u; ++j) {
    const int64_t b = order[j];
    for (int64_t n0 = 0; n0 < N; n0 += kWarp) {
      const int64_t n = n0 + lane;
      if (n < N) h_new[warp][lane] = gdns_h_new(neg[b * N + n], pos + b * P, P);
      __syncwarp();
      if (lane == 0) {
        const int64_t count = N - n0 < kWarp ? N - n0 : kWarp;
        for (int64_t c = 0; c < count; ++c) row.apply(items[b * N + n0 + c], h_new[warp][c], alpha, eps);
      }
      __syncwarp();  // h_new is rewritten next
    }
  }
}

template <typename MakeTable>
void update(Op op, const at::Tensor& state, const at::Tensor& users_in, const at::Tensor& items_in,
            const at::Tensor& pos_in, const at::Tensor& neg_in, double alpha, double eps,
            int64_t U, int64_t I, const MakeTable& make) {
  const c10::cuda::CUDAGuard guard(state.device());
  const int64_t B = items_in.size(0), N = items_in.size(1), P = pos_in.size(1);
  if (B == 0) return;
  const auto users = users_in.contiguous();
  const auto items = items_in.contiguous();
  const auto pos = pos_in.contiguous();
  const auto neg = neg_in.contiguous();
  const ErrorSink err = begin_call(op, users);
  constexpr int threads = 256;
  auto stream = at::cuda::getCurrentCUDAStream();
  auto bad = at::zeros({1}, users.options().dtype(at::kInt));
  gdns_validate_kernel<<<grid_for(B * (N + 1), threads), threads, 0, stream>>>(
      users.data_ptr<int64_t>(), items.data_ptr<int64_t>(), B, N, U, I, bad.data_ptr<int>(), err);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  if (N == 0) {
    end_call(err);
    return;
  }
  const auto sorted = at::sort(users, /*stable=*/true, /*dim=*/0, /*descending=*/false);
  const auto sorted_users = std::get<0>(sorted).contiguous();
  const auto order = std::get<1>(sorted).contiguous();
  AT_DISPATCH_FLOATING_TYPES(state.scalar_type(), "gdns_update_cuda", [&] {
    gdns_update_kernel<scalar_t><<<static_cast<unsigned>(ceil_div(B * kWarp, kUpdateThreads)),
                                   kUpdateThreads, 0, stream>>>(
        make(scalar_t(0)), sorted_users.data_ptr<int64_t>(), order.data_ptr<int64_t>(),
        items.data_ptr<int64_t>(), pos.data_ptr<scalar_t>(), neg.data_ptr<scalar_t>(), B, N, P,
        static_cast<scalar_t>(alpha), static_cast<scalar_t>(eps), bad.data_ptr<int>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  end_call(err);
}

void gdns_update_cuda(const at::Tensor& slot_keys, const at::Tensor& slot_h,
                      const at::Tensor& slot_g, const at::Tensor& users_in,
                      const at::Tensor& items_in, const at::Tensor& pos_in,
                      const at::Tensor& neg_in, double alpha, double eps) {
  check_gdns_update_args(slot_keys, slot_h, slot_g, users_in, items_in, pos_in, neg_in, alpha,
                         eps);
  const int64_t S = slot_keys.size(1);
  update(Op::kGdnsUpdate, slot_h, users_in, items_in, pos_in, neg_in, alpha, eps,
         slot_keys.size(0), -1, [&](auto zero) {
    using T = decltype(zero);
    return SlotTable<T>{slot_keys.data_ptr<int64_t>(), slot_h.data_ptr<T>(), slot_g.data_ptr<T>(), S};
  });
}

void gdns_dense_update_cuda(const at::Tensor& h, const at::Tensor& g, const at::Tensor& users_in,
                            const at::Tensor& items_in, const at::Tensor& pos_in,
                            const at::Tensor& neg_in, double alpha, double eps) {
  check_gdns_dense_update_args(h, g, users_in, items_in, pos_in, neg_in, alpha, eps);
  const int64_t I = h.size(1);
  update(Op::kGdnsDenseUpdate, h, users_in, items_in, pos_in, neg_in, alpha, eps, h.size(0), I,
         [&](auto zero) {
    using T = decltype(zero);
    return DenseTable<T>{h.data_ptr<T>(), g.data_ptr<T>(), I};
  });
}

}  // namespace
}  // namespace cuda
}  // namespace autosample

TORCH_LIBRARY_IMPL(autosample, CUDA, m) {
  m.impl("gdns_lookup", &autosample::cuda::gdns_lookup_cuda);
  m.impl("gdns_update", &autosample::cuda::gdns_update_cuda);
  m.impl("gdns_contains", &autosample::cuda::gdns_contains_cuda);
  m.impl("gdns_dense_lookup", &autosample::cuda::gdns_dense_lookup_cuda);
  m.impl("gdns_dense_update", &autosample::cuda::gdns_dense_update_cuda);
}
