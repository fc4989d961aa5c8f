// score_topk on CUDA: fused gather + dot + top-k, the [B, M] scores never written (k <= 128).
// One warp per row: each chunk of 32 candidates is scored as in scoring.cuh (16-byte gathers
// when d and the pointers allow; for d = 32 / 64 the user row in registers and all of a dot's
// loads in flight at once) and offered to a WarpTopK held in registers; positions are the
// tie-break (canonical order), the item ids are read from cand at the end.
// k > 128 (kMaxWarpK): the scores are written with score_candidates' kernel and a stable device
// sort picks the top k (documented fallback; DNS uses k = 1).
// Ids outside [0, N) are reported asynchronously (cuda_utils.cuh), also when k = 0; they are
// scored as item 0 and returned as item 0.
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/gather.h>
#include <ATen/ops/where.h>
#include <ATen/ops/zeros_like.h>
#include <ATen/ops/sort.h>
#include <torch/library.h>

#include "autosample/checks.h"
#include "autosample/cuda_utils.cuh"
#include "autosample/scoring.cuh"
#include "autosample/warp_topk.cuh"

namespace autosample {
namespace cuda {
namespace {

template <typename T, bool VEC, int NB, int KW>
__global__ void score_topk_kernel(const T* __restrict__ user, const T* __restrict__ items,
                                  const int64_t* __restrict__ cand, int64_t B, int64_t M,
                                  int64_t N, int64_t d, int k, T* __restrict__ out_s,
                                  int64_t* __restrict__ out_i, const ErrorSink err) {
  const int64_t b = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
  if (b >= B) return;  // warp-uniform
  const T* u = user + b * d;
  const int64_t* row = cand + b * M;
  WarpTopK<T, int64_t, KW> top(k);
  score_row<T, VEC, NB>(u, items, row, b, M, N, d, err, [&](int64_t m0, const ChunkScore& cs, T s) {
    top.offer(s, m0 + top.lane, cs.valid);
  });
  top.write(out_s + b * k, out_i + b * k, [row, N](int64_t p) {
    const int64_t id = row[p];
    return id >= 0 && id < N ? id : int64_t{0};
  });
}

// k = 0: nothing to select, but the ids are still checked (as on the CPU).
__global__ void check_cand_kernel(const int64_t* __restrict__ cand, int64_t B, int64_t M,
                                  int64_t N, const ErrorSink err) {
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < B * M;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t id = cand[t];
    if (id < 0 || id >= N) err.report(Err::kCandOutOfRange, t, id, t / M, t % M, N);
  }
}

template <typename T, bool VEC, int NB>
void launch(const at::Tensor& user, const at::Tensor& items, const at::Tensor& cand, int64_t k,
            at::Tensor& out_s, at::Tensor& out_i, const ErrorSink& err) {
  const int64_t B = cand.size(0), M = cand.size(1), N = items.size(0), d = user.size(1);
  constexpr int threads = 128;
  const auto blocks = static_cast<unsigned>(ceil_div(B * kWarp, threads));
  auto stream = at::cuda::getCurrentCUDAStream();
  const T* up = user.data_ptr<T>();
  const T* ip = items.data_ptr<T>();
  const int64_t* cp = cand.data_ptr<int64_t>();
  T* sp = out_s.data_ptr<T>();
  int64_t* op = out_i.data_ptr<int64_t>();
  const int kk = static_cast<int>(k);
  if (k <= 32) {
    score_topk_kernel<T, VEC, NB, 1><<<blocks, threads, 0, stream>>>(up, ip, cp, B, M, N, d, kk, sp, op, err);
  } else if (k <= 64) {
    score_topk_kernel<T, VEC, NB, 2><<<blocks, threads, 0, stream>>>(up, ip, cp, B, M, N, d, kk, sp, op, err);
  } else {
    score_topk_kernel<T, VEC, NB, 4><<<blocks, threads, 0, stream>>>(up, ip, cp, B, M, N, d, kk, sp, op, err);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

std::tuple<at::Tensor, at::Tensor> score_topk_cuda(const at::Tensor& user_emb_in,
                                                   const at::Tensor& item_emb_in,
                                                   const at::Tensor& cand_in, int64_t k) {
  check_scoring_args("score_topk", user_emb_in, item_emb_in, cand_in);
  check_k("score_topk", k, cand_in.size(1), "M, the number of candidates");
  const c10::cuda::CUDAGuard guard(user_emb_in.device());
  const int64_t B = cand_in.size(0), M = cand_in.size(1);
  auto out_s = at::empty({B, k}, user_emb_in.options());
  auto out_i = at::empty({B, k}, cand_in.options());
  if (B == 0 || M == 0) return {out_s, out_i};
  const int64_t N = item_emb_in.size(0);
  TORCH_CHECK(N > 0, "autosample::score_topk: argument 'item_emb' has no rows but 'cand' holds ",
              B * M, " item ids");
  const auto cand = cand_in.contiguous();
  const ErrorSink err = begin_call(Op::kScoreTopk, cand);
  if (k == 0 || k > kMaxWarpK) {  // the ids are checked here, under this op's name
    constexpr int threads = 256;
    check_cand_kernel<<<grid_for(B * M, threads), threads, 0, at::cuda::getCurrentCUDAStream()>>>(
        cand.data_ptr<int64_t>(), B, M, N, err);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    end_call(err);
    if (k == 0) return {out_s, out_i};
    static const auto score_op =
        c10::Dispatcher::singleton()
            .findSchemaOrThrow("autosample::score_candidates", "")
            .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&)>();
    const auto scores = score_op.call(user_emb_in.detach(), item_emb_in.detach(), cand);
    auto [values, positions] = sort_topk(scores, k);
    const auto ids = at::gather(cand, 1, positions);
    return {values, at::where(ids.ge(0).logical_and(ids.lt(N)), ids, at::zeros_like(ids))};
  }
  const auto user_emb = user_emb_in.contiguous();
  const auto item_emb = item_emb_in.contiguous();
  const int64_t d = user_emb.size(1);
  AT_DISPATCH_FLOATING_TYPES(user_emb.scalar_type(), "score_topk_cuda", [&] {
    const bool vec = can_vectorise<scalar_t>(user_emb.data_ptr(), d) &&
                     can_vectorise<scalar_t>(item_emb.data_ptr(), d);
    const int nb = fixed_blocks<scalar_t>(user_emb.data_ptr(), item_emb.data_ptr(), d);
    if (nb == 8) launch<scalar_t, true, 8>(user_emb, item_emb, cand, k, out_s, out_i, err);
    else if (nb == 4) launch<scalar_t, true, 4>(user_emb, item_emb, cand, k, out_s, out_i, err);
    else if (vec) launch<scalar_t, true, 0>(user_emb, item_emb, cand, k, out_s, out_i, err);
    else launch<scalar_t, false, 0>(user_emb, item_emb, cand, k, out_s, out_i, err);
  });
  end_call(err);
  return {out_s, out_i};
}

}  // namespace
}  // namespace cuda
}  // namespace autosample

TORCH_LIBRARY_IMPL(autosample, CUDA, m) {
  m.impl("score_topk", &autosample::cuda::score_topk_cuda);
}
