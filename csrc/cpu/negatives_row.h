// The draws of one batch row of sample_negatives (negative_draw.h's rule), with the CPU fast
// paths: the searches of kLanes draws run in lockstep so that their memory loads overlap. Used
// by sample_negatives and by the fused training step (mf_bpr_train), which therefore draw the
// same items for the same (seed, offset, row).
#pragma once
#include <cstdint>

#include "autosample/checks.h"
#include "autosample/negative_draw.h"

namespace autosample {
namespace cpu {

// First bad alias entry, raised for `op` (validate.h's alias rule).
inline void check_alias_table(Op op, const float* prob, const int64_t* alias, int64_t n) {
  bool ok = true;
  for (int64_t j = 0; j < n; ++j) ok &= alias_entry_ok(prob[j], alias[j], n);
  if (ok) return;
  for (int64_t j = 0; j < n; ++j) {
    const ValueError e = alias_entry_error(prob[j], alias[j], j, n);
    if (e) raise_value_error(op, e.code, e.v);
  }
}

// The first error of batch row b (user u) of a draw (validate.h's order), or none; `entries`:
// scan the user's row (sorted, unique, in [0, n)).
inline ValueError check_sample_row(const int64_t* ptr, int64_t num_users, int64_t nnz,
                                   const int64_t* idx, int64_t u, int64_t b, int64_t n,
                                   bool entries) {
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
// binary search whose step count depends only on len, run in lockstep (several times faster
// than one search after the other).
// below(k, p) must be true for p < c_k and false from c_k on; returns c_k in count[k].
constexpr int kLanes = 8;

template <typename Below>
inline void lockstep_count(int64_t len, Below below, int64_t* count) {
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

// As lockstep_count for `lanes` queries on different rows (row k of length len[k]): each lane
// takes its own number of steps; the loads of one step of every lane overlap.
template <typename Below>
inline void lockstep_count_rows(const int64_t* len, int lanes, Below below, int64_t* count) {
  int64_t n[kLanes];
  for (int k = 0; k < lanes; ++k) {
    count[k] = 0;
    n[k] = len[k];
  }
  for (bool any = true; any;) {
    any = false;
    for (int k = 0; k < lanes; ++k) {
      if (n[k] <= 1) continue;
      const int64_t half = n[k] >> 1;
      count[k] = below(k, count[k] + half - 1) ? count[k] + half : count[k];
      n[k] -= half;
      any = true;
    }
  }
  for (int k = 0; k < lanes; ++k)
    if (len[k] > 0) count[k] += below(k, count[k]) ? 1 : 0;
}

// Draw s of `lanes` (<= kLanes) batch rows at once: batch row b[k], whose user's sorted
// positives are rows[k][0, deg[k]), into out[k]. The items of draw_row (the same rule and
// stream), with the searches of the rows in lockstep: one row's search is a chain of dependent
// loads of a random CSR row, several rows' chains overlap.
inline void draw_lanes(Op op, const int64_t* const* rows, const int64_t* deg, int64_t num_items,
                       uint64_t seed, uint64_t offset, const int64_t* b, int lanes, uint32_t s,
                       const float* prob, const int64_t* alias, int64_t* out) {
  int64_t key[kLanes], count[kLanes];
  if (prob == nullptr) {  // rank_to_non_member: rank + #{p : row[p] - p <= rank}
    uint32_t w0[kLanes], w1[kLanes];
    for (int k = 0; k < lanes; ++k) {  // the Philox blocks of the lanes (vectorises)
      const Words4 w = draw_words(seed, offset, static_cast<uint32_t>(b[k]), s, 0);
      w0[k] = w.w[0];
      w1[k] = w.w[1];
    }
    for (int k = 0; k < lanes; ++k)
      key[k] = static_cast<int64_t>(
          uniform_below(w0[k], w1[k], static_cast<uint64_t>(num_items - deg[k])));
    lockstep_count_rows(deg, lanes, [&](int k, int64_t p) { return rows[k][p] - p <= key[k]; },
                        count);
    for (int k = 0; k < lanes; ++k) out[k] = key[k] + count[k];
    return;
  }
  for (int k = 0; k < lanes; ++k) {  // alias attempt 0; a positive goes on from attempt 1
    int64_t col = 0;
    key[k] = alias_candidate(seed, offset, static_cast<uint32_t>(b[k]), s, 0, num_items, prob,
                             alias, &col);
    if (key[k] < 0 || key[k] >= num_items) {  // only without validate
      const int64_t v[4] = {key[k], col, num_items, 0};
      raise_value_error(op, Err::kAliasIdx, v);
    }
  }
  lockstep_count_rows(deg, lanes, [&](int k, int64_t p) { return rows[k][p] < key[k]; }, count);
  for (int k = 0; k < lanes; ++k) {
    const bool positive = count[k] < deg[k] && rows[k][count[k]] == key[k];
    if (!positive) {
      out[k] = key[k];
      continue;
    }
    ValueError e;
    out[k] = draw_negative(rows[k], deg[k], num_items, seed, offset, static_cast<uint32_t>(b[k]),
                           s, prob, alias, 1, &e);
    if (e) raise_value_error(op, e.code, e.v);
  }
}

// Draws 0 .. num_samples-1 of batch row b, whose user's sorted positives are row[0, deg), into
// o[0, num_samples). prob / alias: the alias table or nullptr (uniform). A bad alias id raises
// kAliasIdx for `op`.
inline void draw_row(Op op, const int64_t* row, int64_t deg, int64_t num_items, uint64_t seed,
                     uint64_t offset, int64_t b, int64_t num_samples, const float* prob,
                     const int64_t* alias, int64_t* o) {
  const uint32_t r32 = static_cast<uint32_t>(b);
  auto one = [&](int64_t s, uint32_t first_attempt) -> int64_t {
    ValueError e;
    const int64_t item = draw_negative(row, deg, num_items, seed, offset, r32,
                                       static_cast<uint32_t>(s), prob, alias, first_attempt, &e);
    if (e) raise_value_error(op, e.code, e.v);
    return item;
  };
  int64_t s = 0;
  if (prob == nullptr) {  // uniform: kLanes draws at a time, then the tail one by one
    const uint64_t num_free = static_cast<uint64_t>(num_items - deg);
    int64_t rank[kLanes];
    uint32_t w0[kLanes], w1[kLanes];
    for (; s + kLanes <= num_samples; s += kLanes) {
      for (int k = 0; k < kLanes; ++k) {  // the kLanes Philox blocks (vectorises)
        const Words4 w = draw_words(seed, offset, r32, static_cast<uint32_t>(s + k), 0);
        w0[k] = w.w[0];
        w1[k] = w.w[1];
      }
      for (int k = 0; k < kLanes; ++k)
        rank[k] = static_cast<int64_t>(uniform_below(w0[k], w1[k], num_free));
      // rank_to_non_member: rank + #{p : row[p] - p <= rank}.
      int64_t count[kLanes];
      lockstep_count(deg, [&](int k, int64_t p) { return row[p] - p <= rank[k]; }, count);
      for (int k = 0; k < kLanes; ++k) o[s + k] = rank[k] + count[k];
    }
  } else {  // alias: attempt 0 of kLanes draws at once; rejected lanes go on from attempt 1
    int64_t cand[kLanes];
    for (; s + kLanes <= num_samples; s += kLanes) {
      for (int k = 0; k < kLanes; ++k) {
        int64_t col = 0;
        cand[k] = alias_candidate(seed, offset, r32, static_cast<uint32_t>(s + k), 0, num_items,
                                  prob, alias, &col);
        if (cand[k] < 0 || cand[k] >= num_items) {  // only without validate
          const int64_t v[4] = {cand[k], col, num_items, 0};
          raise_value_error(op, Err::kAliasIdx, v);
        }
      }
      // row_contains: row[lower_bound] == cand.
      int64_t pos[kLanes];
      lockstep_count(deg, [&](int k, int64_t p) { return row[p] < cand[k]; }, pos);
      for (int k = 0; k < kLanes; ++k) {
        const bool positive = pos[k] < deg && row[pos[k]] == cand[k];
        o[s + k] = positive ? one(s + k, 1) : cand[k];
      }
    }
  }
  for (; s < num_samples; ++s) o[s] = one(s, 0);
}

}  // namespace cpu
}  // namespace autosample
