// Software prefetch of embedding rows for the gather kernels (random rows are latency bound).
#pragma once
#include <cstdint>

namespace autosample {
namespace cpu {

// Rows this many candidates ahead of the one being scored are prefetched.
constexpr int64_t kPrefetchAhead = 16;

// Prefetches the d elements at p (every 64-byte line) for reading.
template <typename T>
inline void prefetch_row(const T* p, int64_t d) {
#if defined(__GNUC__) || defined(__clang__)
  const char* c = reinterpret_cast<const char*>(p);
  for (int64_t off = 0; off < d * static_cast<int64_t>(sizeof(T)); off += 64)
    __builtin_prefetch(c + off, 0, 1);
#else
  (void)p;
  (void)d;
#endif
}

}  // namespace cpu
}  // namespace autosample
