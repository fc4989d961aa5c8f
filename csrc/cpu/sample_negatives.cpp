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

// The searches of csr.h for kLanes queries on one row at once, same results: a branchless
// binary search whose step count depends only on len, run in lockstep so that the lanes'
// memory loads overlap (several times faster than one search after the other).
// below(k, p) must be true for p < c_k and false from c_k on; returns c_k in count[k].
constexpr int kLanes = 8;

template <typename Below>
void lockstep_count(int64_t len, Below below, int64_t* count) {
  for (int k = 0; k < kLanes; ++k) count[k] = 0;
  if (len == 0) return;
  for (int64_t n = len; n > 1;) {
    const int64_t half = n >> 1;
    for (int k = 0; k < kLanes; ++k) {
      count[k] = below(k, count[k] + half - 1) ? count[k] + half : count[k];
    }
    n -= half;
  }
  for (int k = 0; k < kLanes; ++k) count[k] += below(k, count[k]) ? 1 : 0;
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
      const uint64_t num_free = static_cast<uint64_t>(num_items - deg);
      const uint32_t r32 = static_cast<uint32_t>(b);
      int64_t* o = dst + b * num_samples;
      // One alias attempt: col uniform in [0, N), kept with probability prob[col].
      auto alias_draw = [&](uint32_t draw, uint32_t attempt) -> int64_t {
        const Words4 w = draw_words(s_seed, s_off, r32, draw, attempt);
        const int64_t col = static_cast<int64_t>(
            uniform_below(w.w[0], w.w[1], static_cast<uint64_t>(num_items)));
        const int64_t item = uniform_unit(w.w[2]) < prob[col] ? col : alias[col];
        TORCH_CHECK(item >= 0 && item < num_items, "autosample::sample_negatives: argument "
                    "'alias_idx' holds ", item, " at position ", col,
                    ", outside [0, num_items = ", num_items, ")");
        return item;
      };
      // The whole rule for one draw, alias attempts from first_attempt on.
      auto draw_one = [&](uint32_t draw, uint32_t first_attempt) -> int64_t {
        uint32_t fallback_attempt = 0;
        if (prob != nullptr) {
          for (uint32_t a = first_attempt; a < kAliasMaxAttempts; ++a) {
            const int64_t item = alias_draw(draw, a);
            if (!row_contains(row, deg, item)) return item;
          }
          fallback_attempt = kAliasMaxAttempts;
        }
        const Words4 w = draw_words(s_seed, s_off, r32, draw, fallback_attempt);
        const int64_t r = static_cast<int64_t>(uniform_below(w.w[0], w.w[1], num_free));
        return rank_to_non_member(row, deg, r);
      };
      int64_t s = 0;
      if (prob == nullptr) {  // uniform: kLanes draws at a time, then the tail one by one
        int64_t rank[kLanes];
        for (; s + kLanes <= num_samples; s += kLanes) {
          for (int k = 0; k < kLanes; ++k) {
            const Words4 w = draw_words(s_seed, s_off, r32, static_cast<uint32_t>(s + k), 0);
            rank[k] = static_cast<int64_t>(uniform_below(w.w[0], w.w[1], num_free));
          }
          // rank_to_non_member: rank + #{p : row[p] - p <= rank}.
          int64_t count[kLanes];
          lockstep_count(deg, [&](int k, int64_t p) { return row[p] - p <= rank[k]; }, count);
          for (int k = 0; k < kLanes; ++k) o[s + k] = rank[k] + count[k];
        }
      } else {  // alias: attempt 0 of kLanes draws at once; rejected lanes go on from attempt 1
        int64_t cand[kLanes];
        for (; s + kLanes <= num_samples; s += kLanes) {
          for (int k = 0; k < kLanes; ++k) {
            cand[k] = alias_draw(static_cast<uint32_t>(s + k), 0);
          }
          // row_contains: row[lower_bound] == cand.
          int64_t pos[kLanes];
          lockstep_count(deg, [&](int k, int64_t p) { return row[p] < cand[k]; }, pos);
          for (int k = 0; k < kLanes; ++k) {
            const bool positive = pos[k] < deg && row[pos[k]] == cand[k];
            o[s + k] = positive ? draw_one(static_cast<uint32_t>(s + k), 1) : cand[k];
          }
        }
      }
      for (; s < num_samples; ++s) o[s] = draw_one(static_cast<uint32_t>(s), 0);
    }
  });
  return out;
}

}  // namespace
}  // namespace autosample

TORCH_LIBRARY_IMPL(autosample, CPU, m) {
  m.impl("sample_negatives", &autosample::sample_negatives_cpu);
}
