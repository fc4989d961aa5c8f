// graph_propagate on CUDA: out = mean(X_0, ..., X_K), X_0 = x, X_k = A X_{k-1} (spmm.h: contract
// and order). One launch per layer; each adds its layer into the running sum in out (the last
// also divides by K + 1), so memory is out plus at most two [N, d] layer buffers. Bit-identical
// to the CPU kernel. Value errors of all launches go to the call's one ErrorSink (spmm.cuh).
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <vector>

#include "autosample/spmm_checks.h"
#include "autosample/spmm.cuh"

namespace autosample {
namespace cuda {
namespace {

at::Tensor graph_propagate_cuda(const at::Tensor& indptr_in, const at::Tensor& indices_in,
                                const at::Tensor& values_in, const at::Tensor& x_in,
                                int64_t num_layers, bool symmetric) {
  (void)symmetric;  // the forward product does not depend on it (the backward does)
  const char* op = "graph_propagate";
  check_csr_product_args(op, indptr_in, indices_in, values_in, x_in, /*square=*/true);
  check_num_layers(op, num_layers);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const auto indptr = indptr_in.contiguous();
  const auto indices = indices_in.contiguous();
  const auto values = values_in.contiguous();
  const auto x = x_in.contiguous();
  const int64_t N = x.size(0), d = x.size(1), nnz = indices.size(0), K = num_layers;
  if (K == 0 || N == 0 || d == 0) return x.clone();
  auto out = at::empty({N, d}, x.options());
  std::vector<at::Tensor> buffers;  // layer k (1 <= k < K) goes to buffers[(k - 1) % 2]
  for (int64_t b = 0; b < std::min<int64_t>(K - 1, 2); ++b) buffers.push_back(at::empty({N, d}, x.options()));
  const ErrorSink err = begin_call(Op::kGraphPropagate, x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "graph_propagate_cuda", [&] {
    bool vec = can_vectorise<scalar_t>(x.data_ptr(), d) && can_vectorise<scalar_t>(out.data_ptr(), d);
    for (const auto& b : buffers) vec = vec && can_vectorise<scalar_t>(b.data_ptr(), d);
    const scalar_t* prev = x.data_ptr<scalar_t>();
    for (int64_t k = 1; k <= K; ++k) {
      LayerMean<scalar_t> mean;
      mean.last = k == K;
      mean.layer = mean.last ? nullptr : buffers[(k - 1) % 2].data_ptr<scalar_t>();
      mean.acc_in = k == 1 ? x.data_ptr<scalar_t>() : out.data_ptr<scalar_t>();
      mean.acc_out = out.data_ptr<scalar_t>();
      mean.count = static_cast<scalar_t>(K + 1);
      launch_csr_rows<scalar_t, true>(indptr.data_ptr<int64_t>(), indices.data_ptr<int64_t>(),
                                      values.data_ptr<scalar_t>(), prev, N, N, nnz, d, vec,
                                      nullptr, mean, err);
      prev = mean.layer;
    }
  });
  end_call(err);
  return out;
}

}  // namespace
}  // namespace cuda
}  // namespace autosample

TORCH_LIBRARY_IMPL(autosample, CUDA, m) {
  m.impl("graph_propagate", &autosample::cuda::graph_propagate_cuda);
}
