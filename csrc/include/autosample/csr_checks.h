// Host-side checks of the CSR products (spmm, graph_propagate), shared by the CPU and CUDA
// implementations.
//
// check_csr_product_args: shapes, dtypes and devices only (no data reads).
// Values (row extents, column ids) are checked by the kernels themselves, row by row, with
// spmm.h's csr_row_valid / csr_column_valid; a kernel records the smallest offending row and
// raise_csr_row_error turns it into the message (op, argument, position, value). This is the one
// place those messages are written.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include "autosample/checks.h"
#include "autosample/spmm.h"

namespace autosample {

// indptr [R+1] int64, indices [nnz] int64, values [nnz] of x's dtype, x [C, d] float32/float64,
// all on one device. square: A must be C x C (graph_propagate, and spmm flagged symmetric).
inline void check_csr_product_args(const char* op, const at::Tensor& indptr,
                                   const at::Tensor& indices, const at::Tensor& values,
                                   const at::Tensor& x, bool square) {
  check_index(op, "indptr", indptr, 1);
  check_index(op, "indices", indices, 1);
  check_float(op, "x", x, 2);
  check_dim(op, "values", values, 1);
  check_same_dtype(op, x, "values", values);
  check_same_device(op, x, "indptr", indptr);
  check_same_device(op, x, "indices", indices);
  check_same_device(op, x, "values", values);
  TORCH_CHECK(indptr.size(0) >= 1, "autosample::", op, ": argument 'indptr' must have at least "
              "one element (rows + 1), got shape ", indptr.sizes());
  check_size(op, "values", values, 0, indices.size(0), "nnz, the length of 'indices'");
  TORCH_CHECK(indptr.size(0) > 1 || indices.size(0) == 0, "autosample::", op, ": a matrix with "
              "no rows ('indptr' of length 1) cannot hold entries, got ", indices.size(0),
              " in 'indices'");
  if (square) {
    TORCH_CHECK(indptr.size(0) - 1 == x.size(0), "autosample::", op, ": the matrix must be "
                "square with as many rows as 'x' (", x.size(0), "), got ", indptr.size(0) - 1,
                " rows ('indptr' of length ", indptr.size(0), ")");
  }
}

inline void check_num_layers(const char* op, int64_t num_layers) {
  TORCH_CHECK(num_layers >= 0, "autosample::", op, ": argument 'num_layers' must be >= 0, got ",
              num_layers);
}

// Raises the error of row r, which a kernel flagged: copies the row's extent and column ids to
// the host (one small copy per call, only on this error path) and names the first bad value.
// num_cols: C, the rows of x.
inline void raise_csr_row_error(const char* op, const at::Tensor& indptr,
                               const at::Tensor& indices, int64_t r,
                               int64_t num_cols) {
  const int64_t R = indptr.size(0) - 1, nnz = indices.size(0);
  const at::Tensor ext = indptr.narrow(0, r, 2).to(at::kCPU);
  const int64_t* p = ext.data_ptr<int64_t>();
  const int64_t lo = p[0], hi = p[1];
  TORCH_CHECK(r != 0 || lo == 0, "autosample::", op, ": argument 'indptr' must start at 0, got "
              "indptr[0] = ", lo);
  TORCH_CHECK(r != R - 1 || hi == nnz, "autosample::", op, ": argument 'indptr' must end at nnz "
              "= ", nnz, " (the length of 'indices'), got indptr[", R, "] = ", hi);
  TORCH_CHECK(lo >= 0 && lo <= hi && hi <= nnz, "autosample::", op, ": argument 'indptr' must "
              "be non-decreasing within [0, nnz = ", nnz, "], got indptr[", r, "] = ", lo,
              ", indptr[", r + 1, "] = ", hi);
  const at::Tensor cols = indices.narrow(0, lo, hi - lo).to(at::kCPU);
  const int64_t* c = cols.data_ptr<int64_t>();
  for (int64_t e = 0; e < hi - lo; ++e) {
    TORCH_CHECK(csr_column_valid(c[e], num_cols), "autosample::", op, ": argument 'indices' "
                "must hold column ids in [0, C) with C = ", num_cols, " (the rows of 'x'), got "
                "indices[", lo + e, "] = ", c[e], " (row ", r, ")");
  }
  TORCH_CHECK(false, "autosample::", op, ": internal error: row ", r, " was flagged but is valid");
}

}  // namespace autosample
