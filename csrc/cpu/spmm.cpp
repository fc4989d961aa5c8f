// spmm (CPU): out [R, d] = A x for the CSR matrix A [R, C] and dense x [C, d] (spmm.h: contract,
// summation order). Rows in parallel; value errors (row extents, column ids) raised after the loop.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "autosample/spmm_checks.h"
#include "csr_product.h"

namespace autosample {
namespace {

at::Tensor spmm_cpu(const at::Tensor& indptr_in, const at::Tensor& indices_in,
                    const at::Tensor& values_in, const at::Tensor& x_in, bool symmetric) {
  const char* op = "spmm";
  check_csr_product_args(op, indptr_in, indices_in, values_in, x_in, symmetric);
  const at::Tensor indptr = indptr_in.contiguous();
  const at::Tensor indices = indices_in.contiguous();
  const at::Tensor values = values_in.contiguous();
  const at::Tensor x = x_in.contiguous();
  const int64_t R = indptr.size(0) - 1, C = x.size(0), d = x.size(1), nnz = indices.size(0);
  at::Tensor out = at::empty({R, d}, x.options());
  if (R == 0) return out;
  int64_t bad = -1;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "spmm_cpu", [&] {
    const int64_t* ip = indptr.data_ptr<int64_t>();
    const int64_t* ix = indices.data_ptr<int64_t>();
    const scalar_t* v = values.data_ptr<scalar_t>();
    const scalar_t* xp = x.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    const auto row_product = cpu::csr_row_product_for<scalar_t>(d);
    bad = cpu::for_each_csr_row(ip, R, nnz, d, [&](int64_t r, int64_t lo, int64_t hi) {
      return row_product(ix, v, lo, hi, xp, C, d, o + r * d);
    });
  });
  if (bad >= 0) {
    cpu::raise_csr_row_error(Op::kSpmm, indptr.data_ptr<int64_t>(), indices.data_ptr<int64_t>(),
                             bad, R, nnz, C);
  }
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(autosample, CPU, m) { m.impl("spmm", &spmm_cpu); }

}  // namespace autosample
