// graph_propagate (CPU): out = mean(X_0, ..., X_K), X_0 = x, X_k = A X_{k-1}, for a square CSR
// matrix A [N, N] and x [N, d] (spmm.h: contract, summation order). One parallel pass over the
// rows per layer, each adding its layer into the running sum (the last one also divides), so
// the layers are never stacked: memory is out plus at most two [N, d] layer buffers.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <vector>

#include "autosample/spmm_checks.h"
#include "csr_product.h"

namespace autosample {
namespace {

at::Tensor graph_propagate_cpu(const at::Tensor& indptr_in, const at::Tensor& indices_in,
                               const at::Tensor& values_in, const at::Tensor& x_in,
                               int64_t num_layers, bool symmetric) {
  (void)symmetric;  // the forward product does not depend on it (the backward does)
  const char* op = "graph_propagate";
  check_csr_product_args(op, indptr_in, indices_in, values_in, x_in, /*square=*/true);
  check_num_layers(op, num_layers);
  const at::Tensor indptr = indptr_in.contiguous();
  const at::Tensor indices = indices_in.contiguous();
  const at::Tensor values = values_in.contiguous();
  const at::Tensor x = x_in.contiguous();
  const int64_t N = x.size(0), d = x.size(1), nnz = indices.size(0), K = num_layers;
  at::Tensor out = at::empty({N, d}, x.options());
  if (N == 0) return out;
  // Layer k (1 <= k < K) goes to buffers[(k - 1) % 2]; the last layer is only added.
  std::vector<at::Tensor> buffers;
  for (int64_t b = 0; b < std::min<int64_t>(K - 1, 2); ++b) buffers.push_back(at::empty({N, d}, x.options()));
  int64_t bad = -1;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "graph_propagate_cpu", [&] {
    const int64_t* ip = indptr.data_ptr<int64_t>();
    const int64_t* ix = indices.data_ptr<int64_t>();
    const scalar_t* v = values.data_ptr<scalar_t>();
    const scalar_t* xp = x.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    if (K == 0) {
      for (int64_t i = 0; i < N * d; ++i) o[i] = xp[i];
      return;
    }
    const scalar_t count = static_cast<scalar_t>(K + 1);
    const auto row_product = cpu::csr_row_product_for<scalar_t>(d);
    const scalar_t* prev = xp;
    for (int64_t k = 1; k <= K && bad < 0; ++k) {
      const bool last = k == K;
      scalar_t* layer = last ? nullptr : buffers[(k - 1) % 2].data_ptr<scalar_t>();
      const scalar_t* acc_in = k == 1 ? xp : o;  // running sum X_0 + ... + X_{k-1}
      bad = cpu::for_each_csr_row(ip, N, nnz, d, [&](int64_t r, int64_t lo, int64_t hi) {
        // The last layer has no buffer: its rows go to a per-thread scratch row.
        thread_local std::vector<scalar_t> scratch;
        scalar_t* s = layer != nullptr ? layer + r * d : nullptr;
        if (s == nullptr) {
          if (static_cast<int64_t>(scratch.size()) < d) scratch.resize(d);
          s = scratch.data();
        }
        if (!row_product(ix, v, lo, hi, prev, N, d, s)) return false;
        const scalar_t* a = acc_in + r * d;
        scalar_t* out_r = o + r * d;
        for (int64_t c = 0; c < d; ++c) out_r[c] = layer_mean_step(a[c], s[c], last, count);
        return true;
      });
      prev = layer;
    }
  });
  if (bad >= 0) {
    cpu::raise_csr_row_error(Op::kGraphPropagate, indptr.data_ptr<int64_t>(), indices.data_ptr<int64_t>(),
                             bad, N, nnz, N);
  }
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(autosample, CPU, m) { m.impl("graph_propagate", &graph_propagate_cpu); }

}  // namespace autosample
