// One draw of sample_negatives' rule (the Philox stream of philox.h), shared by the CPU and CUDA
// kernels of sample_negatives and of the fused training step (mf_bpr_train), so that both ops
// draw identical negatives for the same (seed, offset, row, draw):
//   uniform (prob == nullptr): attempt 0, rank r = uniform_below(w0, w1, N - deg), the r-th
//       non-positive item (rank_to_non_member);
//   alias: attempts a = first_attempt .. kAliasMaxAttempts - 1: column j = uniform_below(w0, w1, N),
//       kept when uniform_unit(w2) < prob[j], else alias[j]; accepted when not a positive; after
//       the last rejected attempt, the uniform rule with attempt kAliasMaxAttempts.
// An alias id outside [0, N) (only possible without the table scan of validate) stops the draw:
// the return value is -1 and *err holds kAliasIdx (the id, the column, N).
#pragma once
#include "autosample/common.h"
#include "autosample/csr.h"
#include "autosample/philox.h"
#include "autosample/validate.h"

namespace autosample {

constexpr uint32_t kAliasMaxAttempts = 1024;  // = reference.ALIAS_MAX_ATTEMPTS

// The alias candidate of one attempt (item id, or out of range: see the header comment).
AS_HD int64_t alias_candidate(uint64_t seed, uint64_t offset, uint32_t row, uint32_t draw,
                              uint32_t attempt, int64_t N, const float* prob,
                              const int64_t* alias, int64_t* col_out) {
  const Words4 w = draw_words(seed, offset, row, draw, attempt);
  const auto col = static_cast<int64_t>(uniform_below(w.w[0], w.w[1], static_cast<uint64_t>(N)));
  *col_out = col;
  return uniform_unit(w.w[2]) < prob[col] ? col : alias[col];
}

// The uniform rule: the r-th non-positive item of the row, r drawn with `attempt`.
AS_HD int64_t uniform_negative(const int64_t* row, int64_t deg, int64_t N, uint64_t seed,
                               uint64_t offset, uint32_t b, uint32_t s, uint32_t attempt) {
  const Words4 w = draw_words(seed, offset, b, s, attempt);
  const auto r = static_cast<int64_t>(
      uniform_below(w.w[0], w.w[1], static_cast<uint64_t>(N - deg)));
  return rank_to_non_member(row, deg, r);
}

// Draw s of batch row b of a user whose sorted positives are row[0, deg).
AS_HD int64_t draw_negative(const int64_t* row, int64_t deg, int64_t N, uint64_t seed,
                            uint64_t offset, uint32_t b, uint32_t s, const float* prob,
                            const int64_t* alias, uint32_t first_attempt, ValueError* err) {
  uint32_t fallback = 0;
  if (prob != nullptr) {
    for (uint32_t a = first_attempt; a < kAliasMaxAttempts; ++a) {
      int64_t col = 0;
      const int64_t item = alias_candidate(seed, offset, b, s, a, N, prob, alias, &col);
      if (item < 0 || item >= N) {
        *err = value_error(Err::kAliasIdx, item, col, N);
        return -1;
      }
      if (!row_contains(row, deg, item)) return item;
    }
    fallback = kAliasMaxAttempts;
  }
  return uniform_negative(row, deg, N, seed, offset, b, s, fallback);
}

}  // namespace autosample
