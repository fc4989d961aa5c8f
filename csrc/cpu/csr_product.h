// CSR row products on the CPU (spmm, graph_propagate): one row at a time, in spmm.h's order,
// rows in parallel (at::parallel_for), parts cut so that each holds about the same number of
// entries (degrees of interaction graphs are heavy-tailed). Plain loops: no dispatch per entry.
#pragma once
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "autosample/csr.h"
#include "autosample/spmm.h"
#include "cand_check.h"
#include "prefetch.h"

namespace autosample {
namespace cpu {

namespace detail {

// The row loop of csr_row_product for a compile-time width D (0: the runtime d). With D > 0 the
// D sums stay in registers and the column loop is fully unrolled.
template <typename T, int D>
__attribute__((always_inline)) inline bool row_product(const int64_t* __restrict__ indices,
                                                       const T* __restrict__ values, int64_t lo,
                                                       int64_t hi, const T* __restrict__ x,
                                                       int64_t C, int64_t d_runtime,
                                                       T* __restrict__ out) {
  const int64_t d = D > 0 ? D : d_runtime;
  T acc[D > 0 ? D : 1];
  T* __restrict__ sum = D > 0 ? acc : out;
  for (int64_t c = 0; c < d; ++c) sum[c] = T(0);
  for (int64_t e = lo; e < hi; ++e) {
    if (e + kPrefetchAhead < hi && csr_column_valid(indices[e + kPrefetchAhead], C))
      prefetch_row(x + indices[e + kPrefetchAhead] * d, d);
    const int64_t j = indices[e];
    if (!csr_column_valid(j, C)) return false;
    const T v = values[e];
    const T* __restrict__ xr = x + j * d;
    for (int64_t c = 0; c < d; ++c) sum[c] = csr_axpy(sum[c], v, xr[c]);
  }
  if (D > 0)
    for (int64_t c = 0; c < d; ++c) out[c] = acc[c];
  return true;
}

// The same loop compiled for AVX2 (wider vectors; separate multiply and add as above, so the
// results are those of the baseline build, bit for bit), chosen at run time when the CPU has it.
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define AUTOSAMPLE_CPU_AVX2 1
template <typename T, int D>
__attribute__((target("avx2"))) bool row_product_avx2(const int64_t* indices, const T* values,
                                                      int64_t lo, int64_t hi, const T* x,
                                                      int64_t C, int64_t d, T* out) {
  return row_product<T, D>(indices, values, lo, hi, x, C, d, out);
}
template <typename T, int D>
bool row_product_base(const int64_t* indices, const T* values, int64_t lo, int64_t hi,
                      const T* x, int64_t C, int64_t d, T* out) {
  return row_product<T, D>(indices, values, lo, hi, x, C, d, out);
}
inline bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}
#endif

}  // namespace detail

// A row product function for width d: out[0..d) = sum over e in [lo, hi), in order, of
// values[e] * x[indices[e], 0..d) (spmm.h). It returns false at the first column id outside
// [0, C) (out is then undefined). Specialised for d = 32, 64, 128 (register sums) and AVX2.
template <typename T>
using RowProduct = bool (*)(const int64_t*, const T*, int64_t, int64_t, const T*, int64_t,
                            int64_t, T*);

template <typename T>
inline RowProduct<T> csr_row_product_for(int64_t d) {
#ifdef AUTOSAMPLE_CPU_AVX2
  if (detail::cpu_has_avx2()) {
    switch (d) {
      case 32: return &detail::row_product_avx2<T, 32>;
      case 64: return &detail::row_product_avx2<T, 64>;
      case 128: return &detail::row_product_avx2<T, 128>;
      default: return &detail::row_product_avx2<T, 0>;
    }
  }
  switch (d) {
    case 32: return &detail::row_product_base<T, 32>;
    case 64: return &detail::row_product_base<T, 64>;
    case 128: return &detail::row_product_base<T, 128>;
    default: return &detail::row_product_base<T, 0>;
  }
#else
  return [](const int64_t* indices, const T* values, int64_t lo, int64_t hi, const T* x,
            int64_t C, int64_t d, T* out) {
    return detail::row_product<T, 0>(indices, values, lo, hi, x, C, d, out);
  };
#endif
}

// Calls body(r, lo, hi) -> bool for every row r in [0, R) whose extent is valid, in parallel over
// parts of about equal entry counts; returns the smallest row whose extent was invalid or whose
// body returned false, or -1.
template <typename Body>
inline int64_t for_each_csr_row(const int64_t* indptr, int64_t R, int64_t nnz, int64_t d,
                                const Body& body) {
  // Parts: a few per thread when the work (entries x columns) is worth splitting.
  const int64_t work = (nnz + R) * std::max<int64_t>(d, 1);
  const int64_t threads = at::get_num_threads();
  const int64_t parts = work < (int64_t{1} << 15) || threads == 1 ? 1 : threads * 4;
  std::vector<int64_t> start(parts + 1, R);
  start[0] = 0;
  for (int64_t p = 1; p < parts; ++p) {
    // First row starting at or after entry p * nnz / parts (clamped monotone: indptr may be
    // invalid here, the rows' checks report that).
    const int64_t target = nnz * p / parts;
    const int64_t r = lower_bound(indptr, R + 1, target);
    start[p] = std::min(R, std::max(start[p - 1], r));
  }
  FirstBadRow bad;
  at::parallel_for(0, parts, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      for (int64_t r = start[p]; r < start[p + 1]; ++r) {
        if (!csr_row_valid(indptr, r, R, nnz) || !body(r, indptr[r], indptr[r + 1])) {
          bad.flag(r);
          return;  // the smallest bad row of this part is r: later rows cannot be smaller
        }
      }
    }
  });
  return bad.row();
}

// Raises the value error of row r (flagged by for_each_csr_row): spmm.h's order, errors.h's
// message. indptr, indices: host memory of a matrix with R rows, nnz entries, C columns.
inline void raise_csr_row_error(Op op, const int64_t* indptr, const int64_t* indices, int64_t r,
                                int64_t R, int64_t nnz, int64_t C) {
  int64_t v[4] = {0, 0, 0, 0};
  Err err = csr_extent_error(indptr, r, R, nnz, v);
  for (int64_t e = indptr[r]; err == Err::kNone && e < indptr[r + 1]; ++e) {
    if (!csr_column_valid(indices[e], C)) {
      err = Err::kCsrColumn;
      v[0] = indices[e];
      v[1] = r;
      v[2] = e;
      v[3] = C;
    }
  }
  TORCH_CHECK(err != Err::kNone, "autosample::", op_name(op), ": internal error: row ", r,
              " was flagged but is valid");
  TORCH_CHECK(false, format_value_error(op, err, v));
}

}  // namespace cpu
}  // namespace autosample
