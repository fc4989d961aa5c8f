// gdns_lookup / gdns_update on CUDA over the per-user slot table of gdns_table.h.
//
// lookup: one thread per (b, m): probe user users[b]'s row for items[b, m]; G or 1. Users
//   outside [0, U) and negative items are errors (raised after the kernel).
// update: race-free and equal to the sequential row-major semantics. Rows are grouped by user
//   with a stable device sort of `users` (rows of one user keep their order); one thread per
//   group applies that user's rows one after another, columns left to right, each pair reading
//   what the previous wrote (a repeated pair is updated twice). Different users own disjoint
//   table rows, so groups never race. Values are validated by a first kernel before anything is
//   written, so a bad call leaves the table untouched.
#include <torch/library.h>

#include "autosample/checks.h"
#include "autosample/cuda_utils.cuh"
#include "autosample/gdns_table.h"
#include "autosample/math.h"

namespace autosample {
namespace cuda {
namespace {

// Flags (b, m) when users[b] is outside [0, U) or items[b, m] < 0 (err index b * M + m).
__global__ void gdns_validate_kernel(const int64_t* __restrict__ users,
                                     const int64_t* __restrict__ items, int64_t B, int64_t M,
                                     int64_t U, unsigned long long* err) {
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < B * M;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t u = users[t / M];
    if (u < 0 || u >= U || items[t] < 0) report_error(err, t);
  }
}

void raise_bad_pair(const char* op, int64_t bad, const at::Tensor& users, const at::Tensor& items,
                    int64_t U) {
  const int64_t M = items.size(1), b = bad / M;
  const int64_t u = item_at(users, b);
  TORCH_CHECK(u >= 0 && u < U, "autosample::", op, ": argument 'users' holds ", u,
              " at position ", b, ", outside [0, ", U, ")");
  TORCH_CHECK(false, "autosample::", op, ": argument 'items' holds ", item_at(items, bad),
              " at position (", b, ", ", bad % M, "); item ids must be >= 0");
}

template <typename T>
__global__ void gdns_lookup_kernel(const int64_t* __restrict__ keys, const T* __restrict__ g,
                                   int64_t S, const int64_t* __restrict__ users,
                                   const int64_t* __restrict__ items, int64_t B, int64_t M,
                                   int64_t U, T* __restrict__ out,
                                   unsigned long long* err) {
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < B * M;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t u = users[t / M], item = items[t];
    if (u < 0 || u >= U || item < 0) { report_error(err, t); out[t] = T(1); continue; }
    const int64_t slot = gdns_find(keys + u * S, S, item);
    out[t] = slot >= 0 ? g[u * S + slot] : T(1);
  }
}

at::Tensor gdns_lookup_cuda(const at::Tensor& slot_keys_in, const at::Tensor& slot_g_in,
                            const at::Tensor& users_in, const at::Tensor& items_in) {
  check_gdns_lookup_args(slot_keys_in, slot_g_in, users_in, items_in);
  const c10::cuda::CUDAGuard guard(slot_keys_in.device());
  const int64_t B = items_in.size(0), M = items_in.size(1);
  const int64_t U = slot_keys_in.size(0), S = slot_keys_in.size(1);
  auto out = at::empty({B, M}, slot_g_in.options());
  if (B == 0 || M == 0) return out;
  const auto keys = slot_keys_in.contiguous();
  const auto g = slot_g_in.contiguous();
  const auto users = users_in.contiguous();
  const auto items = items_in.contiguous();
  ErrorSlot err(users);
  constexpr int threads = 256;
  auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "gdns_lookup_cuda", [&] {
    gdns_lookup_kernel<scalar_t><<<grid_for(B * M, threads), threads, 0, stream>>>(
        keys.data_ptr<int64_t>(), g.data_ptr<scalar_t>(), S, users.data_ptr<int64_t>(),
        items.data_ptr<int64_t>(), B, M, U, out.data_ptr<scalar_t>(), err.ptr());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  const int64_t bad = err.read();
  if (bad >= 0) raise_bad_pair("gdns_lookup", bad, users, items, U);
  return out;
}

// Thread i of the sorted order starts a group when sorted_users[i] differs from its left
// neighbour; it then applies rows order[i], order[i+1], ... of that user.
template <typename T>
__global__ void gdns_update_kernel(int64_t* __restrict__ keys, T* __restrict__ h,
                                   T* __restrict__ g, int64_t S,
                                   const int64_t* __restrict__ sorted_users,
                                   const int64_t* __restrict__ order,
                                   const int64_t* __restrict__ items,
                                   const T* __restrict__ pos, const T* __restrict__ neg,
                                   int64_t B, int64_t N, int64_t P, T alpha, T eps) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= B) return;
  const int64_t u = sorted_users[i];
  if (i > 0 && sorted_users[i - 1] == u) return;
  int64_t* krow = keys + u * S;
  T* hrow = h + u * S;
  T* grow = g + u * S;
  for (int64_t j = i; j < B && sorted_users[j] == u; ++j) {
    const int64_t b = order[j];
    const T* pb = pos + b * P;
    for (int64_t n = 0; n < N; ++n) {
      const int64_t item = items[b * N + n];
      const T nv = neg[b * N + n];
      double acc = 0.0;  // as the CPU kernel: H_new accumulated in double
      for (int64_t p = 0; p < P; ++p) acc += sigmoid<T>(nv - pb[p]);
      const T h_new = static_cast<T>(acc / static_cast<double>(P));
      bool found = false;
      const int64_t slot = gdns_find_or_claim(krow, grow, S, item, &found);
      const T h_old = found ? hrow[slot] : T(1);
      const T g_old = found ? grow[slot] : T(1);
      krow[slot] = item;
      grow[slot] = gdns_next_gain(g_old, h_old, h_new, alpha, eps);
      hrow[slot] = h_new;
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
  if (B == 0 || N == 0) return;
  const auto users = users_in.contiguous();
  const auto items = items_in.contiguous();
  const auto pos = pos_in.contiguous();
  const auto neg = neg_in.contiguous();
  ErrorSlot err(users);
  constexpr int threads = 256;
  auto stream = at::cuda::getCurrentCUDAStream();
  gdns_validate_kernel<<<grid_for(B * N, threads), threads, 0, stream>>>(
      users.data_ptr<int64_t>(), items.data_ptr<int64_t>(), B, N, U, err.ptr());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  const int64_t bad = err.read();
  if (bad >= 0) raise_bad_pair("gdns_update", bad, users, items, U);
  const auto sorted = at::sort(users, /*stable=*/true, /*dim=*/0, /*descending=*/false);
  const auto sorted_users = std::get<0>(sorted).contiguous();
  const auto order = std::get<1>(sorted).contiguous();
  AT_DISPATCH_FLOATING_TYPES(slot_h.scalar_type(), "gdns_update_cuda", [&] {
    gdns_update_kernel<scalar_t><<<static_cast<unsigned>(ceil_div(B, threads)), threads, 0,
                                   stream>>>(
        slot_keys.data_ptr<int64_t>(), slot_h.data_ptr<scalar_t>(), slot_g.data_ptr<scalar_t>(),
        S, sorted_users.data_ptr<int64_t>(), order.data_ptr<int64_t>(),
        items.data_ptr<int64_t>(), pos.data_ptr<scalar_t>(), neg.data_ptr<scalar_t>(), B, N, P,
        static_cast<scalar_t>(alpha), static_cast<scalar_t>(eps));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

}  // namespace
}  // namespace cuda
}  // namespace autosample

TORCH_LIBRARY_IMPL(autosample, CUDA, m) {
  m.impl("gdns_lookup", &autosample::cuda::gdns_lookup_cuda);
  m.impl("gdns_update", &autosample::cuda::gdns_update_cuda);
}
