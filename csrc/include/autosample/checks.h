// Host-side argument validation shared by the CPU and CUDA implementations of each op.
// Checks here depend only on shapes, dtypes, devices and scalars (no data reads); the rules on
// values (ids in range, sorted CSR rows, ...) are in validate.h and their messages in errors.h,
// shared by the kernels of both devices. Every message names the op, the argument and the value.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <optional>

#include "autosample/errors.h"

namespace autosample {

// CPU kernels: raise a value error at once (CUDA kernels report it asynchronously).
[[noreturn]] inline void raise_value_error(Op op, Err code, const int64_t v[4]) {
  C10_THROW_ERROR(Error, format_value_error(op, code, v));
}

inline void check_dim(const char* op, const char* name, const at::Tensor& t, int64_t dim) {
  TORCH_CHECK(t.dim() == dim, "autosample::", op, ": argument '", name, "' must be ", dim,
              "-D, got shape ", t.sizes());
}

inline void check_index(const char* op, const char* name, const at::Tensor& t, int64_t dim) {
  check_dim(op, name, t, dim);
  TORCH_CHECK(t.scalar_type() == at::kLong, "autosample::", op, ": argument '", name,
              "' must be int64, got ", t.scalar_type());
}

inline void check_float(const char* op, const char* name, const at::Tensor& t, int64_t dim) {
  check_dim(op, name, t, dim);
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, "autosample::",
              op, ": argument '", name, "' must be float32 or float64, got ", t.scalar_type());
}

inline void check_same_device(const char* op, const at::Tensor& ref, const char* name,
                              const at::Tensor& t) {
  TORCH_CHECK(t.device() == ref.device(), "autosample::", op, ": argument '", name,
              "' is on ", t.device(), " but the other arguments are on ", ref.device());
}

inline void check_same_dtype(const char* op, const at::Tensor& ref, const char* name,
                             const at::Tensor& t) {
  TORCH_CHECK(t.scalar_type() == ref.scalar_type(), "autosample::", op, ": argument '", name,
              "' has dtype ", t.scalar_type(), " but expected ", ref.scalar_type());
}

inline void check_size(const char* op, const char* name, const at::Tensor& t, int64_t dim,
                       int64_t expected, const char* what) {
  TORCH_CHECK(t.size(dim) == expected, "autosample::", op, ": argument '", name, "' must have ",
              what, " = ", expected, " in dimension ", dim, ", got shape ", t.sizes());
}

inline void check_k(const char* op, int64_t k, int64_t available, const char* what) {
  TORCH_CHECK(k >= 0 && k <= available, "autosample::", op, ": argument 'k' must satisfy 0 <= k <= ",
              what, " (= ", available, "), got k = ", k);
}

inline void check_sample_negatives_args(const at::Tensor& indptr, const at::Tensor& indices,
                                        const at::Tensor& users, int64_t num_items,
                                        int64_t num_samples,
                                        const std::optional<at::Tensor>& alias_prob,
                                        const std::optional<at::Tensor>& alias_idx) {
  const char* op = "sample_negatives";
  check_index(op, "indptr", indptr, 1);
  check_index(op, "indices", indices, 1);
  check_index(op, "users", users, 1);
  check_same_device(op, indptr, "indices", indices);
  check_same_device(op, indptr, "users", users);
  TORCH_CHECK(indptr.size(0) >= 1, "autosample::sample_negatives: argument 'indptr' must have "
              "at least one element (num_users + 1), got shape ", indptr.sizes());
  TORCH_CHECK(num_items > 0, "autosample::sample_negatives: argument 'num_items' must be "
              "positive, got ", num_items);
  TORCH_CHECK(num_items <= (int64_t{1} << 31) - 1, "autosample::sample_negatives: argument "
              "'num_items' must be < 2^31, got ", num_items);
  TORCH_CHECK(num_samples >= 0, "autosample::sample_negatives: argument 'num_samples' must be "
              "non-negative, got ", num_samples);
  constexpr int64_t kMaxCounter = int64_t{1} << 32;  // Philox counter words
  TORCH_CHECK(users.size(0) <= kMaxCounter && num_samples <= kMaxCounter, "autosample::"
              "sample_negatives: batch size (", users.size(0), ") and 'num_samples' (",
              num_samples, ") must be <= 2^32");
  TORCH_CHECK(alias_prob.has_value() == alias_idx.has_value(), "autosample::sample_negatives: "
              "arguments 'alias_prob' and 'alias_idx' must be given together");
  if (alias_prob.has_value()) {
    TORCH_CHECK(alias_prob->dim() == 1 && alias_prob->scalar_type() == at::kFloat,
                "autosample::sample_negatives: argument 'alias_prob' must be a 1-D float32 "
                "tensor, got ", alias_prob->scalar_type(), " of shape ", alias_prob->sizes());
    check_index(op, "alias_idx", *alias_idx, 1);
    check_size(op, "alias_prob", *alias_prob, 0, num_items, "num_items");
    check_size(op, "alias_idx", *alias_idx, 0, num_items, "num_items");
    check_same_device(op, indptr, "alias_prob", *alias_prob);
    check_same_device(op, indptr, "alias_idx", *alias_idx);
  }
}

inline void check_scoring_args(const char* op, const at::Tensor& user_emb,
                               const at::Tensor& item_emb, const at::Tensor& cand) {
  check_float(op, "user_emb", user_emb, 2);
  check_float(op, "item_emb", item_emb, 2);
  check_index(op, "cand", cand, 2);
  check_same_dtype(op, user_emb, "item_emb", item_emb);
  check_same_device(op, user_emb, "item_emb", item_emb);
  check_same_device(op, user_emb, "cand", cand);
  check_size(op, "item_emb", item_emb, 1, user_emb.size(1), "the embedding size d of user_emb");
  check_size(op, "cand", cand, 0, user_emb.size(0), "the batch size B of user_emb");
  TORCH_CHECK(item_emb.size(0) > 0 || cand.numel() == 0, "autosample::", op, ": argument "
              "'item_emb' has no rows but 'cand' holds ", cand.numel(), " item ids");
}

inline void check_select_topk_args(const at::Tensor& keys, int64_t k) {
  check_float("select_topk", "keys", keys, 2);
  check_k("select_topk", k, keys.size(1), "M");
}

// The (user, item) pairs of every GDNS op: users [B], items [B, M], on the device of `ref`.
inline void check_gdns_pairs(const char* op, const at::Tensor& ref, const at::Tensor& users,
                             const at::Tensor& items) {
  check_index(op, "users", users, 1);
  check_index(op, "items", items, 2);
  check_same_device(op, ref, "users", users);
  check_same_device(op, ref, "items", items);
  check_size(op, "items", items, 0, users.size(0), "the batch size B of users");
}

inline void check_gdns_lookup_args(const at::Tensor& slot_keys, const at::Tensor& slot_g,
                                   const at::Tensor& users, const at::Tensor& items) {
  const char* op = "gdns_lookup";
  check_index(op, "slot_keys", slot_keys, 2);
  check_float(op, "slot_g", slot_g, 2);
  check_same_device(op, slot_keys, "slot_g", slot_g);
  TORCH_CHECK(slot_g.sizes() == slot_keys.sizes(), "autosample::gdns_lookup: argument 'slot_g' "
              "must have the shape of slot_keys ", slot_keys.sizes(), ", got ", slot_g.sizes());
  TORCH_CHECK(slot_keys.size(1) >= 1, "autosample::gdns_lookup: argument 'slot_keys' must have "
              "at least one slot per user, got shape ", slot_keys.sizes());
  check_gdns_pairs(op, slot_keys, users, items);
}

inline void check_gdns_contains_args(const at::Tensor& slot_keys, const at::Tensor& users,
                                     const at::Tensor& items) {
  const char* op = "gdns_contains";
  check_index(op, "slot_keys", slot_keys, 2);
  TORCH_CHECK(slot_keys.size(1) >= 1, "autosample::gdns_contains: argument 'slot_keys' must "
              "have at least one slot per user, got shape ", slot_keys.sizes());
  check_gdns_pairs(op, slot_keys, users, items);
}

// What gdns_update and gdns_dense_update check alike: the selected pairs and their scores
// against the state tensor `h` (dtype, device) and the scalars.
inline void check_gdns_pairs_and_scores(const char* op, const at::Tensor& h,
                                        const at::Tensor& users, const at::Tensor& items,
                                        const at::Tensor& pos_scores,
                                        const at::Tensor& neg_scores, double alpha, double eps) {
  check_gdns_pairs(op, h, users, items);
  check_float(op, "pos_scores", pos_scores, 2);
  check_float(op, "neg_scores", neg_scores, 2);
  check_same_dtype(op, h, "pos_scores", pos_scores);
  check_same_dtype(op, h, "neg_scores", neg_scores);
  check_same_device(op, h, "pos_scores", pos_scores);
  check_same_device(op, h, "neg_scores", neg_scores);
  const int64_t batch = users.size(0);
  check_size(op, "pos_scores", pos_scores, 0, batch, "the batch size B of users");
  check_size(op, "neg_scores", neg_scores, 0, batch, "the batch size B of users");
  check_size(op, "neg_scores", neg_scores, 1, items.size(1), "N, the columns of items");
  TORCH_CHECK(batch == 0 || pos_scores.size(1) >= 1, "autosample::", op, ": argument "
              "'pos_scores' must have at least one positive per row, got shape ",
              pos_scores.sizes());
  TORCH_CHECK(alpha >= 0.0 && alpha <= 1.0, "autosample::", op, ": argument 'alpha' must be "
              "in [0, 1], got ", alpha);
  TORCH_CHECK(eps >= 0.0, "autosample::", op, ": argument 'eps' must be >= 0, got ", eps);
}

inline void check_gdns_update_args(const at::Tensor& slot_keys, const at::Tensor& slot_h,
                                   const at::Tensor& slot_g, const at::Tensor& users,
                                   const at::Tensor& items, const at::Tensor& pos_scores,
                                   const at::Tensor& neg_scores, double alpha, double eps) {
  const char* op = "gdns_update";
  check_index(op, "slot_keys", slot_keys, 2);
  check_float(op, "slot_h", slot_h, 2);
  check_float(op, "slot_g", slot_g, 2);
  check_same_dtype(op, slot_h, "slot_g", slot_g);
  check_same_device(op, slot_keys, "slot_h", slot_h);
  check_same_device(op, slot_keys, "slot_g", slot_g);
  TORCH_CHECK(slot_h.sizes() == slot_keys.sizes() && slot_g.sizes() == slot_keys.sizes(),
              "autosample::gdns_update: arguments 'slot_h' ", slot_h.sizes(), " and 'slot_g' ",
              slot_g.sizes(), " must have the shape of slot_keys ", slot_keys.sizes());
  TORCH_CHECK(slot_keys.size(1) >= 1, "autosample::gdns_update: argument 'slot_keys' must have "
              "at least one slot per user, got shape ", slot_keys.sizes());
  TORCH_CHECK(slot_keys.is_contiguous() && slot_h.is_contiguous() && slot_g.is_contiguous(),
              "autosample::gdns_update: arguments 'slot_keys', 'slot_h' and 'slot_g' are "
              "updated in place and must be contiguous");
  check_gdns_pairs_and_scores(op, slot_h, users, items, pos_scores, neg_scores, alpha, eps);
}

// The dense layout: g [U, I] (every user's G of every item).
inline void check_gdns_dense_lookup_args(const at::Tensor& g, const at::Tensor& users,
                                         const at::Tensor& items) {
  check_float("gdns_dense_lookup", "g", g, 2);
  check_gdns_pairs("gdns_dense_lookup", g, users, items);
}

// h, g [U, I].
inline void check_gdns_dense_update_args(const at::Tensor& h, const at::Tensor& g,
                                         const at::Tensor& users, const at::Tensor& items,
                                         const at::Tensor& pos_scores,
                                         const at::Tensor& neg_scores, double alpha, double eps) {
  const char* op = "gdns_dense_update";
  check_float(op, "h", h, 2);
  check_float(op, "g", g, 2);
  check_same_dtype(op, h, "g", g);
  check_same_device(op, h, "g", g);
  TORCH_CHECK(g.sizes() == h.sizes(), "autosample::gdns_dense_update: argument 'g' ", g.sizes(),
              " must have the shape of 'h' ", h.sizes());
  TORCH_CHECK(h.is_contiguous() && g.is_contiguous(), "autosample::gdns_dense_update: "
              "arguments 'h' and 'g' are updated in place and must be contiguous");
  check_gdns_pairs_and_scores(op, h, users, items, pos_scores, neg_scores, alpha, eps);
}

inline void check_rank_topk_args(const at::Tensor& user_emb, const at::Tensor& item_emb,
                                 const at::Tensor& excl_indptr, const at::Tensor& excl_indices,
                                 int64_t k) {
  const char* op = "rank_topk";
  check_float(op, "user_emb", user_emb, 2);
  check_float(op, "item_emb", item_emb, 2);
  check_index(op, "excl_indptr", excl_indptr, 1);
  check_index(op, "excl_indices", excl_indices, 1);
  check_same_dtype(op, user_emb, "item_emb", item_emb);
  check_same_device(op, user_emb, "item_emb", item_emb);
  check_same_device(op, user_emb, "excl_indptr", excl_indptr);
  check_same_device(op, user_emb, "excl_indices", excl_indices);
  check_size(op, "item_emb", item_emb, 1, user_emb.size(1), "the embedding size d of user_emb");
  check_size(op, "excl_indptr", excl_indptr, 0, user_emb.size(0) + 1, "B + 1");
  check_k(op, k, item_emb.size(0), "N, the number of items");
}

}  // namespace autosample
