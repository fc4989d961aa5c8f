// Shared definitions for host and device code.
// AS_HD marks a function usable from C++ (CPU kernels) and CUDA (device code).
#pragma once
#include <cstdint>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define AS_HD __host__ __device__ __forceinline__
#else
#define AS_HD inline
#endif
