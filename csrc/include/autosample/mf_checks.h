// Host-side argument checks of mf_bpr_train (the fused MF / GMF training step), shared by the
// CPU and CUDA implementations: shapes, dtypes, devices, the sampler / optimiser names and the
// hyper-parameters (no data reads). Value rules (ids in range, CSR rows) are validate.h's, their
// messages errors.h's.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <optional>
#include <string>

#include "autosample/bpr.h"
#include "autosample/checks.h"
#include "autosample/mf_step.h"

namespace autosample {

// The operator's arguments, as the kernels of both devices receive them.
struct MfCall {
  const at::Tensor& user_emb;
  const at::Tensor& item_emb;
  const std::optional<at::Tensor>& weight;
  at::TensorList state;
  const at::Tensor& indptr;
  const at::Tensor& indices;
  const at::Tensor& users;
  const at::Tensor& pos_items;
  const std::optional<at::Tensor>& negatives;
  int64_t batch_size;
  int64_t num_negatives;
  c10::string_view sampler;
  int64_t num_candidates;
  int64_t top_k;
  const std::optional<at::Tensor>& alias_prob;
  const std::optional<at::Tensor>& alias_idx;
  const std::optional<at::Tensor>& cdf;
  const std::optional<at::Tensor>& uniforms;
  int64_t seed;
  int64_t offset;
  int64_t offset_stride;
  double lr;
  double l2;
  c10::string_view optimizer;
  double beta1;
  double beta2;
  double eps;
  int64_t opt_step;
  bool validate;
};

// The kernel of a device in the operator's signature: its arguments, as one MfCall, to `impl`.
template <at::Tensor (*impl)(const MfCall&)>
at::Tensor mf_bpr_train_entry(
    const at::Tensor& user_emb, const at::Tensor& item_emb, const std::optional<at::Tensor>& weight,
    at::TensorList state, const at::Tensor& indptr, const at::Tensor& indices,
    const at::Tensor& users, const at::Tensor& pos_items, const std::optional<at::Tensor>& negatives,
    int64_t batch_size, int64_t num_negatives, c10::string_view sampler, int64_t num_candidates,
    int64_t top_k, const std::optional<at::Tensor>& alias_prob,
    const std::optional<at::Tensor>& alias_idx, const std::optional<at::Tensor>& cdf,
    const std::optional<at::Tensor>& uniforms, int64_t seed, int64_t offset,
    int64_t offset_stride, double lr, double l2, c10::string_view optimizer, double beta1,
    double beta2, double eps, int64_t opt_step, bool validate) {
  return impl(MfCall{user_emb,  item_emb,    weight,    state,         indptr,    indices,
                     users,     pos_items,   negatives, batch_size,    num_negatives,
                     sampler,   num_candidates, top_k,  alias_prob,    alias_idx, cdf,
                     uniforms,  seed,        offset,    offset_stride, lr,        l2,
                     optimizer, beta1,       beta2,     eps,           opt_step,  validate});
}

// The arguments of one call, checked, with the sampler and optimiser parsed.
struct MfArgs {
  MfSampler sampler;
  SparseOpt opt;
  int64_t num_tables;  // 2 (MF) or 3 (GMF: the weight vector is a one-row table)
  int64_t per_table;   // state tensors per table: 0 (sgd), 1 (adagrad), 2 (adam)
  int64_t steps;       // ceil(T / batch_size)
};

inline MfSampler parse_mf_sampler(const std::string& s) {
  if (s == "rns") return MfSampler::kRns;
  if (s == "pns") return MfSampler::kPns;
  if (s == "dns") return MfSampler::kDns;
  if (s == "given") return MfSampler::kGiven;
  TORCH_CHECK(false, "autosample::mf_bpr_train: argument 'sampler' must be one of rns, pns, dns, "
              "given, got '", s, "'");
}

inline SparseOpt parse_sparse_opt(const std::string& s) {
  if (s == "sgd") return SparseOpt::kSgd;
  if (s == "adagrad") return SparseOpt::kAdagrad;
  if (s == "adam") return SparseOpt::kAdam;
  TORCH_CHECK(false, "autosample::mf_bpr_train: argument 'optimizer' must be one of sgd, adagrad, "
              "adam, got '", s, "'");
}

// A tensor updated in place: contiguous, on the tables' device, with their dtype.
inline void check_in_place(const char* name, const at::Tensor& ref, const at::Tensor& t) {
  const char* op = "mf_bpr_train";
  check_same_device(op, ref, name, t);
  check_same_dtype(op, ref, name, t);
  TORCH_CHECK(t.is_contiguous(), "autosample::mf_bpr_train: argument '", name,
              "' is updated in place and must be contiguous");
}

inline MfArgs check_mf_bpr_train_args(const MfCall& c) {
  const at::Tensor& user_emb = c.user_emb;
  const at::Tensor& item_emb = c.item_emb;
  const std::optional<at::Tensor>& weight = c.weight;
  const at::TensorList state = c.state;
  const at::Tensor &indptr = c.indptr, &indices = c.indices, &users = c.users;
  const at::Tensor& pos_items = c.pos_items;
  const std::optional<at::Tensor>&negatives = c.negatives, &alias_prob = c.alias_prob,
      &alias_idx = c.alias_idx, &cdf = c.cdf, &uniforms = c.uniforms;
  const int64_t batch_size = c.batch_size, num_negatives = c.num_negatives,
                num_candidates = c.num_candidates, top_k = c.top_k;
  const std::string sampler(c.sampler), optimizer(c.optimizer);
  const double lr = c.lr, l2 = c.l2, beta1 = c.beta1, beta2 = c.beta2, eps = c.eps;
  const int64_t opt_step = c.opt_step;
  const char* op = "mf_bpr_train";
  MfArgs a{};
  a.sampler = parse_mf_sampler(sampler);
  a.opt = parse_sparse_opt(optimizer);
  check_float(op, "user_emb", user_emb, 2);
  check_float(op, "item_emb", item_emb, 2);
  check_in_place("user_emb", user_emb, user_emb);
  check_in_place("item_emb", user_emb, item_emb);
  check_size(op, "item_emb", item_emb, 1, user_emb.size(1), "the embedding size d of user_emb");
  const int64_t U = user_emb.size(0), N = item_emb.size(0), d = user_emb.size(1);
  TORCH_CHECK(U >= 1 && N >= 1 && d >= 1, "autosample::mf_bpr_train: arguments 'user_emb' ",
              user_emb.sizes(), " and 'item_emb' ", item_emb.sizes(), " must be non-empty");
  TORCH_CHECK(N <= (int64_t{1} << 31) - 1, "autosample::mf_bpr_train: argument 'item_emb' must "
              "have < 2^31 rows, got ", N);
  a.num_tables = 2;
  if (weight.has_value()) {
    check_float(op, "weight", *weight, 1);
    check_in_place("weight", user_emb, *weight);
    check_size(op, "weight", *weight, 0, d, "the embedding size d of user_emb");
    a.num_tables = 3;
  }
  a.per_table = a.opt == SparseOpt::kSgd ? 0 : (a.opt == SparseOpt::kAdagrad ? 1 : 2);
  TORCH_CHECK(static_cast<int64_t>(state.size()) == a.num_tables * a.per_table,
              "autosample::mf_bpr_train: argument 'state' must hold ", a.per_table,
              " tensor(s) per table for optimizer '", optimizer, "' (", a.num_tables,
              " tables), got ", state.size());
  for (size_t i = 0; i < state.size(); ++i) {
    const at::Tensor& table = i / a.per_table == 0 ? user_emb
                              : (i / a.per_table == 1 ? item_emb : *weight);
    const std::string name = "state[" + std::to_string(i) + "]";
    check_in_place(name.c_str(), user_emb, state[i]);
    TORCH_CHECK(state[i].sizes() == table.sizes(), "autosample::mf_bpr_train: argument '", name,
                "' must have the shape of its table ", table.sizes(), ", got ", state[i].sizes());
  }
  check_index(op, "indptr", indptr, 1);
  check_index(op, "indices", indices, 1);
  check_index(op, "users", users, 1);
  check_index(op, "pos_items", pos_items, 1);
  for (const auto& [name, t] : {std::pair<const char*, const at::Tensor*>{"indptr", &indptr},
                                {"indices", &indices}, {"users", &users}, {"pos_items", &pos_items}})
    check_same_device(op, user_emb, name, *t);
  check_size(op, "indptr", indptr, 0, U + 1, "num_users + 1 (the rows of user_emb + 1)");
  const int64_t T = users.size(0);
  check_size(op, "pos_items", pos_items, 0, T, "the length of users");
  TORCH_CHECK(batch_size >= 1, "autosample::mf_bpr_train: argument 'batch_size' must be >= 1, got ",
              batch_size);
  TORCH_CHECK(num_negatives >= 1, "autosample::mf_bpr_train: argument 'num_negatives' must be >= "
              "1, got ", num_negatives);
  a.steps = (T + batch_size - 1) / batch_size;
  constexpr int64_t kMaxCounter = int64_t{1} << 32;  // Philox counter words
  TORCH_CHECK(std::min(batch_size, T) <= kMaxCounter, "autosample::mf_bpr_train: argument "
              "'batch_size' must be <= 2^32, got ", batch_size);
  TORCH_CHECK(negatives.has_value() == (a.sampler == MfSampler::kGiven), "autosample::mf_bpr_train: "
              "argument 'negatives' must be given exactly when sampler is 'given'");
  if (negatives.has_value()) {
    check_index(op, "negatives", *negatives, 2);
    check_same_device(op, user_emb, "negatives", *negatives);
    check_size(op, "negatives", *negatives, 0, T, "the length of users");
    check_size(op, "negatives", *negatives, 1, num_negatives, "num_negatives");
  }
  TORCH_CHECK(alias_prob.has_value() == (a.sampler == MfSampler::kPns) &&
                  alias_idx.has_value() == alias_prob.has_value(),
              "autosample::mf_bpr_train: arguments 'alias_prob' and 'alias_idx' must be given "
              "exactly when sampler is 'pns'");
  if (alias_prob.has_value()) {
    TORCH_CHECK(alias_prob->dim() == 1 && alias_prob->scalar_type() == at::kFloat,
                "autosample::mf_bpr_train: argument 'alias_prob' must be a 1-D float32 tensor, "
                "got ", alias_prob->scalar_type(), " of shape ", alias_prob->sizes());
    check_index(op, "alias_idx", *alias_idx, 1);
    check_size(op, "alias_prob", *alias_prob, 0, N, "num_items (the rows of item_emb)");
    check_size(op, "alias_idx", *alias_idx, 0, N, "num_items (the rows of item_emb)");
    check_same_device(op, user_emb, "alias_prob", *alias_prob);
    check_same_device(op, user_emb, "alias_idx", *alias_idx);
  }
  const bool dns = a.sampler == MfSampler::kDns;
  if (dns) {
    TORCH_CHECK(num_candidates >= 1, "autosample::mf_bpr_train: argument 'num_candidates' must be "
                ">= 1, got ", num_candidates);
    TORCH_CHECK(num_negatives * num_candidates <= kMaxCounter, "autosample::mf_bpr_train: "
                "num_negatives * num_candidates must be <= 2^32");
    TORCH_CHECK(top_k >= 1 && top_k <= num_candidates, "autosample::mf_bpr_train: argument "
                "'top_k' must satisfy 1 <= top_k <= num_candidates (= ", num_candidates,
                "), got top_k = ", top_k);
  }
  const bool draws = dns && top_k > 1;
  TORCH_CHECK(cdf.has_value() == draws && uniforms.has_value() == draws,
              "autosample::mf_bpr_train: arguments 'cdf' and 'uniforms' must be given exactly "
              "when sampler is 'dns' with top_k > 1");
  if (draws) {
    TORCH_CHECK(cdf->dim() == 1 && cdf->scalar_type() == at::kDouble && cdf->size(0) == top_k,
                "autosample::mf_bpr_train: argument 'cdf' must be a float64 tensor of shape [",
                top_k, "] (top_k), got ", cdf->scalar_type(), " of shape ", cdf->sizes());
    TORCH_CHECK(uniforms->dim() == 2 && uniforms->scalar_type() == at::kDouble &&
                    uniforms->size(0) == T && uniforms->size(1) == num_negatives,
                "autosample::mf_bpr_train: argument 'uniforms' must be a float64 tensor of shape [",
                T, ", ", num_negatives, "], got ", uniforms->scalar_type(), " of shape ",
                uniforms->sizes());
    check_same_device(op, user_emb, "cdf", *cdf);
    check_same_device(op, user_emb, "uniforms", *uniforms);
  }
  TORCH_CHECK(lr > 0.0, "autosample::mf_bpr_train: argument 'lr' must be > 0, got ", lr);
  TORCH_CHECK(l2 >= 0.0, "autosample::mf_bpr_train: argument 'l2' must be >= 0, got ", l2);
  TORCH_CHECK(eps >= 0.0, "autosample::mf_bpr_train: argument 'eps' must be >= 0, got ", eps);
  TORCH_CHECK(beta1 >= 0.0 && beta1 < 1.0 && beta2 >= 0.0 && beta2 < 1.0,
              "autosample::mf_bpr_train: arguments 'beta1' and 'beta2' must lie in [0, 1), got ",
              beta1, " and ", beta2);
  TORCH_CHECK(opt_step >= 0, "autosample::mf_bpr_train: argument 'opt_step' must be >= 0, got ",
              opt_step);
  return a;
}

// The inputs of a call made contiguous (kept alive here) and their raw view.
struct MfInputs {
  at::Tensor indptr, indices, users, pos, given, prob, alias, cdf, uniforms;
  MfDraw draw{};
};

inline MfInputs prepare_mf_inputs(const MfCall& c, const MfArgs& a) {
  MfInputs in;
  in.indptr = c.indptr.contiguous();
  in.indices = c.indices.contiguous();
  in.users = c.users.contiguous();
  in.pos = c.pos_items.contiguous();
  MfDraw& dr = in.draw;
  dr.sampler = a.sampler;
  dr.ptr = in.indptr.data_ptr<int64_t>();
  dr.idx = in.indices.data_ptr<int64_t>();
  dr.nnz = in.indices.numel();
  dr.n = c.num_negatives;
  dr.M = a.sampler == MfSampler::kDns ? c.num_candidates : 1;
  dr.k = a.sampler == MfSampler::kDns ? c.top_k : 1;
  dr.seed = static_cast<uint64_t>(c.seed);
  if (c.negatives.has_value()) {
    in.given = c.negatives->contiguous();
    dr.given = in.given.data_ptr<int64_t>();
  }
  if (c.alias_prob.has_value()) {
    in.prob = c.alias_prob->contiguous();
    in.alias = c.alias_idx->contiguous();
    dr.prob = in.prob.data_ptr<float>();
    dr.alias = in.alias.data_ptr<int64_t>();
  }
  if (c.cdf.has_value()) {
    in.cdf = c.cdf->contiguous();
    in.uniforms = c.uniforms->contiguous();
    dr.cdf = in.cdf.data_ptr<double>();
    dr.uniforms = in.uniforms.data_ptr<double>();
  }
  return in;
}

// The tables and their optimiser state (contiguous: checked), raw.
template <typename T>
MfTables<T> mf_tables(const MfCall& c, const MfArgs& a) {
  MfTables<T> tb{};
  tb.P = c.user_emb.data_ptr<T>();
  tb.Q = c.item_emb.data_ptr<T>();
  tb.w = c.weight.has_value() ? c.weight->data_ptr<T>() : nullptr;
  for (int64_t t = 0; t < a.num_tables; ++t)
    for (int64_t i = 0; i < a.per_table; ++i) tb.st[t][i] = c.state[t * a.per_table + i].data_ptr<T>();
  tb.U = c.user_emb.size(0);
  tb.N = c.item_emb.size(0);
  tb.d = c.user_emb.size(1);
  return tb;
}

}  // namespace autosample
