// Value rules shared by the CPU and CUDA kernels (DESIGN.md §3), one definition each, so that
// both devices accept and reject the same inputs. Messages: errors.h.
//
// CSR rows read by an op (the positives of sample_negatives' users, rank_topk's exclusions):
//   span:   [begin, end) within [0, nnz] (indptr need not start at 0: a slice of a larger CSR);
//   values: ids in [0, n), strictly increasing (sorted, no duplicates; csr.h's searches rely on
//           it). The first bad entry of a row is the first p with row[p] outside [0, n) or
//           row[p] <= row[p - 1]; its code is kCsrEntryRange or kCsrEntryOrder, in that order.
#pragma once
#include "autosample/common.h"
#include "autosample/errors.h"

namespace autosample {

AS_HD bool csr_span_ok(int64_t begin, int64_t end, int64_t nnz) {
  return 0 <= begin && begin <= end && end <= nnz;
}

AS_HD bool csr_entry_ok(const int64_t* row, int64_t p, int64_t n) {
  const int64_t v = row[p];
  return v >= 0 && v < n && (p == 0 || row[p - 1] < v);
}

AS_HD Err csr_entry_error(const int64_t* row, int64_t p, int64_t n) {
  return (row[p] < 0 || row[p] >= n) ? Err::kCsrEntryRange : Err::kCsrEntryOrder;
}

// Whole-row test without early exit (vectorises on the CPU): strictly increasing with both ends
// in range implies every entry is in range.
AS_HD bool csr_row_ok(const int64_t* row, int64_t len, int64_t n) {
  if (len == 0) return true;
  bool ok = row[0] >= 0 && row[len - 1] < n;
  for (int64_t p = 1; p < len; ++p) ok &= row[p - 1] < row[p];
  return ok;
}

// First bad entry of a row, or -1.
AS_HD int64_t csr_first_bad(const int64_t* row, int64_t len, int64_t n) {
  for (int64_t p = 0; p < len; ++p) {
    if (!csr_entry_ok(row, p, n)) return p;
  }
  return -1;
}

// Alias table entry j (sample_negatives): prob in [0, 1] (NaN fails), alias id in [0, n).
AS_HD bool alias_prob_ok(float p) { return p >= 0.0f && p <= 1.0f; }
AS_HD bool alias_idx_ok(int64_t a, int64_t n) { return a >= 0 && a < n; }

}  // namespace autosample
