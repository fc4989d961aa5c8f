// select_topk on CUDA: canonical top-k of each row of keys [B, M] (any strides; rows are made
// contiguous along M first when they are not).
// k <= 128: one warp per row with WarpTopK (warp_topk.cuh); larger k: stable device sort.
#include <ATen/ops/empty.h>
#include <ATen/ops/sort.h>
#include <torch/library.h>

#include "autosample/checks.h"
#include "autosample/cuda_utils.cuh"
#include "autosample/warp_topk.cuh"

namespace autosample {
namespace cuda {
namespace {

std::tuple<at::Tensor, at::Tensor> select_topk_cuda(const at::Tensor& keys, int64_t k) {
  check_select_topk_args(keys, k);
  const c10::cuda::CUDAGuard guard(keys.device());
  const int64_t B = keys.size(0), M = keys.size(1);
  if (k > kMaxWarpK) return sort_topk(keys.detach(), k);
  auto values = at::empty({B, k}, keys.options());
  auto positions = at::empty({B, k}, keys.options().dtype(at::kLong));
  if (B == 0 || k == 0) return {values, positions};
  const ErrorSink err = begin_call(Op::kSelectTopk, keys);  // no value errors; raises earlier ones
  // Rows with unit stride (one copy when not: cheaper than strided, uncoalesced warp loads).
  const auto rows = keys.stride(1) == 1 ? keys : keys.contiguous();
  AT_DISPATCH_FLOATING_TYPES(keys.scalar_type(), "select_topk_cuda", [&] {
    launch_select_topk<scalar_t>(rows.data_ptr<scalar_t>(), B, M, rows.stride(0), k,
                                 values.data_ptr<scalar_t>(), positions.data_ptr<int64_t>());
  });
  end_call(err);
  return {values, positions};
}

}  // namespace
}  // namespace cuda
}  // namespace autosample

TORCH_LIBRARY_IMPL(autosample, CUDA, m) {
  m.impl("select_topk", &autosample::cuda::select_topk_cuda);
}
