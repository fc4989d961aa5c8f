// Rules of the fused MF / GMF training step (mf_bpr_train) shared by its CPU and CUDA kernels:
// the sampler kinds, the value checks of a row and the rank drawn among DNS's top k.
#pragma once
#include "autosample/common.h"
#include "autosample/validate.h"

namespace autosample {

enum class MfSampler : int { kRns = 0, kPns = 1, kDns = 2, kGiven = 3 };

// The draw inputs of a call, raw pointers into contiguous tensors of one device.
struct MfDraw {
  MfSampler sampler;
  const int64_t* ptr;      // [U + 1] training CSR
  const int64_t* idx;      // [nnz]
  const float* prob;       // [N] alias table (pns) or null
  const int64_t* alias;    // [N]
  const double* cdf;       // [k] (dns, top_k > 1) or null
  const double* uniforms;  // [T, n] (dns, top_k > 1) or null
  const int64_t* given;    // [T, n] (given) or null
  int64_t n, M, k, nnz;    // negatives per row, DNS pool and top_k (1 otherwise), len(indices)
  uint64_t seed;
};

// The tables a call updates, raw: per table (users, items, GMF weight) its optimiser state rows.
template <typename T>
struct MfTables {
  T* P;  // [U, d]
  T* Q;  // [N, d]
  T* w;  // [d] or null
  T* st[3][2];
  int64_t U, N, d;
};

// The value checks of row r (global position in 'users'), in this order: the user (in range;
// for a sampler that draws: its CSR row's span, [its entries when `entries`], at least one
// non-positive item), the positive (pos_items[r] in [0, N)), the given negatives (row r of
// 'negatives' in [0, N), 'given' only). *sub: 0 user, 1 positive, 2 + j negative j (the CUDA
// kernels order their reports by (row, sub) so that both devices name the same first error).
AS_HD ValueError mf_row_error(const int64_t* indptr, const int64_t* indices, int64_t nnz,
                              int64_t num_users, int64_t N, MfSampler sampler, bool entries,
                              const int64_t* users, const int64_t* pos, const int64_t* negs,
                              int64_t n, int64_t r, int64_t* sub) {
  const int64_t u = users[r];
  *sub = 0;
  if (sampler == MfSampler::kGiven) {
    if (u < 0 || u >= num_users) return value_error(Err::kUserOutOfRange, u, r, num_users);
  } else {
    ValueError e = sample_row_head(indptr, num_users, nnz, u, r);
    if (e) return e;
    const int64_t begin = indptr[u], len = indptr[u + 1] - begin;
    if (entries && !csr_row_ok(indices + begin, len, N))
      return csr_entry_value_error(indices, begin, csr_first_bad(indices + begin, len, N), N, u);
    e = sample_row_tail(len, u, r, N);
    if (e) return e;
  }
  *sub = 1;
  if (pos[r] < 0 || pos[r] >= N) return value_error(Err::kPosOutOfRange, pos[r], r, N);
  if (sampler == MfSampler::kGiven) {
    for (int64_t j = 0; j < n; ++j) {
      *sub = 2 + j;
      const int64_t v = negs[r * n + j];
      if (v < 0 || v >= N) return value_error(Err::kNegOutOfRange, v, r, j, N);
    }
  }
  return ValueError{};
}

// The coefficient of item entry jj of a batch row in its item's gradient (times the row's user
// vector): the positive (jj = 0) gets -sum_j c_j, negative j (jj = 1 + j) gets c_j.
template <typename T>
AS_HD T entry_coef(const T* coef, int64_t n, int64_t jj) {
  if (jj > 0) return coef[jj - 1];
  T a = T(0);
  for (int64_t j = 0; j < n; ++j) a += coef[j];
  return -a;
}

// DNS with top_k > 1: the local rank drawn by uniform u in [0, 1) against the unnormalised
// cumulative weights cdf[0, k) (samplers/dns.py's draw_from_cdf: searchsorted(right) of
// u * cdf[k-1], capped at k - 1).
AS_HD int64_t cdf_rank(const double* cdf, int64_t k, double u) {
  const double target = u * cdf[k - 1];
  int64_t lo = 0, hi = k;
  while (lo < hi) {  // first position with cdf > target
    const int64_t mid = lo + (hi - lo) / 2;
    if (cdf[mid] <= target) lo = mid + 1; else hi = mid;
  }
  return lo < k - 1 ? lo : k - 1;
}

}  // namespace autosample
