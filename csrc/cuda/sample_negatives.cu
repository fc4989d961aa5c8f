// sample_negatives on CUDA: one thread per draw (b, s), the Philox stream of philox.h
// (row = b, draw = s, attempt), so the output is bit-identical to the CPU kernel and to
// reference.sample_negatives for the same (seed, offset).
//   uniform: rank r = uniform_below(w0, w1, N - deg) -> the r-th non-positive (rank_to_non_member).
//   alias:   column j uniform in [0, N), keep j if uniform_unit(w2) < prob[j] else alias[j];
//            reject positives (binary search in the sorted CSR row); after kAliasMaxAttempts
//            rejected attempts, the uniform draw with attempt = kAliasMaxAttempts.
// Value checks: validate.h's rules in the CPU kernel's order, reported asynchronously
// (cuda_utils.cuh) by sample_validate_kernel before the draws: alias entries (index j), then
// batch rows (index N + b: user in range, row span, [row entries], a non-positive item). The
// draw kernel re-derives the O(1) conditions and returns item 0 for a bad row (never reads out
// of bounds); validate=false skips the O(N) alias and O(deg) row scans. Rows of users not in the
// batch are not read, hence not checked (on the CPU either).
#include <torch/library.h>

#include <ATen/ops/empty.h>

#include "autosample/checks.h"
#include "autosample/csr.h"
#include "autosample/csr_check.cuh"
#include "autosample/cuda_utils.cuh"
#include "autosample/negative_draw.h"
#include "autosample/philox.h"
#include "autosample/validate.h"

namespace autosample {
namespace cuda {
namespace {

// One warp per batch row b (grid-stride): the row checks, reported with index N + b.
__global__ void sample_validate_rows_kernel(const int64_t* __restrict__ indptr,
                                            const int64_t* __restrict__ indices,
                                            const int64_t* __restrict__ users, int64_t num_users,
                                            int64_t nnz, int64_t B, int64_t N, bool entries,
                                            const ErrorSink err) {
  const int lane = threadIdx.x % kWarp;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * blockDim.x / kWarp;
  for (int64_t b = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp; b < B;
       b += warps) {  // warp-uniform
    const int64_t u = users[b];
    ValueError e = sample_row_head(indptr, num_users, nnz, u, b);
    if (!e && entries && !warp_check_csr_row(indices, indptr[u], indptr[u + 1], N, u, N + b, err))
      continue;
    if (!e) e = sample_row_tail(indptr[u + 1] - indptr[u], u, b, N);
    if (e && lane == 0) err.report(e.code, N + b, e.v[0], e.v[1], e.v[2], e.v[3]);
  }
}

// Alias entries j (validate only), reported with index j.
__global__ void sample_validate_alias_kernel(const float* __restrict__ alias_prob,
                                             const int64_t* __restrict__ alias_idx, int64_t N,
                                             const ErrorSink err) {
  for (int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; j < N;
       j += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const ValueError e = alias_entry_error(alias_prob[j], alias_idx[j], j, N);
    if (e) err.report(e.code, j, e.v[0], e.v[1], e.v[2], e.v[3]);
  }
}

__global__ void sample_negatives_kernel(const int64_t* __restrict__ indptr,
                                        const int64_t* __restrict__ indices,
                                        const int64_t* __restrict__ users, int64_t num_users,
                                        int64_t nnz,
                                        int64_t B, int64_t S, int64_t N, uint64_t seed,
                                        uint64_t offset, const float* __restrict__ alias_prob,
                                        const int64_t* __restrict__ alias_idx,
                                        int64_t* __restrict__ out, const ErrorSink err) {
  const int64_t total = B * S;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t b = t / S, s = t % S;
    const int64_t u = users[b];
    if (sample_row_head(indptr, num_users, nnz, u, b) ||
        sample_row_tail(indptr[u + 1] - indptr[u], u, b, N)) {
      out[t] = 0;  // reported by sample_validate_kernel
      continue;
    }
    const int64_t begin = indptr[u], deg = indptr[u + 1] - begin;
    ValueError e;
    int64_t item = draw_negative(indices + begin, deg, N, seed, offset, static_cast<uint32_t>(b),
                                 static_cast<uint32_t>(s), alias_prob, alias_idx, 0, &e);
    if (e) {  // as the validate scan would (it is off or ran first); index: the column
      err.report(e.code, e.v[1], e.v[0], e.v[1], e.v[2], e.v[3]);
      item = 0;
    }
    out[t] = item;
  }
}

at::Tensor sample_negatives_cuda(const at::Tensor& indptr_in, const at::Tensor& indices_in,
                                 const at::Tensor& users_in, int64_t num_items,
                                 int64_t num_samples, int64_t seed, int64_t offset,
                                 const std::optional<at::Tensor>& alias_prob_in,
                                 const std::optional<at::Tensor>& alias_idx_in, bool validate) {
  check_sample_negatives_args(indptr_in, indices_in, users_in, num_items, num_samples,
                              alias_prob_in, alias_idx_in);
  const c10::cuda::CUDAGuard guard(users_in.device());
  const int64_t B = users_in.size(0);
  auto out = at::empty({B, num_samples}, users_in.options());
  if (B == 0) return out;
  const auto indptr = indptr_in.contiguous();
  const auto indices = indices_in.contiguous();
  const auto users = users_in.contiguous();
  at::Tensor alias_prob, alias_idx;
  if (alias_prob_in.has_value()) {
    alias_prob = alias_prob_in->contiguous();
    alias_idx = alias_idx_in->contiguous();
  }
  const float* prob = alias_prob.defined() ? alias_prob.data_ptr<float>() : nullptr;
  const int64_t* alias = alias_idx.defined() ? alias_idx.data_ptr<int64_t>() : nullptr;
  const int64_t num_users = indptr.size(0) - 1, nnz = indices.size(0);
  const ErrorSink err = begin_call(Op::kSampleNegatives, users);
  constexpr int threads = 256;
  auto stream = at::cuda::getCurrentCUDAStream();
  if (validate && prob != nullptr) {
    sample_validate_alias_kernel<<<grid_for(num_items, threads), threads, 0, stream>>>(
        prob, alias, num_items, err);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  sample_validate_rows_kernel<<<grid_for(B * kWarp, threads), threads, 0, stream>>>(
      indptr.data_ptr<int64_t>(), indices.data_ptr<int64_t>(), users.data_ptr<int64_t>(),
      num_users, nnz, B, num_items, validate, err);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  if (num_samples > 0) {
    sample_negatives_kernel<<<grid_for(B * num_samples, threads), threads, 0, stream>>>(
        indptr.data_ptr<int64_t>(), indices.data_ptr<int64_t>(), users.data_ptr<int64_t>(),
        num_users, nnz, B, num_samples, num_items, static_cast<uint64_t>(seed),
        static_cast<uint64_t>(offset), prob, alias, out.data_ptr<int64_t>(), err);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  end_call(err);
  return out;
}

}  // namespace
}  // namespace cuda
}  // namespace autosample

TORCH_LIBRARY_IMPL(autosample, CUDA, m) {
  m.impl("sample_negatives", &autosample::cuda::sample_negatives_cuda);
}
