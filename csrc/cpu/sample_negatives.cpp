// CPU kernel of autosample::sample_negatives (DESIGN.md §3; semantics: ops/reference.py).
//
// Stream: draw s of batch row b uses draw_words(seed, offset, row = b, draw = s, attempt).
//   uniform: rank r = uniform_below(w0, w1, N - deg(u)), item = rank_to_non_member(r), attempt 0.
//   alias:   attempt a < 1024: col = uniform_below(w0, w1, N), item = (unit(w2) < prob[col]) ?
//            col : alias_idx[col]; accepted when not a positive. Otherwise the uniform rule with
//            attempt 1024.
// Preconditions not re-verified per call (O(nnz)): each CSR row is sorted and unique.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <limits>

#include "autosample/checks.h"
#include "autosample/csr.h"
#include "autosample/philox.h"

namespace autosample {
namespace {

constexpr uint32_t kAliasMaxAttempts = 1024;  // = reference.ALIAS_MAX_ATTEMPTS

// Value checks: indptr is a valid row-pointer array, every user is in range, the positives of
// every batch user lie in [0, N) (rows are sorted, so their ends suffice) and leave at least one
// non-positive item.
void check_values(const int64_t* indptr, int64_t num_users, int64_t nnz, const int64_t* idx,
                  const int64_t* users, int64_t batch, int64_t num_items) {
  TORCH_CHECK(indptr[0] >= 0 && indptr[num_users] <= nnz, "autosample::sample_negatives: "
              "argument 'indptr' must satisfy 0 <= indptr[0] and indptr[-1] <= len(indices) = ",
              nnz, ", got indptr[0] = ", indptr[0], ", indptr[-1] = ", indptr[num_users]);
  for (int64_t u = 0; u < num_users; ++u) {
    TORCH_CHECK(indptr[u] <= indptr[u + 1], "autosample::sample_negatives: argument 'indptr' "
                "must be non-decreasing, got indptr[", u, "] = ", indptr[u], " > indptr[", u + 1,
                "] = ", indptr[u + 1]);
  }
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t u = users[b];
    TORCH_CHECK(u >= 0 && u < num_users, "autosample::sample_negatives: argument 'users' holds "
                "user ", u, " at position ", b, ", outside [0, ", num_users, ")");
    const int64_t begin = indptr[u], deg = indptr[u + 1] - begin;
    if (deg > 0) {
      TORCH_CHECK(idx[begin] >= 0 && idx[begin + deg - 1] < num_items, "autosample::"
                  "sample_negatives: argument 'indices' holds item ids [", idx[begin], ", ",
                  idx[begin + deg - 1], "] for user ", u, ", outside [0, num_items = ",
                  num_items, ")");
    }
    TORCH_CHECK(deg < num_items, "autosample::sample_negatives: user ", u, " (argument 'users' "
                "position ", b, ") has no non-positive item: ", deg, " positives of num_items = ",
                num_items);
  }
}

at::Tensor sample_negatives_cpu(const at::Tensor& indptr, const at::Tensor& indices,
                                const at::Tensor& users, int64_t num_items, int64_t num_samples,
                                int64_t seed, int64_t offset,
                                const std::optional<at::Tensor>& alias_prob,
                                const std::optional<at::Tensor>& alias_idx) {
  check_sample_negatives_args(indptr, indices, users, num_items, num_samples, alias_prob,
                              alias_idx);
  const int64_t batch = users.size(0);
  constexpr int64_t kMaxCounter = int64_t{1} << 32;
  TORCH_CHECK(batch <= kMaxCounter && num_samples <= kMaxCounter, "autosample::sample_negatives:"
              " batch size (", batch, ") and 'num_samples' (", num_samples, ") must be <= 2^32");
  const at::Tensor ptr_c = indptr.contiguous(), idx_c = indices.contiguous();
  const at::Tensor users_c = users.contiguous();
  const int64_t* ptr = ptr_c.data_ptr<int64_t>();
  const int64_t* idx = idx_c.data_ptr<int64_t>();
  const int64_t* usr = users_c.data_ptr<int64_t>();
  check_values(ptr, indptr.size(0) - 1, indices.size(0), idx, usr, batch, num_items);

  at::Tensor out = at::empty({batch, num_samples}, users.options());
  if (batch == 0 || num_samples == 0) return out;
  int64_t* dst = out.data_ptr<int64_t>();

  at::Tensor prob_c, alias_c;
  const float* prob = nullptr;
  const int64_t* alias = nullptr;
  if (alias_prob.has_value()) {
    prob_c = alias_prob->contiguous();
    alias_c = alias_idx->contiguous();
    prob = prob_c.data_ptr<float>();
    alias = alias_c.data_ptr<int64_t>();
  }
  const uint64_t s_seed = static_cast<uint64_t>(seed), s_off = static_cast<uint64_t>(offset);
  const int64_t grain = std::max<int64_t>(1, 4096 / num_samples);

  at::parallel_for(0, batch, grain, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t u = usr[b];
      const int64_t* row = idx + ptr[u];
      const int64_t deg = ptr[u + 1] - ptr[u];
      const uint64_t free = static_cast<uint64_t>(num_items - deg);
      const uint32_t r32 = static_cast<uint32_t>(b);
      int64_t* o = dst + b * num_samples;
      for (int64_t s = 0; s < num_samples; ++s) {
        const uint32_t d32 = static_cast<uint32_t>(s);
        int64_t item = -1;
        uint32_t fallback_attempt = 0;
        if (prob != nullptr) {
          for (uint32_t a = 0; a < kAliasMaxAttempts && item < 0; ++a) {
            const Words4 w = draw_words(s_seed, s_off, r32, d32, a);
            const int64_t col = static_cast<int64_t>(
                uniform_below(w.w[0], w.w[1], static_cast<uint64_t>(num_items)));
            const int64_t cand = uniform_unit(w.w[2]) < prob[col] ? col : alias[col];
            TORCH_CHECK(cand >= 0 && cand < num_items, "autosample::sample_negatives: argument "
                        "'alias_idx' holds ", cand, " at position ", col,
                        ", outside [0, num_items = ", num_items, ")");
            if (!row_contains(row, deg, cand)) item = cand;
          }
          fallback_attempt = kAliasMaxAttempts;
        }
        if (item < 0) {
          const Words4 w = draw_words(s_seed, s_off, r32, d32, fallback_attempt);
          const int64_t r = static_cast<int64_t>(uniform_below(w.w[0], w.w[1], free));
          item = rank_to_non_member(row, deg, r);
        }
        o[s] = item;
      }
    }
  });
  return out;
}

}  // namespace
}  // namespace autosample

TORCH_LIBRARY_IMPL(autosample, CPU, m) {
  m.impl("sample_negatives", &autosample::sample_negatives_cpu);
}
