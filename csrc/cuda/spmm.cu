// spmm on CUDA: out [R, d] = A x for the CSR matrix A [R, C] (spmm.h: contract and order;
// spmm.cuh: lanes per row, asynchronous value errors). Bit-identical to the CPU kernel.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "autosample/spmm_checks.h"
#include "autosample/spmm.cuh"

namespace autosample {
namespace cuda {
namespace {

at::Tensor spmm_cuda(const at::Tensor& indptr_in, const at::Tensor& indices_in,
                     const at::Tensor& values_in, const at::Tensor& x_in, bool symmetric) {
  const char* op = "spmm";
  check_csr_product_args(op, indptr_in, indices_in, values_in, x_in, symmetric);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const auto indptr = indptr_in.contiguous();
  const auto indices = indices_in.contiguous();
  const auto values = values_in.contiguous();
  const auto x = x_in.contiguous();
  const int64_t R = indptr.size(0) - 1, C = x.size(0), d = x.size(1), nnz = indices.size(0);
  auto out = at::empty({R, d}, x.options());
  if (R == 0 || d == 0) return out;
  const ErrorSink err = begin_call(Op::kSpmm, x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "spmm_cuda", [&] {
    const bool vec = can_vectorise<scalar_t>(x.data_ptr(), d) &&
                     can_vectorise<scalar_t>(out.data_ptr(), d);
    launch_csr_rows<scalar_t, false>(indptr.data_ptr<int64_t>(), indices.data_ptr<int64_t>(),
                                     values.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(), R, C,
                                     nnz, d, vec, out.data_ptr<scalar_t>(),
                                     LayerMean<scalar_t>{}, err);
  });
  end_call(err);
  return out;
}

}  // namespace
}  // namespace cuda
}  // namespace autosample

TORCH_LIBRARY_IMPL(autosample, CUDA, m) { m.impl("spmm", &autosample::cuda::spmm_cuda); }
