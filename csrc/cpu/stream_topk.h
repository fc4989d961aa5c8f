// CPU-side running top-k over a stream of (key, id) pairs whose ids arrive in increasing order
// (candidate positions, item ids). Order: topk.h's canonical order (larger key first, ties to
// the smaller id, NaN first). The pairs live in the caller's keys[k] / idx[k] (e.g. an output
// row); after finish() they are sorted best first.
#pragma once
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "autosample/topk.h"

namespace autosample {
namespace cpu {

// The SSE2 forms of this header's vector loops, per key type: kWidth keys per register (0: no
// vector form), not_le / not_lt = !(a <= b) / !(a < b) per lane (true where unordered), and
// bits(m) with bit l set for lane l of a compare.
template <typename T>
struct SseKeys {
  static constexpr int kWidth = 0;
};
#if defined(__SSE2__)
template <>
struct SseKeys<float> {
  static constexpr int kWidth = 4;
  static __m128 splat(float x) { return _mm_set1_ps(x); }
  static __m128 load(const float* p) { return _mm_loadu_ps(p); }
  static __m128 not_le(__m128 a, __m128 b) { return _mm_cmpnle_ps(a, b); }
  static __m128 not_lt(__m128 a, __m128 b) { return _mm_cmpnlt_ps(a, b); }
  static uint32_t bits(__m128 m) { return static_cast<uint32_t>(_mm_movemask_ps(m)); }
};
template <>
struct SseKeys<double> {
  static constexpr int kWidth = 2;
  static __m128d splat(double x) { return _mm_set1_pd(x); }
  static __m128d load(const double* p) { return _mm_loadu_pd(p); }
  static __m128d not_le(__m128d a, __m128d b) { return _mm_cmpnle_pd(a, b); }
  static __m128d not_lt(__m128d a, __m128d b) { return _mm_cmpnlt_pd(a, b); }
  static uint32_t bits(__m128d m) { return static_cast<uint32_t>(_mm_movemask_pd(m)); }
};
#endif

// Set bits of a 4-bit lane mask (no POPCNT in the baseline x86-64 build: __builtin_popcount
// would be a library call).
constexpr int kLaneBits[16] = {0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4};

template <typename T>
class StreamTopK {
 public:
  // Up to this k: a sorted list (insert_sorted). Above: binary heap, worst pair at the root.
  static constexpr int64_t kLinearMax = 128;
  // Keys tested at once by offer_span.
  static constexpr int kChunk = 16;

  StreamTopK(T* keys, int64_t* idx, int64_t k)
      : list_(keys, idx, k), heap_(k > kLinearMax),
        thr_(std::numeric_limits<T>::quiet_NaN()) {}

  // Offer (key, id); id must exceed every id offered before. Cheap rejection: once k pairs are
  // held, a pair enters only if key > the worst held key (a tie loses on the larger id) or key
  // is NaN. thr_ is NaN until the list is full, so !(key <= thr_) then lets everything through.
  inline void offer(T key, int64_t id) {
    if (!(key <= thr_)) slow_offer(key, id);
  }

  // Offers (key[j], j) for j = begin .. end - 1, in that order: the same result as offer() one
  // by one. Each chunk of kChunk keys is first tested against the threshold all at once (SSE
  // compares); only the keys that pass are offered, in order. A key that fails could not enter
  // later in the chunk either: the threshold only rises (or turns NaN when k NaNs are held, and
  // then a number ranks after all of them).
  inline void offer_span(const T* key, int64_t begin, int64_t end) {
    int64_t j = begin;
    for (; j + kChunk <= end; j += kChunk) {
      for (uint32_t pass = above_mask(key + j, thr_); pass != 0; pass &= pass - 1) {
        const int l = __builtin_ctz(pass);
        offer(key[j + l], j + l);
      }
    }
    for (; j < end; ++j) offer(key[j], j);
  }

  // Sorts the held pairs best first; returns how many are held.
  int64_t finish() {
    if (heap_) {
      for (int64_t end = list_.size - 1; end > 0; --end) {
        const T key = list_.keys[end];
        const int64_t id = list_.idx[end];
        list_.keys[end] = list_.keys[0];
        list_.idx[end] = list_.idx[0];
        sift_down(key, id, end);
      }
    }
    return list_.size;
  }

 private:
  void slow_offer(T key, int64_t id) {
    if (list_.k == 0) return;
    if (!heap_) {
      insert_sorted(key, id);
      if (list_.size == list_.k) thr_ = list_.keys[list_.k - 1];
      return;
    }
    T* keys = list_.keys;
    int64_t* idx = list_.idx;
    if (list_.size < list_.k) {  // sift up: a parent ranks after (is worse than) its children
      int64_t pos = list_.size++;
      while (pos > 0) {
        const int64_t parent = (pos - 1) / 2;
        if (!ranks_before(keys[parent], idx[parent], key, id)) break;
        keys[pos] = keys[parent];
        idx[pos] = idx[parent];
        pos = parent;
      }
      keys[pos] = key;
      idx[pos] = id;
    } else {
      if (!ranks_before(key, id, keys[0], idx[0])) return;
      sift_down(key, id, list_.size);
    }
    if (list_.size == list_.k) thr_ = keys[0];
  }

  // The sorted list's insertion (BoundedTopK::push's result): the position is the number of
  // held pairs that rank before (key, id), counted with vector compares (no branch per pair),
  // then the worse pairs shift down by one.
  void insert_sorted(T key, int64_t id) {
    T* keys = list_.keys;
    int64_t* idx = list_.idx;
    const int64_t n = list_.size, k = list_.k;
    const int64_t pos = held_before(keys, n, key);
    if (pos >= k) return;
    const int64_t moved = (n < k ? n : k - 1) - pos;
    std::memmove(keys + pos + 1, keys + pos, static_cast<size_t>(moved) * sizeof(T));
    std::memmove(idx + pos + 1, idx + pos, static_cast<size_t>(moved) * sizeof(int64_t));
    keys[pos] = key;
    idx[pos] = id;
    if (n < k) ++list_.size;
  }

  // How many of the sorted keys[0, n) rank before `key` with an id larger than all of theirs:
  // they form a prefix (NaNs, then keys >= key: a tie goes to the smaller, held id); for a NaN
  // key, the held NaNs.
  static inline int64_t held_before(const T* keys, int64_t n, T key) {
    int64_t c = 0, i = 0;
    if (key_is_nan(key)) {
      while (c < n && key_is_nan(keys[c])) ++c;
      return c;
    }
    using S = SseKeys<T>;
    if constexpr (S::kWidth > 0) {
      const auto kv = S::splat(key);
      for (; i + S::kWidth <= n; i += S::kWidth)
        c += kLaneBits[S::bits(S::not_lt(S::load(keys + i), kv))];
    }
    for (; i < n; ++i) c += !(keys[i] < key);
    return c;
  }

  // Places (key, id) at the root of the heap keys[0, size) and sifts it down.
  void sift_down(T key, int64_t id, int64_t size) {
    T* keys = list_.keys;
    int64_t* idx = list_.idx;
    int64_t pos = 0;
    for (;;) {
      int64_t child = 2 * pos + 1;
      if (child >= size) break;
      if (child + 1 < size && ranks_before(keys[child], idx[child], keys[child + 1], idx[child + 1]))
        ++child;  // the worse child
      if (!ranks_before(key, id, keys[child], idx[child])) break;
      keys[pos] = keys[child];
      idx[pos] = idx[child];
      pos = child;
    }
    keys[pos] = key;
    idx[pos] = id;
  }

  // Bit l set when key k[l] (l < kChunk) satisfies !(k[l] <= thr), offer()'s test (true for a
  // NaN key, and for every key while thr is NaN).
  static inline uint32_t above_mask(const T* k, T thr) {
    using S = SseKeys<T>;
    if constexpr (S::kWidth > 0) {
      const auto t = S::splat(thr);
      uint32_t mask = 0;
      for (int l = 0; l < kChunk; l += S::kWidth)
        mask |= S::bits(S::not_le(S::load(k + l), t)) << l;
      return mask;
    } else {
      uint32_t mask = 0;
      for (int l = 0; l < kChunk; ++l) mask |= static_cast<uint32_t>(!(k[l] <= thr)) << l;
      return mask;
    }
  }

  BoundedTopK<T, int64_t> list_;
  bool heap_;
  T thr_;
};

}  // namespace cpu
}  // namespace autosample
