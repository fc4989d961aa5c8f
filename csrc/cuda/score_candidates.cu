// score_candidates on CUDA: out[b, m] = <user_emb[b], item_emb[cand[b, m]]>.
// One warp per row; gathers and dot.h-order dot products as in scoring.cuh (bit-identical to the
// CPU kernel). Ids outside [0, N) are reported asynchronously (cuda_utils.cuh) and scored as
// item 0.
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "autosample/checks.h"
#include "autosample/cuda_utils.cuh"
#include "autosample/scoring.cuh"

namespace autosample {
namespace cuda {
namespace {

template <typename T, bool VEC, int NB>
__global__ void score_candidates_kernel(const T* __restrict__ user, const T* __restrict__ items,
                                        const int64_t* __restrict__ cand, int64_t B, int64_t M,
                                        int64_t N, int64_t d, T* __restrict__ out,
                                        const ErrorSink err) {
  const int64_t b = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
  if (b >= B) return;  // warp-uniform
  score_row<T, VEC, NB>(user + b * d, items, cand + b * M, b, M, N, d, err,
                        [&](int64_t m0, const ChunkScore& cs, T s) {
                          if (cs.valid) out[b * M + m0 + threadIdx.x % kWarp] = s;
                        });
}

at::Tensor score_candidates_cuda(const at::Tensor& user_emb_in, const at::Tensor& item_emb_in,
                                 const at::Tensor& cand_in) {
  check_scoring_args("score_candidates", user_emb_in, item_emb_in, cand_in);
  const c10::cuda::CUDAGuard guard(user_emb_in.device());
  const auto user_emb = user_emb_in.contiguous();
  const auto item_emb = item_emb_in.contiguous();
  const auto cand = cand_in.contiguous();
  const int64_t B = cand.size(0), M = cand.size(1), N = item_emb.size(0), d = user_emb.size(1);
  auto out = at::empty({B, M}, user_emb.options());
  if (B == 0 || M == 0) return out;
  TORCH_CHECK(N > 0, "autosample::score_candidates: argument 'item_emb' has no rows but 'cand' holds ",
              B * M, " item ids");
  const ErrorSink err = begin_call(Op::kScoreCandidates, cand);
  constexpr int threads = 128;
  const auto blocks = static_cast<unsigned>(ceil_div(B * kWarp, threads));
  auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(user_emb.scalar_type(), "score_candidates_cuda", [&] {
    const bool vec = can_vectorise<scalar_t>(user_emb.data_ptr(), d) &&
                     can_vectorise<scalar_t>(item_emb.data_ptr(), d);
    const scalar_t* up = user_emb.data_ptr<scalar_t>();
    const scalar_t* ip = item_emb.data_ptr<scalar_t>();
    const int64_t* cp = cand.data_ptr<int64_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    const int nb = fixed_blocks<scalar_t>(up, ip, d);
    if (nb == 8) {
      score_candidates_kernel<scalar_t, true, 8><<<blocks, threads, 0, stream>>>(up, ip, cp, B, M, N, d, op, err);
    } else if (nb == 4) {
      score_candidates_kernel<scalar_t, true, 4><<<blocks, threads, 0, stream>>>(up, ip, cp, B, M, N, d, op, err);
    } else if (vec) {
      score_candidates_kernel<scalar_t, true, 0><<<blocks, threads, 0, stream>>>(up, ip, cp, B, M, N, d, op, err);
    } else {
      score_candidates_kernel<scalar_t, false, 0><<<blocks, threads, 0, stream>>>(up, ip, cp, B, M, N, d, op, err);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  end_call(err);
  return out;
}

}  // namespace
}  // namespace cuda
}  // namespace autosample

TORCH_LIBRARY_IMPL(autosample, CUDA, m) {
  m.impl("score_candidates", &autosample::cuda::score_candidates_cuda);
}
