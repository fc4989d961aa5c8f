// CPU kernel of autosample::sample_negatives (DESIGN.md §3; semantics: ops/reference.py).
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

#include <limits>

#include "autosample/checks.h"
#include "autosample/csr.h"
#include "autosample/philox.h"
#include "autosample/validate.h"
#include "cand_check.h"

namespace autosample {
namespace {

constexpr uint32_t kAliasMaxAttempts = 1024;  // = reference.ALIAS_MAX_ATTEMPTS
constexpr Op kOp = Op::kSampleNegatives;

// First bad alias entry, raised (validate.h's alias rule).
void check_alias_table(const float* prob, const int64_t* alias, int64_t n) {
  bool ok = true;
  for (int64_t j = 0; j < n; ++j) ok &= alias_entry_ok(prob[j], alias[j], n);
  if (ok) return;
  for (int64_t j = 0; j < n; ++j) {
    const ValueError e = alias_entry_error(prob[j], alias[j], j, n);
    if (e) raise_value_error(kOp, e.code, e.v);
  }
}

// The first error of batch row b (user u), or none.
ValueError check_row(const int64_t* ptr, int64_t num_users, int64_t nnz, const int64_t* idx,
                     int64_t u, int64_t b, int64_t n, bool entries) {
  ValueError e = sample_row_head(ptr, num_users, nnz, u, b);
  if (e) return e;
  if (entries) {
    const int64_t begin = ptr[u], len = ptr[u + 1] - begin;
    if (!csr_row_ok(idx + begin, len, n))
      return csr_entry_value_error(idx, begin, csr_first_bad(idx + begin, len, n), n, u);
  }
  return sample_row_tail(ptr[u + 1] - ptr[u], u, b, n);
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
    if (validate) check_alias_table(prob, alias, num_items);
  }
  const uint64_t s_seed = static_cast<uint64_t>(seed), s_off = static_cast<uint64_t>(offset);
  const int64_t grain = std::max<int64_t>(1, 4096 / std::max<int64_t>(num_samples, 1));
  cpu::FirstBadRow bad;

  at::parallel_for(0, batch, grain, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t u = usr[b];
      if (check_row(ptr, num_users, nnz, idx, u, b, num_items, validate)) {
        bad.flag(b);
        continue;
      }
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
        if (item < 0 || item >= num_items) {  // only without validate (the scan found it before)
          const int64_t v[4] = {item, col, num_items, 0};
          raise_value_error(kOp, Err::kAliasIdx, v);
        }
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
  const int64_t b = bad.row();
  if (b >= 0) {
    const ValueError e = check_row(ptr, num_users, nnz, idx, usr[b], b, num_items, validate);
    raise_value_error(kOp, e.code, e.v);
  }
  return out;
}

}  // namespace
}  // namespace autosample

TORCH_LIBRARY_IMPL(autosample, CPU, m) {
  m.impl("sample_negatives", &autosample::sample_negatives_cpu);
}
