// philox.h: Random123 known-answer vectors (kat_vectors, "philox4x32 10" lines: counter[4],
// key[2] -> output[4]) and the derived helpers.
#include <cmath>
#include <set>

#include "autosample/philox.h"
#include "harness.h"

using namespace autosample;

namespace {
struct Kat {
  uint32_t ctr[4], key[2], out[4];
};
const Kat kKat[] = {
    {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
    {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
     {0xffffffffu, 0xffffffffu},
     {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
    {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
     {0xa4093822u, 0x299f31d0u},
     {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
};
}  // namespace

TEST(philox_known_answers) {
  for (const Kat& k : kKat) {
    const Words4 w = philox4x32_10(k.key[0], k.key[1], k.ctr[0], k.ctr[1], k.ctr[2], k.ctr[3]);
    for (int i = 0; i < 4; ++i) CHECK_EQ(w.w[i], k.out[i]);
  }
}

TEST(draw_words_maps_stream_to_key_and_counter) {
  const uint64_t seed = 0x0123456789abcdefULL, offset = 0xfedcba9876543210ULL;
  const Words4 a = draw_words(seed, offset, 7, 3, 2);
  const Words4 b = philox4x32_10(0x89abcdefu, 0x01234567u ^ 0xfedcba98u, 3, 2, 7, 0x76543210u);
  for (int i = 0; i < 4; ++i) CHECK_EQ(a.w[i], b.w[i]);
  // Each coordinate of the tuple changes the words.
  const Words4 variants[] = {draw_words(seed + 1, offset, 7, 3, 2), draw_words(seed, offset + 1, 7, 3, 2),
                             draw_words(seed, offset + (1ULL << 32), 7, 3, 2),
                             draw_words(seed, offset, 8, 3, 2), draw_words(seed, offset, 7, 4, 2),
                             draw_words(seed, offset, 7, 3, 3)};
  for (const Words4& v : variants) CHECK(v.w[0] != a.w[0] || v.w[1] != a.w[1]);
}

TEST(uniform_below_is_multiply_shift) {
  CHECK_EQ(uniform_below(0, 0, 10), 0u);
  CHECK_EQ(uniform_below(0xffffffffu, 0xffffffffu, 10), 9u);
  CHECK_EQ(uniform_below(0, 0x80000000u, 10), 5u);  // x = 2^63 -> n / 2
  CHECK_EQ(uniform_below(0, 0x40000000u, 1000), 250u);
  CHECK_EQ(uniform_below(0xffffffffu, 0xffffffffu, 1), 0u);
  // Buckets of equal width: n = 3 splits [0, 2^64) at ceil(k * 2^64 / 3).
  CHECK_EQ(uniform_below(0x55555555u, 0x55555555u, 3), 0u);
  CHECK_EQ(uniform_below(0x55555556u, 0x55555555u, 3), 1u);
}

TEST(uniform_below_is_uniform_over_a_stream) {
  const uint64_t n = 7;
  long counts[7] = {0};
  const int draws = 70000;
  for (int i = 0; i < draws; ++i) {
    const Words4 w = draw_words(1, 2, 0, static_cast<uint32_t>(i), 0);
    const uint64_t r = uniform_below(w.w[0], w.w[1], n);
    CHECK(r < n);
    if (r < n) ++counts[r];
  }
  double chi2 = 0;
  for (long c : counts) chi2 += (c - draws / 7.0) * (c - draws / 7.0) / (draws / 7.0);
  CHECK(chi2 < 30.0);  // 6 degrees of freedom: p < 1e-4 beyond 27
}

TEST(uniform_unit_range_and_resolution) {
  CHECK_EQ(uniform_unit(0), 0.0f);
  CHECK_EQ(uniform_unit(0xffu), 0.0f);
  CHECK_EQ(uniform_unit(0x100u), 1.0f / 16777216.0f);
  CHECK_EQ(uniform_unit(0x80000000u), 0.5f);
  CHECK(uniform_unit(0xffffffffu) < 1.0f);
  CHECK_EQ(uniform_unit(0xffffffffu), 1.0f - 1.0f / 16777216.0f);
}

TEST_MAIN()
