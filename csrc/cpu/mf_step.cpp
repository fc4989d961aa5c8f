// mf_bpr_train (CPU): whole MF / GMF BPR training steps (semantics: ops/reference_mf.py).
//
// Per step (rows [s*B, min((s+1)*B, T)) of users / pos_items, Philox offset
// offset + s * offset_stride):
//   1. rows in parallel: the negatives (sample_negatives' draws, negatives_row.h, row = position
//      in the step's batch; DNS: the best of each pool of M candidates by dot.h's scores in
//      topk.h's order, or a draw among the top k), the scores, BPR's coefficients
//      c_bj = softplus'(r_bj - r_b) / (B_s n), the row's loss and its user-gradient share;
//   2. one serial pass numbers the touched users and items (first appearance) and lists the
//      contributions of each in batch order (row b; for items: the positive, then negative j);
//   3. items in parallel: each sums its contributions in that order and updates its row (and
//      optimiser state); then users likewise from their rows' shares; then the GMF weight.
// Every sum runs in a fixed order that does not depend on the number of threads, so the result
// is deterministic (no Hogwild). Item gradients read the user rows and user gradients were
// computed in step 1, so the updates of one table never feed the other's gradient in a step.
// Value checks (mf_step.h's row rule, the alias table when validate) run over every row of the
// call before anything is written: a bad input raises and leaves the tables untouched.
#include <ATen/core/Tensor.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <vector>

#include "autosample/bpr.h"
#include "autosample/dot.h"
#include "autosample/mf_checks.h"
#include "autosample/mf_step.h"
#include "negatives_row.h"
#include "stream_topk.h"

namespace autosample {
namespace {

constexpr Op kOp = Op::kMfBprTrain;

// The inputs of every step, raw.
template <typename T>
struct Tables {
  T* P;  // [U, d] user table
  T* Q;  // [N, d] item table
  T* w;  // [d] GMF weight or nullptr
  T* st[3][2];  // per table its optimiser state rows (nullptr when unused)
  int64_t U, N, d;
};

struct Draw {
  MfSampler sampler;
  const int64_t* ptr;
  const int64_t* idx;
  const float* prob;
  const int64_t* alias;
  const double* cdf;
  const double* uniforms;  // [T, n]
  const int64_t* given;    // [T, n]
  int64_t n, M, k;
  uint64_t seed;
};

// Working memory of one step (sized for a full batch).
template <typename T>
struct StepBuffers {
  std::vector<int64_t> neg;   // [B, n]
  std::vector<T> coef;        // [B, n]
  std::vector<T> ug;          // [B, d] each row's share of its user's gradient
  std::vector<T> wg;          // [B, d] GMF: each row's share of the weight's gradient
  std::vector<double> loss;   // [B] softplus sum, [B] squared norms
  std::vector<double> reg;
  std::vector<int32_t> slot_u, slot_i;            // table row -> slot, -1 when untouched
  std::vector<int64_t> users_of, items_of;        // slot -> table row
  std::vector<int64_t> u_start, u_list, i_start, i_list;  // contributions per slot (CSR)
};

template <typename T>
void check_rows(const Tables<T>& tb, const Draw& dr, const int64_t* users, const int64_t* pos,
                int64_t T_rows, int64_t nnz, bool validate) {
  if (dr.prob != nullptr && validate) cpu::check_alias_table(kOp, dr.prob, dr.alias, tb.N);
  for (int64_t r = 0; r < T_rows; ++r) {
    int64_t sub = 0;
    const ValueError e = mf_row_error(dr.ptr, dr.idx, nnz, tb.U, tb.N, dr.sampler, validate, users,
                                      pos, dr.given, dr.n, r, &sub);
    if (e) raise_value_error(kOp, e.code, e.v);
  }
}

// Step 1 for row b of the step (global row r): negatives, scores, coefficients, shares.
template <typename T>
void row_pass(const Tables<T>& tb, const Draw& dr, uint64_t offset, int64_t r, int64_t b,
              int64_t u, int64_t p, T inv_bn, T r2, StepBuffers<T>& buf, T* ut_scratch,
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
  } else {
    const int64_t* row = dr.idx + dr.ptr[u];
    const int64_t deg = dr.ptr[u + 1] - dr.ptr[u];
    if (dr.sampler == MfSampler::kDns) {
      const int64_t M = dr.M;
      cpu::draw_row(kOp, row, deg, tb.N, dr.seed, offset, b, n * M, nullptr, nullptr, cand);
      for (int64_t j = 0; j < n; ++j) {
        const int64_t* pool = cand + j * M;
        cpu::StreamTopK<T> top(top_keys, top_idx, dr.k);
        for (int64_t m = 0; m < M; ++m) top.offer(dot(ut, tb.Q + pool[m] * d, d), m);
        top.finish();
        const int64_t pick = dr.k == 1 ? 0 : cdf_rank(dr.cdf, dr.k, dr.uniforms[r * n + j]);
        neg[j] = pool[top_idx[pick]];
      }
    } else {
      cpu::draw_row(kOp, row, deg, tb.N, dr.seed, offset, b, n, dr.prob, dr.alias, neg);
    }
  }
  const T* Qp = tb.Q + p * d;
  const T sp = dot(ut, Qp, d);
  T* coef = buf.coef.data() + b * n;
  double loss = 0.0, reg = 0.0;
  for (int64_t k = 0; k < d; ++k) reg += static_cast<double>(Pu[k]) * Pu[k] +
                                         static_cast<double>(Qp[k]) * Qp[k];
  T* ug = buf.ug.data() + b * d;
  for (int64_t k = 0; k < d; ++k) ug[k] = T(0);
  for (int64_t j = 0; j < n; ++j) {
    const T* Qn = tb.Q + neg[j] * d;
    const T x = dot(ut, Qn, d) - sp;
    loss += bpr_softplus(static_cast<double>(x));
    coef[j] = bpr_softplus_backward(inv_bn, x);
    for (int64_t k = 0; k < d; ++k) {
      ug[k] += coef[j] * (Qn[k] - Qp[k]);
      reg += static_cast<double>(Qn[k]) * Qn[k];
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
}

// Step 2: slots in order of first appearance, contributions per slot in batch order.
void list_contributions(const int64_t* keys, int64_t count, std::vector<int32_t>& slot_of,
                        std::vector<int64_t>& rows_of, std::vector<int64_t>& start,
                        std::vector<int64_t>& list) {
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
  std::vector<int64_t> fill(start.begin(), start.end() - 1);
  for (int64_t e = 0; e < count; ++e) list[fill[slot_of[keys[e]]]++] = e;
}

template <typename T>
void update_row(SparseOpt opt, T* p, T* s0, T* s1, const T* g, int64_t d, const OptStep& c) {
  if (opt == SparseOpt::kSgd) {
    for (int64_t k = 0; k < d; ++k) sgd_update(p + k, g[k], c);
  } else if (opt == SparseOpt::kAdagrad) {
    for (int64_t k = 0; k < d; ++k) adagrad_update(p + k, s0 + k, g[k], c);
  } else {
    for (int64_t k = 0; k < d; ++k) adam_update(p + k, s0 + k, s1 + k, g[k], c);
  }
}

template <typename T>
double run_step(const Tables<T>& tb, const Draw& dr, SparseOpt opt, const OptStep& oc,
                const int64_t* users, const int64_t* pos, int64_t r0, int64_t rows,
                uint64_t offset, double l2, StepBuffers<T>& buf) {
  const int64_t d = tb.d, n = dr.n;
  const T inv_bn = T(1) / static_cast<T>(rows * n);
  const T r2 = static_cast<T>(2.0 * l2 / static_cast<double>(rows));
  const int64_t grain = std::max<int64_t>(1, 256 / std::max<int64_t>(1, n * dr.M));
  at::parallel_for(0, rows, grain, [&](int64_t lo, int64_t hi) {
    std::vector<T> ut(tb.w != nullptr ? d : 0), keys(dr.k);
    std::vector<int64_t> cand(dr.sampler == MfSampler::kDns ? n * dr.M : 0), idx(dr.k);
    for (int64_t b = lo; b < hi; ++b)
      row_pass(tb, dr, offset, r0 + b, b, users[r0 + b], pos[r0 + b], inv_bn, r2, buf, ut.data(),
               cand.data(), keys.data(), idx.data());
  });
  double softplus_sum = 0.0, reg_sum = 0.0;
  for (int64_t b = 0; b < rows; ++b) {
    softplus_sum += buf.loss[b];
    reg_sum += buf.reg[b];
  }
  // Step 2. Item entries e = b * (n + 1) + j': j' = 0 the positive, 1 + j negative j.
  std::vector<int64_t> item_keys(rows * (n + 1));
  for (int64_t b = 0; b < rows; ++b) {
    item_keys[b * (n + 1)] = pos[r0 + b];
    for (int64_t j = 0; j < n; ++j) item_keys[b * (n + 1) + 1 + j] = buf.neg[b * n + j];
  }
  list_contributions(users + r0, rows, buf.slot_u, buf.users_of, buf.u_start, buf.u_list);
  list_contributions(item_keys.data(), rows * (n + 1), buf.slot_i, buf.items_of, buf.i_start,
                     buf.i_list);
  // Step 3: items (their gradients read user rows, unchanged until the user pass).
  const T r2t = r2;
  const int64_t ni = static_cast<int64_t>(buf.items_of.size());
  at::parallel_for(0, ni, 64, [&](int64_t lo, int64_t hi) {
    std::vector<T> g(d), ut(d);
    for (int64_t s = lo; s < hi; ++s) {
      const int64_t item = buf.items_of[s];
      T* q = tb.Q + item * d;
      for (int64_t k = 0; k < d; ++k) g[k] = T(0);
      for (int64_t c = buf.i_start[s]; c < buf.i_start[s + 1]; ++c) {
        const int64_t e = buf.i_list[c], b = e / (n + 1), jj = e % (n + 1);
        const T* coef = buf.coef.data() + b * n;
        T a;
        if (jj == 0) {  // the positive: -sum_j c_bj
          a = T(0);
          for (int64_t j = 0; j < n; ++j) a += coef[j];
          a = -a;
        } else {
          a = coef[jj - 1];
        }
        const T* Pu = tb.P + users[r0 + b] * d;
        if (tb.w != nullptr) {
          for (int64_t k = 0; k < d; ++k) g[k] += a * (Pu[k] * tb.w[k]) + r2t * q[k];
        } else {
          for (int64_t k = 0; k < d; ++k) g[k] += a * Pu[k] + r2t * q[k];
        }
      }
      update_row(opt, q, tb.st[1][0] ? tb.st[1][0] + item * d : nullptr,
                 tb.st[1][1] ? tb.st[1][1] + item * d : nullptr, g.data(), d, oc);
    }
  });
  const int64_t nu = static_cast<int64_t>(buf.users_of.size());
  at::parallel_for(0, nu, 64, [&](int64_t lo, int64_t hi) {
    std::vector<T> g(d);
    for (int64_t s = lo; s < hi; ++s) {
      const int64_t user = buf.users_of[s];
      const int64_t c0 = buf.u_start[s], c1 = buf.u_start[s + 1];
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
  for (int64_t user : buf.users_of) buf.slot_u[user] = -1;
  for (int64_t item : buf.items_of) buf.slot_i[item] = -1;
  return softplus_sum / static_cast<double>(rows * n) + l2 * reg_sum / static_cast<double>(rows);
}

at::Tensor mf_bpr_train_cpu(const at::Tensor& user_emb, const at::Tensor& item_emb,
                            const std::optional<at::Tensor>& weight, at::TensorList state,
                            const at::Tensor& indptr_in, const at::Tensor& indices_in,
                            const at::Tensor& users_in, const at::Tensor& pos_in,
                            const std::optional<at::Tensor>& negatives, int64_t batch_size,
                            int64_t num_negatives, c10::string_view sampler,
                            int64_t num_candidates, int64_t top_k,
                            const std::optional<at::Tensor>& alias_prob,
                            const std::optional<at::Tensor>& alias_idx,
                            const std::optional<at::Tensor>& cdf,
                            const std::optional<at::Tensor>& uniforms, int64_t seed,
                            int64_t offset, int64_t offset_stride, double lr, double l2,
                            c10::string_view optimizer, double beta1, double beta2, double eps,
                            int64_t opt_step, bool validate) {
  const MfArgs a = check_mf_bpr_train_args(
      user_emb, item_emb, weight, state, indptr_in, indices_in, users_in, pos_in, negatives,
      batch_size, num_negatives, std::string(sampler), num_candidates, top_k, alias_prob,
      alias_idx, cdf, uniforms, lr, l2, std::string(optimizer), beta1, beta2, eps, opt_step);
  at::Tensor losses = at::empty({a.steps}, user_emb.options().dtype(at::kDouble));
  const int64_t total = users_in.size(0);
  if (total == 0) return losses;
  const at::Tensor indptr = indptr_in.contiguous(), indices = indices_in.contiguous();
  const at::Tensor users = users_in.contiguous(), pos = pos_in.contiguous();
  at::Tensor given, prob_c, alias_c, cdf_c, unif_c;
  Draw dr{};
  dr.sampler = a.sampler;
  dr.ptr = indptr.data_ptr<int64_t>();
  dr.idx = indices.data_ptr<int64_t>();
  dr.n = num_negatives;
  dr.M = a.sampler == MfSampler::kDns ? num_candidates : 1;
  dr.k = a.sampler == MfSampler::kDns ? top_k : 1;
  dr.seed = static_cast<uint64_t>(seed);
  if (negatives.has_value()) {
    given = negatives->contiguous();
    dr.given = given.data_ptr<int64_t>();
  }
  if (alias_prob.has_value()) {
    prob_c = alias_prob->contiguous();
    alias_c = alias_idx->contiguous();
    dr.prob = prob_c.data_ptr<float>();
    dr.alias = alias_c.data_ptr<int64_t>();
  }
  if (cdf.has_value()) {
    cdf_c = cdf->contiguous();
    unif_c = uniforms->contiguous();
    dr.cdf = cdf_c.data_ptr<double>();
    dr.uniforms = unif_c.data_ptr<double>();
  }
  const int64_t* usr = users.data_ptr<int64_t>();
  const int64_t* ps = pos.data_ptr<int64_t>();
  double* out = losses.data_ptr<double>();
  AT_DISPATCH_FLOATING_TYPES(user_emb.scalar_type(), "mf_bpr_train_cpu", [&] {
    Tables<scalar_t> tb{};
    tb.P = user_emb.data_ptr<scalar_t>();
    tb.Q = item_emb.data_ptr<scalar_t>();
    tb.w = weight.has_value() ? weight->data_ptr<scalar_t>() : nullptr;
    for (int64_t t = 0; t < a.num_tables; ++t)
      for (int64_t i = 0; i < a.per_table; ++i)
        tb.st[t][i] = state[t * a.per_table + i].data_ptr<scalar_t>();
    tb.U = user_emb.size(0);
    tb.N = item_emb.size(0);
    tb.d = user_emb.size(1);
    check_rows(tb, dr, usr, ps, total, indices.numel(), validate);
    StepBuffers<scalar_t> buf;
    const int64_t B = std::min(batch_size, total);
    buf.neg.resize(B * dr.n);
    buf.coef.resize(B * dr.n);
    buf.ug.resize(B * tb.d);
    if (tb.w != nullptr) buf.wg.resize(B * tb.d);
    buf.loss.resize(B);
    buf.reg.resize(B);
    buf.slot_u.assign(tb.U, -1);
    buf.slot_i.assign(tb.N, -1);
    for (int64_t s = 0; s < a.steps; ++s) {
      const int64_t r0 = s * batch_size, rows = std::min(batch_size, total - r0);
      const OptStep oc = opt_step_constants(lr, eps, beta1, beta2, opt_step + s + 1);
      const uint64_t off = static_cast<uint64_t>(offset) +
                           static_cast<uint64_t>(s) * static_cast<uint64_t>(offset_stride);
      out[s] = run_step(tb, dr, a.opt, oc, usr, ps, r0, rows, off, l2, buf);
    }
  });
  return losses;
}

}  // namespace
}  // namespace autosample

TORCH_LIBRARY_IMPL(autosample, CPU, m) {
  m.impl("mf_bpr_train", &autosample::mf_bpr_train_cpu);
}
