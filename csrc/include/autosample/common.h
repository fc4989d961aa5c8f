// Shared definitions for host and device code.
// AS_HD marks a function usable from C++ (CPU kernels) and CUDA (device code).
#pragma once
#include <cstdint>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define AS_HD __host__ __device__ __forceinline__
#else
#define AS_HD inline
#endif

// AS_HD, always inlined on the host too: small functions of the CPU kernels' inner loops (a
// call per dot product costs more than the product at d = 64).
#if defined(__CUDACC__) || defined(__HIPCC__)
#define AS_HD_INLINE AS_HD
#elif defined(__GNUC__) || defined(__clang__)
#define AS_HD_INLINE inline __attribute__((always_inline))
#else
#define AS_HD_INLINE inline
#endif
