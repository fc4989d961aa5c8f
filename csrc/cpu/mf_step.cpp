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
at::Tensor mf_bpr_train_avx2(const MfCall& call);
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

// The baseline or the AVX2 build of the kernel.
at::Tensor mf_bpr_train_cpu(const MfCall& call) {
  return use_avx2() ? cpu::mf_bpr_train_avx2(call) : mf_bpr_train_impl(call);
}

}  // namespace
}  // namespace autosample

TORCH_LIBRARY_IMPL(autosample, CPU, m) {
  m.impl("mf_bpr_train", &autosample::mf_bpr_train_entry<&autosample::mf_bpr_train_cpu>);
}
