// select_topk (CPU): per row of keys [B, M] (any strides), the k best (value, position) pairs
// in the canonical order of topk.h (ties to the smaller position, NaN first).
#include <ATen/core/Tensor.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <numeric>
#include <tuple>
#include <vector>

#include "autosample/checks.h"
#include "stream_topk.h"

namespace autosample {
namespace {

std::tuple<at::Tensor, at::Tensor> select_topk_cpu(const at::Tensor& keys, int64_t k) {
  check_select_topk_args(keys, k);
  const int64_t B = keys.size(0), M = keys.size(1);
  const int64_t s0 = keys.stride(0), s1 = keys.stride(1);
  at::Tensor values = at::empty({B, k}, keys.options());
  at::Tensor positions = at::empty({B, k}, keys.options().dtype(at::kLong));
  if (B == 0 || k == 0) return {values, positions};
  int64_t* op = positions.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(keys.scalar_type(), "select_topk_cpu", [&] {
    const scalar_t* kp = keys.const_data_ptr<scalar_t>();
    scalar_t* ov = values.data_ptr<scalar_t>();
    const int64_t grain = std::max<int64_t>(1, 16384 / M);
    at::parallel_for(0, B, grain, [&](int64_t lo, int64_t hi) {
      std::vector<int64_t> order;
      for (int64_t b = lo; b < hi; ++b) {
        const scalar_t* row = kp + b * s0;
        if (k > cpu::StreamTopK<scalar_t>::kLinearMax) {  // large k: selection + sort, O(M + k log k)
          order.resize(M);
          std::iota(order.begin(), order.end(), int64_t{0});
          const auto before = [&](int64_t x, int64_t y) {
            return ranks_before(row[x * s1], x, row[y * s1], y);
          };
          if (k < M) std::nth_element(order.begin(), order.begin() + k, order.end(), before);
          std::sort(order.begin(), order.begin() + k, before);
          for (int64_t j = 0; j < k; ++j) {
            ov[b * k + j] = row[order[j] * s1];
            op[b * k + j] = order[j];
          }
          continue;
        }
        cpu::StreamTopK<scalar_t> top(ov + b * k, op + b * k, k);
        if (s1 == 1) {
          top.offer_span(row, 0, M);
        } else {
          for (int64_t m = 0; m < M; ++m) top.offer(row[m * s1], m);
        }
        top.finish();
      }
    });
  });
  return {values, positions};
}

}  // namespace

TORCH_LIBRARY_IMPL(autosample, CPU, m) { m.impl("select_topk", &select_topk_cpu); }

}  // namespace autosample
