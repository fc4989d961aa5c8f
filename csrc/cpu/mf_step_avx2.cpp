// mf_step_impl.h compiled for AVX2 (x86-64, GCC / Clang), in its own namespace so that none of
// its functions (nor the inline functions of the shared headers it instantiates) is mistaken for
// the baseline build's: every header it includes that is not this project's is included first,
// at global scope, so that the includes inside the namespace only bring this project's code.
#include <ATen/core/Tensor.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define AUTOSAMPLE_AVX2_KERNEL 1
#pragma GCC push_options
#pragma GCC target("avx2")
namespace autosample_avx2 {
#include "mf_step_impl.h"
}  // namespace autosample_avx2
#pragma GCC pop_options
#endif

namespace autosample {
namespace cpu {

bool mf_bpr_train_has_avx2() {
#ifdef AUTOSAMPLE_AVX2_KERNEL
  return true;
#else
  return false;
#endif
}

at::Tensor mf_bpr_train_avx2(const at::Tensor& user_emb, const at::Tensor& item_emb,
                            const std::optional<at::Tensor>& weight, at::TensorList state,
                            const at::Tensor& indptr_in, const at::Tensor& indices_in,
                            const at::Tensor& users_in, const at::Tensor& pos_in,
                            const std::optional<at::Tensor>& negatives, int64_t batch_size,
                            int64_t num_negatives, c10::string_view sampler,
                            int64_t num_candidates, int64_t top_k,
                            const std::optional<at::Tensor>& alias_prob,
                            const std::optional<at::Tensor>& alias_idx,
                            const std::optional<at::Tensor>& cdf,
                            const std::optional<at::Tensor>& uniforms, int64_t seed,
                            int64_t offset, int64_t offset_stride, double lr, double l2,
                            c10::string_view optimizer, double beta1, double beta2, double eps,
                            int64_t opt_step, bool validate) {
#ifdef AUTOSAMPLE_AVX2_KERNEL
  return autosample_avx2::autosample::mf_bpr_train_impl(user_emb, item_emb, weight, state, indptr_in, indices_in, users_in, pos_in, negatives, batch_size, num_negatives, sampler, num_candidates, top_k, alias_prob, alias_idx, cdf, uniforms, seed, offset, offset_stride, lr, l2, optimizer, beta1, beta2, eps, opt_step, validate);
#else
  TORCH_CHECK(false, "autosample::mf_bpr_train: this build has no AVX2 kernel");
#endif
}

}  // namespace cpu
}  // namespace autosample
