// Device-side helpers shared by the CUDA kernels (csrc/cuda/*.cu).
//
// Value errors without a host synchronisation (docs/design.md). Checks that need no device data
// (shapes, dtypes, devices, k) run on the host before any launch. A kernel that finds a bad value
// records it with ErrorSink::report (op, code and the values that errors.h's message quotes) in
// a per-device record, keeps going with a safe substitute (an in-range id, a neutral value: no
// out-of-bounds access, no output that would make a later kernel fault) and the call returns
// without waiting. The error is raised, with the CPU kernels' message, by
//   * the next autosample call on that device once the faulty kernel has finished: the kernel
//     also sets a flag in pinned host memory, which every call reads (a host load, no sync);
//   * autosample_ext.ops.check_errors() (a plain function of autosample_ext._C): synchronises the
//     devices and raises a pending error; call it where the program synchronises anyway
//     (end of an epoch, after evaluation);
//   * every call itself when sync mode is on (AUTOSAMPLE_SYNC_ERRORS=1 or
//     ops.set_sync_errors(True)): the call synchronises its stream and checks, as a debug switch.
// So every op is sync-free and can be captured in a CUDA graph.
//
// Use in an op:  ErrorSink err = begin_call(Op::kX, tensor);   // raises an earlier pending error
//                kernel<<<...>>>(..., err);  // device: err.report(Err::kY, index, v0, v1, v2, v3)
//                end_call(err);                                // sync mode only: sync + raise
// Among several reports the one of the earliest call wins, then the smallest index (the CPU
// kernels' row-major order), then the smallest code.
#pragma once
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include <cstdint>

#include "autosample/common.h"
#include "autosample/errors.h"

namespace autosample {
namespace cuda {

constexpr int kWarp = 32;
constexpr unsigned kFullMask = 0xffffffffu;

// The per-device record (device memory, zero when clean). Written under `lock`; `code` last.
struct DeviceErrorState {
  unsigned int lock;
  int32_t op;
  int32_t code;
  int32_t pad;
  int64_t seq;
  int64_t index;
  int64_t v[4];
};

// What a kernel needs to report; passed by value as a kernel argument.
struct ErrorSink {
  DeviceErrorState* state;
  int* host_flag;  // pinned, mapped host memory; set to 1 by any report (nullptr: unavailable)
  int64_t seq;     // number of the call (earlier calls win)
  Op op;

#ifdef __CUDACC__
  __device__ __forceinline__ void report(Err code, int64_t index, int64_t v0 = 0, int64_t v1 = 0,
                                         int64_t v2 = 0, int64_t v3 = 0) const;
#endif
};

#ifdef __CUDACC__
// The error path, out of line (keeps it out of the kernels' registers); arguments by value.
static __device__ __noinline__ void record_error(DeviceErrorState* state, int* host_flag,
                                                 int64_t seq, int32_t op, int32_t code,
                                                 int64_t index, int64_t v0, int64_t v1,
                                                 int64_t v2, int64_t v3) {
  volatile DeviceErrorState* s = state;
  auto earlier = [&](int64_t sq, int64_t ix, int cd) {  // is the recorded error before ours?
    return sq < seq || (sq == seq && (ix < index || (ix == index && cd <= code)));
  };
  if (s->code != 0 && earlier(s->seq, s->index, s->code)) return;  // cheap filter
  while (atomicCAS(&state->lock, 0u, 1u) != 0u) {
#if __CUDA_ARCH__ >= 700
    __nanosleep(64);
#endif
  }
  __threadfence();
  if (s->code == 0 || !earlier(s->seq, s->index, s->code)) {
    s->op = op;
    s->seq = seq;
    s->index = index;
    s->v[0] = v0;
    s->v[1] = v1;
    s->v[2] = v2;
    s->v[3] = v3;
    __threadfence();
    s->code = code;
  }
  __threadfence_system();
  if (host_flag != nullptr) *reinterpret_cast<volatile int*>(host_flag) = 1;
  __threadfence_system();
  atomicExch(&state->lock, 0u);
}

__device__ __forceinline__ void ErrorSink::report(Err code, int64_t index, int64_t v0,
                                                  int64_t v1, int64_t v2, int64_t v3) const {
  record_error(state, host_flag, seq, static_cast<int32_t>(op), static_cast<int32_t>(code), index,
               v0, v1, v2, v3);
}
#endif

// Host side (csrc/cuda/errors.cu).
// Raises an error an earlier call left on `device` if its flag is already set (no sync), then
// returns the sink for this call.
ErrorSink begin_call(Op op, const at::Device& device);
inline ErrorSink begin_call(Op op, const at::Tensor& on) { return begin_call(op, on.device()); }
// Sync mode only: synchronises the current stream and raises what the call reported.
void end_call(const ErrorSink& sink);
// Synchronises every device that has a record and raises the earliest pending error.
void check_errors();
// Sync mode switch; returns the previous setting. Default: AUTOSAMPLE_SYNC_ERRORS=1 in the env.
bool set_sync_errors(bool enabled);

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Blocks for a 1-D launch of n threads; grid-stride loops cover any excess.
inline unsigned grid_for(int64_t n, int threads) {
  const int64_t blocks = ceil_div(n, threads);
  return static_cast<unsigned>(blocks < 65535 * 32 ? (blocks < 1 ? 1 : blocks) : 65535 * 32);
}

#ifdef __CUDACC__
// 16-byte vector of T for gathers: float4 or double2.
template <typename T> struct Vec16;
template <> struct Vec16<float> {
  using type = float4;
  static constexpr int width = 4;
};
template <> struct Vec16<double> {
  using type = double2;
  static constexpr int width = 2;
};

// True when rows of d elements of T starting at p can be read as 16-byte vectors.
template <typename T>
inline bool can_vectorise(const void* p, int64_t d) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0 && d % Vec16<T>::width == 0;
}
#endif

}  // namespace cuda
}  // namespace autosample
