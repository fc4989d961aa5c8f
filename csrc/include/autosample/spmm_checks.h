// Host-side checks of the CSR products (spmm, graph_propagate), shared by the CPU and CUDA
// implementations.
//
// check_csr_product_args: shapes, dtypes and devices only (no data reads). Values (row extents,
// column ids) are checked by the kernels themselves, row by row, with spmm.h's rules and
// errors.h's messages (the CPU kernels raise after their loop, the CUDA kernels report
// asynchronously through cuda_utils.cuh's ErrorSink).
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include "autosample/checks.h"

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

}  // namespace autosample
