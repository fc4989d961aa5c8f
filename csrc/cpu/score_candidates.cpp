// score_candidates (CPU): out[b, m] = <user_emb[b], item_emb[cand[b, m]]>, fused gather + dot.
#include <ATen/core/Tensor.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "autosample/checks.h"
#include "autosample/dot.h"
#include "cand_check.h"
#include "prefetch.h"

namespace autosample {
namespace {

at::Tensor score_candidates_cpu(const at::Tensor& user_emb_in, const at::Tensor& item_emb_in,
                                const at::Tensor& cand_in) {
  const char* op = "score_candidates";
  check_scoring_args(op, user_emb_in, item_emb_in, cand_in);
  const at::Tensor user_emb = user_emb_in.contiguous();
  const at::Tensor item_emb = item_emb_in.contiguous();
  const at::Tensor cand = cand_in.contiguous();
  const int64_t B = cand.size(0), M = cand.size(1), N = item_emb.size(0), d = user_emb.size(1);
  at::Tensor out = at::empty({B, M}, user_emb.options());
  if (B == 0 || M == 0) return out;
  const int64_t* c = cand.data_ptr<int64_t>();
  cpu::FirstBadRow bad;
  AT_DISPATCH_FLOATING_TYPES(user_emb.scalar_type(), "score_candidates_cpu", [&] {
    const scalar_t* u = user_emb.data_ptr<scalar_t>();
    const scalar_t* it = item_emb.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    const int64_t grain = std::max<int64_t>(1, 4096 / std::max<int64_t>(M, 1));
    at::parallel_for(0, B, grain, [&](int64_t lo, int64_t hi) {
      for (int64_t b = lo; b < hi; ++b) {
        const int64_t* cb = c + b * M;
        if (!cpu::ids_in_range(cb, M, N)) {
          bad.flag(b);
          continue;
        }
        const scalar_t* ub = u + b * d;
        const int64_t ahead = std::min(M, cpu::kPrefetchAhead);
        for (int64_t m = 0; m < ahead; ++m) cpu::prefetch_row(it + cb[m] * d, d);
        for (int64_t m = 0; m < M; ++m) {
          if (m + ahead < M) cpu::prefetch_row(it + cb[m + ahead] * d, d);
          o[b * M + m] = dot(ub, it + cb[m] * d, d);
        }
      }
    });
  });
  bad.raise_if_any(Op::kScoreCandidates, c, M, N);
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(autosample, CPU, m) { m.impl("score_candidates", &score_candidates_cpu); }

}  // namespace autosample
