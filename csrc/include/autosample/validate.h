// Value rules shared by the CPU and CUDA kernels (docs/design.md), one definition each, so that
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

// A value error: errors.h's code and the values its message quotes (code kNone: no error).
struct ValueError {
  Err code = Err::kNone;
  int64_t v[4] = {0, 0, 0, 0};
  AS_HD explicit operator bool() const { return code != Err::kNone; }
};

AS_HD ValueError value_error(Err code, int64_t v0, int64_t v1 = 0, int64_t v2 = 0,
                             int64_t v3 = 0) {
  ValueError e;
  e.code = code;
  e.v[0] = v0;
  e.v[1] = v1;
  e.v[2] = v2;
  e.v[3] = v3;
  return e;
}

// The error of entry p of row `row_id` = indices[begin, begin + len) (p from csr_first_bad).
AS_HD ValueError csr_entry_value_error(const int64_t* indices, int64_t begin, int64_t p,
                                       int64_t n, int64_t row_id) {
  const int64_t* row = indices + begin;
  if (csr_entry_error(row, p, n) == Err::kCsrEntryRange)
    return value_error(Err::kCsrEntryRange, row[p], row_id, begin + p, n);
  return value_error(Err::kCsrEntryOrder, row_id, row[p - 1], row[p], begin + p);
}

// Span, then (when `entries`) the entries of row `row_id` = indices[indptr_row[0], [1]).
AS_HD ValueError check_csr_row(const int64_t* indptr_row, const int64_t* indices, int64_t nnz,
                               int64_t n, int64_t row_id, bool entries) {
  const int64_t begin = indptr_row[0], end = indptr_row[1];
  if (!csr_span_ok(begin, end, nnz)) return value_error(Err::kCsrRowSpan, row_id, begin, end, nnz);
  if (entries && !csr_row_ok(indices + begin, end - begin, n))
    return csr_entry_value_error(indices, begin, csr_first_bad(indices + begin, end - begin, n), n,
                                 row_id);
  return ValueError{};
}

// sample_negatives, batch row b with user u = users[b], in this order: u in [0, num_users), the
// span of u's row, [its entries (csr_row_ok), opt-out], at least one non-positive item.
// head: the O(1) checks before the entries; tail: the one after.
AS_HD ValueError sample_row_head(const int64_t* indptr, int64_t num_users, int64_t nnz,
                                 int64_t u, int64_t b) {
  if (u < 0 || u >= num_users) return value_error(Err::kUserOutOfRange, u, b, num_users);
  const int64_t begin = indptr[u], end = indptr[u + 1];
  if (!csr_span_ok(begin, end, nnz)) return value_error(Err::kCsrRowSpan, u, begin, end, nnz);
  return ValueError{};
}

AS_HD ValueError sample_row_tail(int64_t deg, int64_t u, int64_t b, int64_t n) {
  if (deg >= n) return value_error(Err::kNoNegative, u, b, deg, n);
  return ValueError{};
}

// Alias table entry j (sample_negatives): prob in [0, 1] (NaN fails), then alias id in [0, n).
AS_HD bool alias_entry_ok(float p, int64_t a, int64_t n) {
  return p >= 0.0f && p <= 1.0f && a >= 0 && a < n;
}

AS_HD ValueError alias_entry_error(float p, int64_t a, int64_t j, int64_t n) {
  if (!(p >= 0.0f && p <= 1.0f)) {
#if defined(__CUDA_ARCH__)
    return value_error(Err::kAliasProb, static_cast<int64_t>(__float_as_uint(p)), j);
#else
    return value_error(Err::kAliasProb, float_bits(p), j);
#endif
  }
  if (a < 0 || a >= n) return value_error(Err::kAliasIdx, a, j, n);
  return ValueError{};
}

}  // namespace autosample
