// Counter-based RNG: Philox4x32-10 (Salmon et al., SC'11), identical on host and device.
//
// One call maps (key, counter) -> 4 independent uint32 words. The project's streams use
//   key     = { lo32(seed), hi32(seed) ^ hi32(offset) }
//   counter = { draw, attempt, row, lo32(offset) }
// so a (seed, offset, row, draw, attempt) tuple gives the same words on CPU and CUDA, and
// different offsets (training steps) give independent streams.
#pragma once
#include "autosample/common.h"

namespace autosample {

struct Words4 {
  uint32_t w[4];
};

AS_HD void mul_hi_lo32(uint32_t a, uint32_t b, uint32_t* hi, uint32_t* lo) {
  const uint64_t p = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
  *hi = static_cast<uint32_t>(p >> 32);
  *lo = static_cast<uint32_t>(p);
}

AS_HD Words4 philox4x32_10(uint32_t k0, uint32_t k1, uint32_t c0, uint32_t c1, uint32_t c2,
                           uint32_t c3) {
  constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    mul_hi_lo32(kMul0, c0, &hi0, &lo0);
    mul_hi_lo32(kMul1, c2, &hi1, &lo1);
    const uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
  return Words4{{c0, c1, c2, c3}};
}

// The words for one draw of the project's streams (see the header comment).
AS_HD Words4 draw_words(uint64_t seed, uint64_t offset, uint32_t row, uint32_t draw,
                        uint32_t attempt) {
  return philox4x32_10(static_cast<uint32_t>(seed),
                       static_cast<uint32_t>(seed >> 32) ^ static_cast<uint32_t>(offset >> 32),
                       draw, attempt, row, static_cast<uint32_t>(offset));
}

// Integer uniform in [0, n) from two words: floor(x * n / 2^64) with x the 64-bit word
// (Lemire's multiply-shift; bias at most n / 2^64).
AS_HD uint64_t uniform_below(uint32_t lo, uint32_t hi, uint64_t n) {
  const uint64_t x = (static_cast<uint64_t>(hi) << 32) | lo;
#if defined(__CUDA_ARCH__)
  return __umul64hi(x, n);
#else
  return static_cast<uint64_t>((static_cast<unsigned __int128>(x) * n) >> 64);
#endif
}

// Float uniform in [0, 1) with 24 random bits; exact in float, so host and device agree.
AS_HD float uniform_unit(uint32_t word) {
  return static_cast<float>(word >> 8) * (1.0f / 16777216.0f);
}

}  // namespace autosample
