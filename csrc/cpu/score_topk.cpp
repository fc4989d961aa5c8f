// score_topk (CPU): per row, the k best of <user_emb[b], item_emb[cand[b, m]]> over m, fused:
// gather + dot + running top-k, no [B, M] scores. Order: topk.h (ties to the smaller position).
#include <ATen/core/Tensor.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <tuple>

#include "autosample/checks.h"
#include "autosample/dot.h"
#include "cand_check.h"
#include "prefetch.h"
#include "stream_topk.h"

namespace autosample {
namespace {

std::tuple<at::Tensor, at::Tensor> score_topk_cpu(const at::Tensor& user_emb_in,
                                                  const at::Tensor& item_emb_in,
                                                  const at::Tensor& cand_in, int64_t k) {
  const char* op = "score_topk";
  check_scoring_args(op, user_emb_in, item_emb_in, cand_in);
  check_k(op, k, cand_in.size(1), "M, the number of candidates");
  const at::Tensor user_emb = user_emb_in.contiguous();
  const at::Tensor item_emb = item_emb_in.contiguous();
  const at::Tensor cand = cand_in.contiguous();
  const int64_t B = cand.size(0), M = cand.size(1), N = item_emb.size(0), d = user_emb.size(1);
  at::Tensor scores = at::empty({B, k}, user_emb.options());
  at::Tensor items = at::empty({B, k}, cand.options());
  if (B == 0 || M == 0) return {scores, items};
  const int64_t* c = cand.data_ptr<int64_t>();
  int64_t* oi = items.data_ptr<int64_t>();
  cpu::FirstBadRow bad;
  AT_DISPATCH_FLOATING_TYPES(user_emb.scalar_type(), "score_topk_cpu", [&] {
    const scalar_t* u = user_emb.data_ptr<scalar_t>();
    const scalar_t* it = item_emb.data_ptr<scalar_t>();
    scalar_t* os = scores.data_ptr<scalar_t>();
    const int64_t grain = std::max<int64_t>(1, 4096 / M);
    at::parallel_for(0, B, grain, [&](int64_t lo, int64_t hi) {
      for (int64_t b = lo; b < hi; ++b) {
        const int64_t* cb = c + b * M;
        if (!cpu::ids_in_range(cb, M, N)) {
          bad.flag(b);
          continue;
        }
        if (k == 0) continue;
        const scalar_t* ub = u + b * d;
        const int64_t ahead = std::min(M, cpu::kPrefetchAhead);
        for (int64_t m = 0; m < ahead; ++m) cpu::prefetch_row(it + cb[m] * d, d);
        cpu::StreamTopK<scalar_t> top(os + b * k, oi + b * k, k);  // idx: positions first
        for (int64_t m = 0; m < M; ++m) {
          if (m + ahead < M) cpu::prefetch_row(it + cb[m + ahead] * d, d);
          top.offer(dot(ub, it + cb[m] * d, d), m);
        }
        top.finish();
        for (int64_t j = 0; j < k; ++j) oi[b * k + j] = cb[oi[b * k + j]];
      }
    });
  });
  bad.raise_if_any(Op::kScoreTopk, c, M, N);
  return {scores, items};
}

}  // namespace

TORCH_LIBRARY_IMPL(autosample, CPU, m) { m.impl("score_topk", &score_topk_cpu); }

}  // namespace autosample
