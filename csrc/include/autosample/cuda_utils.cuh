// Device-only helpers shared by the CUDA kernels (csrc/cuda/*.cu).
//
// Value errors: a kernel that finds a bad value (id out of range, ...) records the smallest
// offending flat index in a one-element device slot with atomicMin; the host reads the slot once
// after the launch (one device-to-host copy, i.e. one synchronisation) and, when set, rebuilds
// the message from the inputs (op, argument, value) with TORCH_CHECK. Kernels never trap.
#pragma once
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include <cstdint>
#include <limits>

#include "autosample/common.h"

namespace autosample {
namespace cuda {

constexpr int kWarp = 32;
constexpr unsigned kFullMask = 0xffffffffu;
constexpr int64_t kNoError = std::numeric_limits<int64_t>::max();

// One-element int64 device slot holding the smallest offending index (kNoError when clean).
struct ErrorSlot {
  at::Tensor slot;
  explicit ErrorSlot(const at::Tensor& like)
      : slot(at::full({1}, kNoError, like.options().dtype(at::kLong))) {}
  unsigned long long* ptr() { return reinterpret_cast<unsigned long long*>(slot.data_ptr<int64_t>()); }
  // Reads the slot back (synchronises the current stream). -1 when no error was recorded.
  int64_t read() const {
    const int64_t v = slot.item<int64_t>();
    return v == kNoError ? -1 : v;
  }
};

__device__ __forceinline__ void report_error(unsigned long long* slot, int64_t index) {
  atomicMin(slot, static_cast<unsigned long long>(index));
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Blocks for a 1-D launch of n threads; grid-stride loops cover any excess.
inline unsigned grid_for(int64_t n, int threads) {
  const int64_t blocks = ceil_div(n, threads);
  return static_cast<unsigned>(blocks < 65535 * 32 ? (blocks < 1 ? 1 : blocks) : 65535 * 32);
}

// Host value of t[i] (one small device-to-host copy; only used to build error messages).
inline int64_t item_at(const at::Tensor& t, int64_t i) {
  return t.reshape(-1)[i].item<int64_t>();
}

// 16-byte vector of T for gathers: float4 or double2.
template <typename T> struct Vec16;
template <> struct Vec16<float> {
  using type = float4;
  static constexpr int width = 4;
  __device__ __forceinline__ static float dot(const float4& a, const float4& b) {
    return a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w;
  }
};
template <> struct Vec16<double> {
  using type = double2;
  static constexpr int width = 2;
  __device__ __forceinline__ static double dot(const double2& a, const double2& b) {
    return a.x * b.x + a.y * b.y;
  }
};

// True when rows of d elements of T starting at p can be read as 16-byte vectors.
template <typename T>
inline bool can_vectorise(const void* p, int64_t d) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0 && d % Vec16<T>::width == 0;
}

}  // namespace cuda
}  // namespace autosample
