// sample_negatives on CUDA: one thread per draw (b, s), the Philox stream of philox.h
// (row = b, draw = s, attempt), so the output is bit-identical to the CPU kernel and to
// reference.sample_negatives for the same (seed, offset).
//   uniform: rank r = uniform_below(w0, w1, N - deg) -> the r-th non-positive (rank_to_non_member).
//   alias:   column j uniform in [0, N), keep j if uniform_unit(w2) < prob[j] else alias[j];
//            reject positives (binary search in the sorted CSR row); after kAliasMaxAttempts
//            rejected attempts, the uniform draw with attempt = kAliasMaxAttempts.
// Value errors (user outside [0, U), a bad indptr row, positives outside [0, N), a user with no
// non-positive, alias id outside [0, N)) are reported asynchronously per draw (cuda_utils.cuh)
// with the CPU kernel's messages; the draw returns item 0. (Unlike the CPU kernel, indptr rows
// of users not in the batch are not checked: the kernel reads only the batch's rows.)
#include <torch/library.h>

#include "autosample/checks.h"
#include "autosample/csr.h"
#include "autosample/cuda_utils.cuh"
#include "autosample/philox.h"

namespace autosample {
namespace cuda {
namespace {

constexpr uint32_t kAliasMaxAttempts = 1024;  // = reference.ALIAS_MAX_ATTEMPTS

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
    if (u < 0 || u >= num_users) {
      err.report(Err::kUserOutOfRange, b, u, b, num_users);
      out[t] = 0;
      continue;
    }
    const int64_t begin = indptr[u], end = indptr[u + 1];
    const int64_t deg = end - begin;
    if (begin < 0 || deg < 0 || end > nnz) {
      err.report(Err::kCsrRowSpan, b, u, begin, end, nnz);
      out[t] = 0;
      continue;
    }
    const int64_t* row = indices + begin;
    if (deg > 0 && (row[0] < 0 || row[0] >= N)) {
      err.report(Err::kCsrEntryRange, b, row[0], u, begin, N);
      out[t] = 0;
      continue;
    }
    if (deg > 0 && (row[deg - 1] < 0 || row[deg - 1] >= N)) {
      err.report(Err::kCsrEntryRange, b, row[deg - 1], u, end - 1, N);
      out[t] = 0;
      continue;
    }
    if (deg >= N) {
      err.report(Err::kNoNegative, b, u, b, deg, N);
      out[t] = 0;
      continue;
    }
    const auto row32 = static_cast<uint32_t>(b), draw32 = static_cast<uint32_t>(s);
    int64_t item = -1;
    if (alias_prob != nullptr) {
      for (uint32_t attempt = 0; attempt < kAliasMaxAttempts; ++attempt) {
        const Words4 w = draw_words(seed, offset, row32, draw32, attempt);
        const auto col = static_cast<int64_t>(uniform_below(w.w[0], w.w[1], static_cast<uint64_t>(N)));
        const int64_t cand = uniform_unit(w.w[2]) < alias_prob[col] ? col : alias_idx[col];
        if (cand < 0 || cand >= N) {
          err.report(Err::kAliasIdx, B + b, cand, col, N);
          break;
        }
        if (!row_contains(row, deg, cand)) { item = cand; break; }
      }
    }
    if (item < 0) {
      const uint32_t attempt = alias_prob != nullptr ? kAliasMaxAttempts : 0;
      const Words4 w = draw_words(seed, offset, row32, draw32, attempt);
      const auto r = static_cast<int64_t>(uniform_below(w.w[0], w.w[1], static_cast<uint64_t>(N - deg)));
      item = rank_to_non_member(row, deg, r);
    }
    out[t] = item;
  }
}

at::Tensor sample_negatives_cuda(const at::Tensor& indptr_in, const at::Tensor& indices_in,
                                 const at::Tensor& users_in, int64_t num_items,
                                 int64_t num_samples, int64_t seed, int64_t offset,
                                 const std::optional<at::Tensor>& alias_prob_in,
                                 const std::optional<at::Tensor>& alias_idx_in) {
  check_sample_negatives_args(indptr_in, indices_in, users_in, num_items, num_samples,
                              alias_prob_in, alias_idx_in);
  const c10::cuda::CUDAGuard guard(users_in.device());
  const int64_t B = users_in.size(0);
  auto out = at::empty({B, num_samples}, users_in.options());
  if (B == 0 || num_samples == 0) return out;
  const auto indptr = indptr_in.contiguous();
  const auto indices = indices_in.contiguous();
  const auto users = users_in.contiguous();
  at::Tensor alias_prob, alias_idx;
  if (alias_prob_in.has_value()) {
    alias_prob = alias_prob_in->contiguous();
    alias_idx = alias_idx_in->contiguous();
  }
  const ErrorSink err = begin_call(Op::kSampleNegatives, users);
  constexpr int threads = 256;
  sample_negatives_kernel<<<grid_for(B * num_samples, threads), threads, 0,
                            at::cuda::getCurrentCUDAStream()>>>(
      indptr.data_ptr<int64_t>(), indices.data_ptr<int64_t>(), users.data_ptr<int64_t>(),
      indptr.size(0) - 1, indices.size(0), B, num_samples, num_items, static_cast<uint64_t>(seed),
      static_cast<uint64_t>(offset), alias_prob.defined() ? alias_prob.data_ptr<float>() : nullptr,
      alias_idx.defined() ? alias_idx.data_ptr<int64_t>() : nullptr, out.data_ptr<int64_t>(),
      err);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  end_call(err);
  return out;
}

}  // namespace
}  // namespace cuda
}  // namespace autosample

TORCH_LIBRARY_IMPL(autosample, CUDA, m) {
  m.impl("sample_negatives", &autosample::cuda::sample_negatives_cuda);
}
