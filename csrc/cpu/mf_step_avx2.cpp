// mf_step_impl.h compiled for AVX2 (x86-64, GCC / Clang), in its own namespace so that none of
// its functions (nor the inline functions of the shared headers it instantiates) is mistaken for
// the baseline build's. Every header it includes that is not this project's, and the argument
// types and checks (mf_checks.h: host code, shared with the baseline build), are included first
// at global scope; the includes inside the namespace then bring only the kernel's own code.
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

#include "autosample/mf_checks.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define AUTOSAMPLE_AVX2_KERNEL 1
namespace autosample_avx2 {
namespace autosample {
using namespace ::autosample;  // MfCall, MfDraw, the checks and the error catalogue
}  // namespace autosample
}  // namespace autosample_avx2
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

at::Tensor mf_bpr_train_avx2(const MfCall& call) {
#ifdef AUTOSAMPLE_AVX2_KERNEL
  return autosample_avx2::autosample::mf_bpr_train_impl(call);
#else
  (void)call;
  TORCH_CHECK(false, "autosample::mf_bpr_train: this build has no AVX2 kernel");
#endif
}

}  // namespace cpu
}  // namespace autosample
