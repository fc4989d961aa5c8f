// CPU-side running top-k over a stream of (key, id) pairs whose ids arrive in increasing order
// (candidate positions, item ids). Order: topk.h's canonical order (larger key first, ties to
// the smaller id, NaN first). The pairs live in the caller's keys[k] / idx[k] (e.g. an output
// row); after finish() they are sorted best first.
#pragma once
#include <cstdint>
#include <limits>

#include "autosample/topk.h"

namespace autosample {
namespace cpu {

template <typename T>
class StreamTopK {
 public:
  // Up to this k: sorted insertion (BoundedTopK). Above: binary heap, worst pair at the root.
  static constexpr int64_t kLinearMax = 32;

  StreamTopK(T* keys, int64_t* idx, int64_t k)
      : list_(keys, idx, k), heap_(k > kLinearMax),
        thr_(std::numeric_limits<T>::quiet_NaN()) {}

  // Offer (key, id); id must exceed every id offered before. Cheap rejection: once k pairs are
  // held, a pair enters only if key > the worst held key (a tie loses on the larger id) or key
  // is NaN. thr_ is NaN until the list is full, so !(key <= thr_) then lets everything through.
  inline void offer(T key, int64_t id) {
    if (!(key <= thr_)) slow_offer(key, id);
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
      list_.push(key, id);
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

  BoundedTopK<T, int64_t> list_;
  bool heap_;
  T thr_;
};

}  // namespace cpu
}  // namespace autosample
