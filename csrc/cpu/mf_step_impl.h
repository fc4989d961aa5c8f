// The kernel of mf_bpr_train (CPU), included by mf_step.cpp (the baseline x86-64 / any ISA) and
// by mf_step_avx2.cpp (the same code compiled for AVX2 inside its own namespace, chosen at run
// time on CPUs that have it). Both give the same bits: no FMA (-ffp-contract=off), no
// reassociation, the same order of every sum.
//
// mf_bpr_train (CPU): whole MF / GMF BPR training steps (semantics: ops/reference_mf.py).
//
// Per step (rows [s*B, min((s+1)*B, T)) of users / pos_items, Philox offset
// offset + s * offset_stride):
//   0. one serial pass numbers the batch's users (first appearance) and lists each one's rows;
//   1. rows in parallel: the negatives (sample_negatives' draws, negatives_row.h, row = position
//      in the step's batch, kLanes rows' searches in lockstep; DNS: the best of each pool of M
//      candidates by dot.h's scores in topk.h's order, or a draw among the top k), the scores,
//      BPR's coefficients c_bj = softplus'(r_bj - r_b) / (B_s n), the row's loss, its share of
//      its user's gradient and a copy of the user vector; a user with this one row in the batch
//      is updated here (its gradient is complete), the others' shares are kept;
//   2. one serial pass numbers the touched items and lists their contributions in batch order
//      (row b: the positive, then negative j);
//   3. items in parallel: each sums its contributions in that order (from the rows' copies of
//      the user vectors) and updates its row and optimiser state; then the users of several
//      rows from their shares in row order; then the GMF weight from the rows' shares;
//   4. dense Adam only: every row of the tables not touched by the step, with a zero gradient.
// Every sum runs in a fixed order that does not depend on the number of threads, so the result
// is deterministic (no Hogwild). A step's gradients are all taken at the step's starting point:
// items read the copies of the user vectors, users' shares are computed before any item moves.
// Value checks (mf_step.h's row rule, the alias table when validate) run over every row of the
// call before anything is written: a bad input raises and leaves the tables untouched.
#pragma once
#include <ATen/core/Tensor.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>

#include <algorithm>
#include <vector>

#include "autosample/bpr.h"
#include "autosample/dot.h"
#include "autosample/mf_checks.h"
#include "autosample/mf_step.h"
#include "negatives_row.h"
#include "prefetch.h"
#include "stream_topk.h"

namespace autosample {
namespace {

constexpr Op kOp = Op::kMfBprTrain;
// Rows (batch rows, touched table rows) ahead of the one processed whose memory is prefetched:
// the random rows of the tables, the state and the CSR are latency bound.
constexpr int64_t kAhead = 4;
// Up to this many 64-byte lines of a user's CSR row are prefetched (its binary searches).
constexpr int64_t kCsrLines = 16;

inline void prefetch_write(const void* p, int64_t bytes) {
#if defined(__GNUC__) || defined(__clang__)
  const char* c = static_cast<const char*>(p);
  for (int64_t off = 0; off < bytes; off += 64) __builtin_prefetch(c + off, 1, 1);
#else
  (void)p;
  (void)bytes;
#endif
}

// Working memory of one step (sized for a full batch).
template <typename T>
struct StepBuffers {
  std::vector<int64_t> neg;   // [B, n]
  std::vector<T> coef;        // [B, n]
  std::vector<T> ug;          // [B, d] each row's share of its user's gradient (users of
                              //        several rows; the others are updated in step 1)
  std::vector<T> urow;        // [B, d] each row's user vector before the step (P_u, GMF P_u * w)
  std::vector<T> wg;          // [B, d] GMF: each row's share of the weight's gradient
  std::vector<double> loss;   // [B] softplus sum, [B] squared norms
  std::vector<double> reg;
  std::vector<int32_t> slot_u, slot_i;            // table row -> slot, -1 when untouched
  std::vector<int64_t> users_of, items_of;        // slot -> table row
  std::vector<int64_t> u_start, u_list, i_start, i_list;  // contributions per slot (CSR)
  std::vector<int64_t> item_keys, fill;                   // step 2's scratch
};

template <typename T>
void check_rows(const MfTables<T>& tb, const MfDraw& dr, const int64_t* users, const int64_t* pos,
                int64_t T_rows, int64_t nnz, bool validate) {
  if (dr.prob != nullptr && validate) cpu::check_alias_table(kOp, dr.prob, dr.alias, tb.N);
  const bool draws = dr.sampler != MfSampler::kGiven;
  if (!(validate && draws)) {  // the O(1) rules of every row at once, without a branch per row
    bool ok = true;
    for (int64_t r = 0; r < T_rows; ++r) {
      const int64_t u = users[r];
      const bool in = u >= 0 && u < tb.U;
      const int64_t uu = in ? u : 0, b = dr.ptr[uu], e = dr.ptr[uu + 1];
      const bool row_ok = (b >= 0) & (b <= e) & (e <= nnz) & (e - b < tb.N);
      ok &= in & (pos[r] >= 0) & (pos[r] < tb.N) & (draws ? row_ok : true);
    }
    if (!draws)
      for (int64_t i = 0; i < T_rows * dr.n; ++i) ok &= (dr.given[i] >= 0) & (dr.given[i] < tb.N);
    if (ok) return;
  }
  for (int64_t r = 0; r < T_rows; ++r) {  // the first error, in mf_row_error's order
    int64_t sub = 0;
    const ValueError e = mf_row_error(dr.ptr, dr.idx, nnz, tb.U, tb.N, dr.sampler, validate, users,
                                      pos, dr.given, dr.n, r, &sub);
    if (e) raise_value_error(kOp, e.code, e.v);
  }
}

// The rows the update of table row `row` of table t (0 users, 1 items) writes.
template <typename T>
void prefetch_slot(const MfTables<T>& tb, int t, int64_t row, int64_t d) {
  T* table = t == 0 ? tb.P : tb.Q;
  prefetch_write(table + row * d, d * static_cast<int64_t>(sizeof(T)));
  for (T* st : tb.st[t])
    if (st != nullptr) prefetch_write(st + row * d, d * static_cast<int64_t>(sizeof(T)));
}

// The optimiser on one touched row (bpr.h's element rules). Restrict-qualified rows and the
// constants by value: the loops vectorise (sqrt without errno: -fno-math-errno, setup.py).
template <typename T>
void update_row(SparseOpt opt, T* __restrict__ p, T* __restrict__ s0, T* __restrict__ s1,
                const T* __restrict__ g, int64_t d, const OptStep<T> c) {
  if (opt == SparseOpt::kSgd) {
    for (int64_t k = 0; k < d; ++k) sgd_update(p + k, g[k], c);
  } else if (opt == SparseOpt::kAdagrad) {
    for (int64_t k = 0; k < d; ++k) adagrad_update(p + k, s0 + k, g[k], c);
  } else {
    for (int64_t k = 0; k < d; ++k) adam_update(p + k, s0 + k, s1 + k, g[k], c);
  }
}

// Dense Adam's update of the rows a step did not touch (slot -1): zero gradient (bpr.h's
// adam_idle), rows in parallel.
template <typename T>
void idle_rows(T* table, T* m, T* v, const std::vector<int32_t>& slot_of, int64_t d,
               const OptStep<T> c) {
  const int64_t rows = static_cast<int64_t>(slot_of.size());
  at::parallel_for(0, rows, 256, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      if (slot_of[r] >= 0) continue;
      T* __restrict__ p = table + r * d;
      T* __restrict__ mr = m + r * d;
      T* __restrict__ vr = v + r * d;
      for (int64_t k = 0; k < d; ++k) adam_idle(p + k, mr + k, vr + k, c);
    }
  });
}

// What row_pass will read of batch row b: the user's and the positive's rows, the negatives'
// rows when drawn already, else (DNS) the user's CSR row (the draws' binary searches; evenly
// spread lines of a long row).
template <typename T>
void prefetch_batch_row(const MfTables<T>& tb, const MfDraw& dr, const int64_t* neg, int64_t u,
                        int64_t p) {
  cpu::prefetch_row(tb.P + u * tb.d, tb.d);
  cpu::prefetch_row(tb.Q + p * tb.d, tb.d);
  if (dr.sampler != MfSampler::kDns) {
    for (int64_t j = 0; j < dr.n; ++j) cpu::prefetch_row(tb.Q + neg[j] * tb.d, tb.d);
    return;
  }
  const int64_t* row = dr.idx + dr.ptr[u];
  const int64_t lines = (dr.ptr[u + 1] - dr.ptr[u] + 7) / 8;
  const int64_t stride = std::max<int64_t>(1, lines / kCsrLines);
  for (int64_t l = 0; l < lines; l += stride) __builtin_prefetch(row + 8 * l, 0, 1);
}

// RNS / PNS: the negatives of batch rows [lo, hi) (global row r0 + b), cpu::kLanes rows at a
// time (negatives_row.h's draw_lanes: the items of sample_negatives).
template <typename T>
void draw_batch_rows(const MfTables<T>& tb, const MfDraw& dr, uint64_t offset, const int64_t* users,
                     int64_t r0, int64_t lo, int64_t hi, int64_t* neg) {
  const int64_t n = dr.n;
  for (int64_t b0 = lo; b0 < hi; b0 += cpu::kLanes) {
    const int lanes = static_cast<int>(std::min<int64_t>(cpu::kLanes, hi - b0));
    const int64_t* rows[cpu::kLanes];
    int64_t deg[cpu::kLanes], bs[cpu::kLanes], out[cpu::kLanes];
    for (int k = 0; k < lanes; ++k) {
      const int64_t u = users[r0 + b0 + k];
      rows[k] = dr.idx + dr.ptr[u];
      deg[k] = dr.ptr[u + 1] - dr.ptr[u];
      bs[k] = b0 + k;
    }
    for (int64_t j = 0; j < n; ++j) {
      cpu::draw_lanes(kOp, rows, deg, tb.N, dr.seed, offset, bs, lanes, static_cast<uint32_t>(j),
                      dr.prob, dr.alias, out);
      for (int k = 0; k < lanes; ++k) neg[(b0 + k) * n + j] = out[k];
    }
  }
}

// Step 1 for row b of the step (global row r): negatives, scores, coefficients, shares.
template <typename T>
void row_pass(const MfTables<T>& tb, const MfDraw& dr, uint64_t offset, int64_t r, int64_t b,
              int64_t u, int64_t p, T inv_bn, T r2, bool single, SparseOpt opt,
              const OptStep<T>& oc, StepBuffers<T>& buf, T* ut_scratch, T* ug_scratch,
              int64_t* cand, T* top_keys, int64_t* top_idx) {
  const int64_t d = tb.d, n = dr.n;
  const T* Pu = tb.P + u * d;
  const T* ut = Pu;
  if (tb.w != nullptr) {  // GMF: the final user vector P_u * w (the autograd path's table)
    for (int64_t k = 0; k < d; ++k) ut_scratch[k] = Pu[k] * tb.w[k];
    ut = ut_scratch;
  }
  int64_t* neg = buf.neg.data() + b * n;
  if (dr.sampler == MfSampler::kGiven) {
    for (int64_t j = 0; j < n; ++j) neg[j] = dr.given[r * n + j];
  } else if (dr.sampler == MfSampler::kDns) {
    const int64_t* row = dr.idx + dr.ptr[u];
    const int64_t deg = dr.ptr[u + 1] - dr.ptr[u];
    const int64_t M = dr.M;
    cpu::draw_row(kOp, row, deg, tb.N, dr.seed, offset, b, n * M, nullptr, nullptr, cand);
    for (int64_t j = 0; j < n; ++j) {
      const int64_t* pool = cand + j * M;
      cpu::StreamTopK<T> top(top_keys, top_idx, dr.k);
      const int64_t ahead = std::min(M, cpu::kPrefetchAhead);
      for (int64_t m = 0; m < ahead; ++m) cpu::prefetch_row(tb.Q + pool[m] * d, d);
      for (int64_t m = 0; m < M; ++m) {
        if (m + ahead < M) cpu::prefetch_row(tb.Q + pool[m + ahead] * d, d);
        top.offer(dot(ut, tb.Q + pool[m] * d, d), m);
      }
      top.finish();
      const int64_t pick = dr.k == 1 ? 0 : cdf_rank(dr.cdf, dr.k, dr.uniforms[r * n + j]);
      neg[j] = pool[top_idx[pick]];
    }
  }  // rns / pns: drawn for kLanes rows at once before (draw_batch_rows)
  const T* Qp = tb.Q + p * d;
  T* coef = buf.coef.data() + b * n;
  T* ug = single ? ug_scratch : buf.ug.data() + b * d;
  const T sp = dot(ut, Qp, d);
  double loss = 0.0;
  double reg = static_cast<double>(dot(Pu, Pu, d)) + static_cast<double>(dot(Qp, Qp, d));
  if (n == 1) {  // the common case: ug written once
    const T* Qn = tb.Q + neg[0] * d;
    const T x = dot(ut, Qn, d) - sp;
    loss = static_cast<double>(bpr_softplus(x));
    const T c = coef[0] = bpr_softplus_backward(inv_bn, x);
    reg += static_cast<double>(dot(Qn, Qn, d));
    for (int64_t k = 0; k < d; ++k) ug[k] = c * (Qn[k] - Qp[k]);
  } else {
    for (int64_t k = 0; k < d; ++k) ug[k] = T(0);
    for (int64_t j = 0; j < n; ++j) {
      const T* Qn = tb.Q + neg[j] * d;
      const T x = dot(ut, Qn, d) - sp;
      loss += static_cast<double>(bpr_softplus(x));
      coef[j] = bpr_softplus_backward(inv_bn, x);
      reg += static_cast<double>(dot(Qn, Qn, d));
      for (int64_t k = 0; k < d; ++k) ug[k] += coef[j] * (Qn[k] - Qp[k]);
    }
  }
  if (tb.w != nullptr) {
    T* wg = buf.wg.data() + b * d;
    for (int64_t k = 0; k < d; ++k) {
      wg[k] = Pu[k] * ug[k];
      ug[k] = tb.w[k] * ug[k] + r2 * Pu[k];
    }
  } else {
    for (int64_t k = 0; k < d; ++k) ug[k] += r2 * Pu[k];
  }
  buf.loss[b] = loss;
  buf.reg[b] = reg;
  // The item gradients of step 3 read the user vector as it was before the step.
  T* urow = buf.urow.data() + b * d;
  for (int64_t k = 0; k < d; ++k) urow[k] = ut[k];
  if (single)  // the user's only row: its gradient is complete, update it now (still cached)
    update_row(opt, tb.P + u * d, tb.st[0][0] ? tb.st[0][0] + u * d : nullptr,
               tb.st[0][1] ? tb.st[0][1] + u * d : nullptr, ug, d, oc);
}

// Step 2: slots in order of first appearance, contributions per slot in batch order.
void list_contributions(const int64_t* keys, int64_t count, std::vector<int32_t>& slot_of,
                        std::vector<int64_t>& rows_of, std::vector<int64_t>& start,
                        std::vector<int64_t>& list, std::vector<int64_t>& fill) {
  rows_of.clear();
  start.assign(1, 0);
  for (int64_t e = 0; e < count; ++e) {
    int32_t& s = slot_of[keys[e]];
    if (s < 0) {
      s = static_cast<int32_t>(rows_of.size());
      rows_of.push_back(keys[e]);
      start.push_back(0);
    }
    ++start[s + 1];
  }
  for (size_t s = 1; s < start.size(); ++s) start[s] += start[s - 1];
  list.resize(count);
  fill.assign(start.begin(), start.end() - 1);
  for (int64_t e = 0; e < count; ++e) list[fill[slot_of[keys[e]]]++] = e;
}

template <typename T>
double run_step(const MfTables<T>& tb, const MfDraw& dr, SparseOpt opt, const OptStep<T>& oc,
                const int64_t* users, const int64_t* pos, int64_t r0, int64_t rows,
                uint64_t offset, double l2, StepBuffers<T>& buf) {
  const int64_t d = tb.d, n = dr.n;
  const T inv_bn = T(1) / static_cast<T>(rows * n);
  const T r2 = static_cast<T>(2.0 * l2 / static_cast<double>(rows));
  // Step 2 for the users first: a user of one row is updated in step 1.
  list_contributions(users + r0, rows, buf.slot_u, buf.users_of, buf.u_start, buf.u_list,
                     buf.fill);
  auto rows_of_user = [&](int64_t user) {
    const int32_t s = buf.slot_u[user];
    return buf.u_start[s + 1] - buf.u_start[s];
  };
  const int64_t grain = std::max<int64_t>(1, 256 / std::max<int64_t>(1, n * dr.M));
  at::parallel_for(0, rows, grain, [&](int64_t lo, int64_t hi) {
    std::vector<T> ut(tb.w != nullptr ? d : 0), ug(d), keys(dr.k);
    std::vector<int64_t> cand(dr.sampler == MfSampler::kDns ? n * dr.M : 0), idx(dr.k);
    if (dr.sampler == MfSampler::kRns || dr.sampler == MfSampler::kPns)
      draw_batch_rows(tb, dr, offset, users, r0, lo, hi, buf.neg.data());
    for (int64_t b = lo; b < hi; ++b) {
      if (b + kAhead < hi) {
        const int64_t a = b + kAhead;
        const int64_t* neg = dr.sampler == MfSampler::kGiven ? dr.given + (r0 + a) * n
                                                             : buf.neg.data() + a * n;
        prefetch_batch_row(tb, dr, neg, users[r0 + a], pos[r0 + a]);
      }
      const int64_t u = users[r0 + b];
      row_pass(tb, dr, offset, r0 + b, b, u, pos[r0 + b], inv_bn, r2, rows_of_user(u) == 1, opt,
               oc, buf, ut.data(), ug.data(), cand.data(), keys.data(), idx.data());
    }
  });
  double softplus_sum = 0.0, reg_sum = 0.0;
  for (int64_t b = 0; b < rows; ++b) {
    softplus_sum += buf.loss[b];
    reg_sum += buf.reg[b];
  }
  // Step 2. Item entries e = b * (n + 1) + j': j' = 0 the positive, 1 + j negative j.
  std::vector<int64_t>& item_keys = buf.item_keys;
  item_keys.resize(rows * (n + 1));
  for (int64_t b = 0; b < rows; ++b) {
    item_keys[b * (n + 1)] = pos[r0 + b];
    for (int64_t j = 0; j < n; ++j) item_keys[b * (n + 1) + 1 + j] = buf.neg[b * n + j];
  }
  list_contributions(item_keys.data(), rows * (n + 1), buf.slot_i, buf.items_of, buf.i_start,
                     buf.i_list, buf.fill);
  // Step 3: items (their gradients read the rows' user vectors from before the step).
  const T r2t = r2;
  const int64_t ni = static_cast<int64_t>(buf.items_of.size());
  at::parallel_for(0, ni, 64, [&](int64_t lo, int64_t hi) {
    std::vector<T> g(d);
    for (int64_t s = lo; s < hi; ++s) {
      if (s + kAhead < hi) prefetch_slot(tb, 1, buf.items_of[s + kAhead], d);
      const int64_t item = buf.items_of[s];
      T* q = tb.Q + item * d;
      for (int64_t k = 0; k < d; ++k) g[k] = T(0);
      for (int64_t c = buf.i_start[s]; c < buf.i_start[s + 1]; ++c) {
        const int64_t e = buf.i_list[c], b = e / (n + 1), jj = e % (n + 1);
        const T a = entry_coef(buf.coef.data() + b * n, n, jj);
        const T* ut = buf.urow.data() + b * d;  // P_u (GMF: P_u * w)
        for (int64_t k = 0; k < d; ++k) g[k] += a * ut[k] + r2t * q[k];
      }
      update_row(opt, q, tb.st[1][0] ? tb.st[1][0] + item * d : nullptr,
                 tb.st[1][1] ? tb.st[1][1] + item * d : nullptr, g.data(), d, oc);
    }
  });
  const int64_t nu = static_cast<int64_t>(buf.users_of.size());
  at::parallel_for(0, nu, 64, [&](int64_t lo, int64_t hi) {
    std::vector<T> g(d);
    for (int64_t s = lo; s < hi; ++s) {
      if (s + kAhead < hi) prefetch_slot(tb, 0, buf.users_of[s + kAhead], d);
      const int64_t user = buf.users_of[s];
      const int64_t c0 = buf.u_start[s], c1 = buf.u_start[s + 1];
      if (c1 - c0 == 1) continue;  // updated in step 1
      const T* first = buf.ug.data() + buf.u_list[c0] * d;
      for (int64_t k = 0; k < d; ++k) g[k] = first[k];
      for (int64_t c = c0 + 1; c < c1; ++c) {
        const T* more = buf.ug.data() + buf.u_list[c] * d;
        for (int64_t k = 0; k < d; ++k) g[k] += more[k];
      }
      update_row(opt, tb.P + user * d, tb.st[0][0] ? tb.st[0][0] + user * d : nullptr,
                 tb.st[0][1] ? tb.st[0][1] + user * d : nullptr, g.data(), d, oc);
    }
  });
  if (tb.w != nullptr) {  // the weight: the rows' shares in batch order
    std::vector<T> g(buf.wg.begin(), buf.wg.begin() + d);
    for (int64_t b = 1; b < rows; ++b)
      for (int64_t k = 0; k < d; ++k) g[k] += buf.wg[b * d + k];
    update_row(opt, tb.w, tb.st[2][0], tb.st[2][1], g.data(), d, oc);
  }
  if (opt == SparseOpt::kAdam) {  // dense Adam: every row not in the batch, with g = 0
    idle_rows(tb.P, tb.st[0][0], tb.st[0][1], buf.slot_u, d, oc);
    idle_rows(tb.Q, tb.st[1][0], tb.st[1][1], buf.slot_i, d, oc);
  }
  for (int64_t user : buf.users_of) buf.slot_u[user] = -1;
  for (int64_t item : buf.items_of) buf.slot_i[item] = -1;
  return softplus_sum / static_cast<double>(rows * n) + l2 * reg_sum / static_cast<double>(rows);
}

at::Tensor mf_bpr_train_impl(const MfCall& c) {
  const MfArgs a = check_mf_bpr_train_args(c);
  at::Tensor losses = at::empty({a.steps}, c.user_emb.options().dtype(at::kDouble));
  const int64_t total = c.users.size(0);
  if (total == 0) return losses;
  const MfInputs in = prepare_mf_inputs(c, a);
  const MfDraw& dr = in.draw;
  const int64_t batch_size = c.batch_size;
  const int64_t* usr = in.users.data_ptr<int64_t>();
  const int64_t* ps = in.pos.data_ptr<int64_t>();
  double* out = losses.data_ptr<double>();
  AT_DISPATCH_FLOATING_TYPES(c.user_emb.scalar_type(), "mf_bpr_train_cpu", [&] {
    const MfTables<scalar_t> tb = mf_tables<scalar_t>(c, a);
    check_rows(tb, dr, usr, ps, total, dr.nnz, c.validate);
    StepBuffers<scalar_t> buf;
    const int64_t B = std::min(batch_size, total);
    buf.neg.resize(B * dr.n);
    buf.coef.resize(B * dr.n);
    buf.ug.resize(B * tb.d);
    buf.urow.resize(B * tb.d);
    if (tb.w != nullptr) buf.wg.resize(B * tb.d);
    buf.loss.resize(B);
    buf.reg.resize(B);
    buf.slot_u.assign(tb.U, -1);
    buf.slot_i.assign(tb.N, -1);
    for (int64_t s = 0; s < a.steps; ++s) {
      const int64_t r0 = s * batch_size, rows = std::min(batch_size, total - r0);
      const auto oc = opt_step_constants<scalar_t>(c.lr, c.eps, c.beta1, c.beta2,
                                                   c.opt_step + s + 1);
      const uint64_t off = static_cast<uint64_t>(c.offset) +
                           static_cast<uint64_t>(s) * static_cast<uint64_t>(c.offset_stride);
      out[s] = run_step(tb, dr, a.opt, oc, usr, ps, r0, rows, off, c.l2, buf);
    }
  });
  return losses;
}

}  // namespace
}  // namespace autosample
