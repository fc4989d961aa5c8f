// CSR sparse x dense products, shared by the CPU and CUDA kernels of spmm and graph_propagate.
//
// Matrix contract: A is R x C in CSR form, indptr [R+1] int64 with indptr[0] = 0, non-decreasing,
// indptr[R] = nnz; indices [nnz] int64 column ids in [0, C), any order within a row (duplicates
// add); values [nnz] of x's dtype. x is [C, d] row-major.
//
// Summation order (both devices, so CPU and CUDA give the same bits): for every column c,
//   out[r, c] = (...((0 + v_0 * x[j_0, c]) + v_1 * x[j_1, c]) + ...) + v_{n-1} * x[j_{n-1}, c]
// over the entries of row r in storage order, the product rounded before the sum (csr_axpy).
// graph_propagate's mean of layers X_0 = x, X_k = A X_{k-1}:
//   out = (((X_0 + X_1) + X_2) + ... + X_K) / (K + 1), added left to right, one division
// (layer_mean_step).
//
// Value errors (messages: errors.h), the same on both devices: the smallest row with an error;
// within it, its extent first (csr_extent_error: indptr[0] = 0, indptr[R] = nnz, then
// 0 <= indptr[r] <= indptr[r+1] <= nnz), then its first column id outside [0, C) in storage
// order (Err::kCsrColumn: id, row, position, C).
#pragma once
#include "autosample/common.h"
#include "autosample/errors.h"

namespace autosample {

// The error of row r's extent in a CSR matrix with R rows and nnz entries, or Err::kNone; v
// receives the values its message quotes.
AS_HD Err csr_extent_error(const int64_t* indptr, int64_t r, int64_t R, int64_t nnz, int64_t* v) {
  const int64_t lo = indptr[r], hi = indptr[r + 1];
  if (r == 0 && lo != 0) {
    v[0] = lo;
    return Err::kCsrStart;
  }
  if (r == R - 1 && hi != nnz) {
    v[0] = R;
    v[1] = nnz;
    v[2] = hi;
    return Err::kCsrEnd;
  }
  if (lo < 0 || lo > hi || hi > nnz) {
    v[0] = r;
    v[1] = lo;
    v[2] = hi;
    v[3] = nnz;
    return Err::kCsrRowSpan;
  }
  return Err::kNone;
}

// True when row r's extent is valid (csr_extent_error finds nothing).
AS_HD bool csr_row_valid(const int64_t* indptr, int64_t r, int64_t R, int64_t nnz) {
  const int64_t lo = indptr[r], hi = indptr[r + 1];
  return lo >= 0 && lo <= hi && hi <= nnz && (r != 0 || lo == 0) && (r != R - 1 || hi == nnz);
}

// acc + v * x with the product rounded before the sum, on both devices (nvcc would otherwise
// contract it into an FMA; the host build has no FMA contraction).
AS_HD float csr_axpy(float acc, float v, float x) {
#ifdef __CUDA_ARCH__
  return __fadd_rn(acc, __fmul_rn(v, x));
#else
  return acc + v * x;
#endif
}
AS_HD double csr_axpy(double acc, double v, double x) {
#ifdef __CUDA_ARCH__
  return __dadd_rn(acc, __dmul_rn(v, x));
#else
  return acc + v * x;
#endif
}

// graph_propagate's running sum after layer k: sum + layer, divided by count = K + 1 when k = K.
AS_HD float layer_mean_step(float sum, float layer, bool last, float count) {
#ifdef __CUDA_ARCH__
  const float s = __fadd_rn(sum, layer);
  return last ? __fdiv_rn(s, count) : s;
#else
  const float s = sum + layer;
  return last ? s / count : s;
#endif
}
AS_HD double layer_mean_step(double sum, double layer, bool last, double count) {
#ifdef __CUDA_ARCH__
  const double s = __dadd_rn(sum, layer);
  return last ? __ddiv_rn(s, count) : s;
#else
  const double s = sum + layer;
  return last ? s / count : s;
#endif
}

// True when a column id lies in [0, C).
template <typename I>
AS_HD bool csr_column_valid(I col, int64_t C) {
  return static_cast<uint64_t>(col) < static_cast<uint64_t>(C);
}

}  // namespace autosample
