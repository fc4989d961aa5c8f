// CPU kernel of autosample::sample_negatives (docs/design.md; semantics: ops/reference.py).
//
// Stream: draw s of batch row b uses draw_words(seed, offset, row = b, draw = s, attempt).
//   uniform: rank r = uniform_below(w0, w1, N - deg(u)), item = rank_to_non_member(r), attempt 0.
//   alias:   attempt a < 1024: col = uniform_below(w0, w1, N), item = (unit(w2) < prob[col]) ?
//            col : alias_idx[col]; accepted when not a positive. Otherwise the uniform rule with
//            attempt 1024.
// Value checks (validate.h, errors.h; the CUDA kernel applies the same), raised after the
// parallel loop for the first bad entry: the alias table (prob in [0, 1], alias id in [0, N)),
// then batch row by batch row: user in range, its row's span, its row sorted / unique / in
// [0, N), at least one non-positive item. validate=false skips the O(N) alias scan and the
// O(deg) row scans (the caller vouches for them); the O(1) checks always run.
#include <ATen/core/Tensor.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "autosample/checks.h"
#include "autosample/validate.h"
#include "cand_check.h"
#include "negatives_row.h"

namespace autosample {
namespace {

constexpr Op kOp = Op::kSampleNegatives;

at::Tensor sample_negatives_cpu(const at::Tensor& indptr, const at::Tensor& indices,
                                const at::Tensor& users, int64_t num_items, int64_t num_samples,
                                int64_t seed, int64_t offset,
                                const std::optional<at::Tensor>& alias_prob,
                                const std::optional<at::Tensor>& alias_idx, bool validate) {
  check_sample_negatives_args(indptr, indices, users, num_items, num_samples, alias_prob,
                              alias_idx);
  const int64_t batch = users.size(0);
  at::Tensor out = at::empty({batch, num_samples}, users.options());
  if (batch == 0) return out;
  const at::Tensor ptr_c = indptr.contiguous(), idx_c = indices.contiguous();
  const at::Tensor users_c = users.contiguous();
  const int64_t* ptr = ptr_c.data_ptr<int64_t>();
  const int64_t* idx = idx_c.data_ptr<int64_t>();
  const int64_t* usr = users_c.data_ptr<int64_t>();
  const int64_t num_users = indptr.size(0) - 1, nnz = indices.size(0);
  int64_t* dst = out.data_ptr<int64_t>();

  at::Tensor prob_c, alias_c;
  const float* prob = nullptr;
  const int64_t* alias = nullptr;
  if (alias_prob.has_value()) {
    prob_c = alias_prob->contiguous();
    alias_c = alias_idx->contiguous();
    prob = prob_c.data_ptr<float>();
    alias = alias_c.data_ptr<int64_t>();
    if (validate) cpu::check_alias_table(kOp, prob, alias, num_items);
  }
  const uint64_t s_seed = static_cast<uint64_t>(seed), s_off = static_cast<uint64_t>(offset);
  const int64_t grain = std::max<int64_t>(1, 4096 / std::max<int64_t>(num_samples, 1));
  cpu::FirstBadRow bad;

  at::parallel_for(0, batch, grain, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t u = usr[b];
      if (cpu::check_sample_row(ptr, num_users, nnz, idx, u, b, num_items, validate)) {
        bad.flag(b);
        continue;
      }
      cpu::draw_row(kOp, idx + ptr[u], ptr[u + 1] - ptr[u], num_items, s_seed, s_off, b,
                    num_samples, prob, alias, dst + b * num_samples);
    }
  });
  const int64_t b = bad.row();
  if (b >= 0) {
    const ValueError e = cpu::check_sample_row(ptr, num_users, nnz, idx, usr[b], b, num_items, validate);
    raise_value_error(kOp, e.code, e.v);
  }
  return out;
}

}  // namespace
}  // namespace autosample

TORCH_LIBRARY_IMPL(autosample, CPU, m) {
  m.impl("sample_negatives", &autosample::sample_negatives_cpu);
}
