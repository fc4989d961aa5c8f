// mf_bpr_train (CPU): registration and the choice of the kernel's instruction set. The kernel
// is mf_step_impl.h; mf_step_avx2.cpp compiles it for AVX2, used when the CPU has AVX2 (same
// results: see mf_step_impl.h). AUTOSAMPLE_CPU_ISA=baseline forces the baseline build.
#include <torch/library.h>

#include <cstdlib>
#include <cstring>

#include "mf_step_impl.h"

namespace autosample {
namespace cpu {
// mf_step_avx2.cpp; false when the build has no AVX2 kernel (not x86-64 / not GCC or Clang).
bool mf_bpr_train_has_avx2();
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
                            int64_t opt_step, bool validate);
}  // namespace cpu

namespace {

bool use_avx2() {
  static const bool yes = [] {
    const char* isa = std::getenv("AUTOSAMPLE_CPU_ISA");
    if (isa != nullptr && std::strcmp(isa, "baseline") == 0) return false;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    return cpu::mf_bpr_train_has_avx2() && __builtin_cpu_supports("avx2");
#else
    return false;
#endif
  }();
  return yes;
}

at::Tensor mf_bpr_train_cpu(const at::Tensor& user_emb, const at::Tensor& item_emb,
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
  if (use_avx2()) return cpu::mf_bpr_train_avx2(user_emb, item_emb, weight, state, indptr_in, indices_in, users_in, pos_in, negatives, batch_size, num_negatives, sampler, num_candidates, top_k, alias_prob, alias_idx, cdf, uniforms, seed, offset, offset_stride, lr, l2, optimizer, beta1, beta2, eps, opt_step, validate);
  return mf_bpr_train_impl(user_emb, item_emb, weight, state, indptr_in, indices_in, users_in, pos_in, negatives, batch_size, num_negatives, sampler, num_candidates, top_k, alias_prob, alias_idx, cdf, uniforms, seed, offset, offset_stride, lr, l2, optimizer, beta1, beta2, eps, opt_step, validate);
}

}  // namespace
}  // namespace autosample

TORCH_LIBRARY_IMPL(autosample, CPU, m) {
  m.impl("mf_bpr_train", &autosample::mf_bpr_train_cpu);
}
