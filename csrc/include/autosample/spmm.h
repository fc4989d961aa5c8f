// CSR sparse x dense products, shared by the CPU and CUDA kernels of spmm and graph_propagate.
//
// Matrix contract: A is R x C in CSR form, indptr [R+1] int64 with indptr[0] = 0, non-decreasing,
// indptr[R] = nnz; indices [nnz] int64 column ids in [0, C), any order within a row (duplicates
// add); values [nnz] of x's dtype. x is [C, d] row-major.
//
// Summation order (both devices, so CPU and CUDA give the same bits): for every column c,
//   out[r, c] = (...((0 + v_0 * x[j_0, c]) + v_1 * x[j_1, c]) + ...) + v_{n-1} * x[j_{n-1}, c]
// over the entries of row r in storage order, with a separate multiply and add (no FMA
// contraction: -ffp-contract=off on the host, __fmul_rn / __fadd_rn on the device).
// graph_propagate's mean of layers X_0 = x, X_k = A X_{k-1}:
//   out = (((X_0 + X_1) + X_2) + ... + X_K) / (K + 1), added left to right, one division.
#pragma once
#include "autosample/common.h"

namespace autosample {

// True when row r of a CSR matrix with R rows and nnz entries has a valid extent:
// 0 <= indptr[r] <= indptr[r+1] <= nnz, indptr[0] = 0 and indptr[R] = nnz.
template <typename I>
AS_HD bool csr_row_valid(const I* indptr, int64_t r, int64_t R, int64_t nnz) {
  const I lo = indptr[r], hi = indptr[r + 1];
  if (lo < 0 || lo > hi || hi > nnz) return false;
  if (r == 0 && lo != 0) return false;
  if (r == R - 1 && hi != nnz) return false;
  return true;
}

// True when a column id lies in [0, C).
template <typename I>
AS_HD bool csr_column_valid(I col, int64_t C) {
  return static_cast<uint64_t>(col) < static_cast<uint64_t>(C);
}

}  // namespace autosample
