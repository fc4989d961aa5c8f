// CPU kernels of the GDNS ops over both layouts of gdns_table.h (semantics: ops/reference_gdns.py):
// gdns_lookup / gdns_update / gdns_contains (slot table) and gdns_dense_lookup /
// gdns_dense_update (dense H, G).
//
// The updates apply pairs in row-major order of items, each reading the previous write. Rows of
// different users touch disjoint table rows, so rows are grouped by user (stable, keeping their
// order) and each group is one task: the result equals the sequential rule exactly. One
// template serves both layouts; only the row object (GdnsSlotRow / GdnsDenseRow) differs.
#include <ATen/core/Tensor.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "autosample/checks.h"
#include "autosample/gdns_table.h"
#include "autosample/math.h"

namespace autosample {
namespace {

// Row by row, as the CUDA kernels: users[b] in [0, U) (also when the row has no items), then
// the row's item ids: >= 0 for the slot table (-1 is the empty-slot key, so it must never be
// looked up), in [0, num_items) for the dense table (num_items < 0: no upper bound).
void check_pairs(Op op, const int64_t* users, const int64_t* items, int64_t batch, int64_t cols,
                 int64_t num_users, int64_t num_items) {
  for (int64_t b = 0; b < batch; ++b) {
    if (users[b] < 0 || users[b] >= num_users) {
      const int64_t v[4] = {users[b], b, num_users, 0};
      raise_value_error(op, Err::kUserOutOfRange, v);
    }
    for (int64_t m = 0; m < cols; ++m) {
      const int64_t item = items[b * cols + m];
      if (num_items < 0 && item < 0) {
        const int64_t v[4] = {item, b, m, 0};
        raise_value_error(op, Err::kItemNegative, v);
      }
      if (num_items >= 0 && (item < 0 || item >= num_items)) {
        const int64_t v[4] = {item, b, m, num_items};
        raise_value_error(op, Err::kItemOutOfRange, v);
      }
    }
  }
}

// out[b, m] = row(users[b]).gain(items[b, m]) (or another per-pair read), rows in parallel.
template <typename scalar_t, typename RowGain>
at::Tensor lookup_rows(const at::Tensor& users_c, const at::Tensor& items_c,
                       const at::TensorOptions& options, const RowGain& row_gain) {
  const int64_t batch = items_c.size(0), cols = items_c.size(1);
  at::Tensor out = at::empty({batch, cols}, options);
  if (out.numel() == 0) return out;
  const int64_t* usr = users_c.data_ptr<int64_t>();
  const int64_t* itm = items_c.data_ptr<int64_t>();
  scalar_t* dst = out.data_ptr<scalar_t>();
  const int64_t grain = std::max<int64_t>(1, 2048 / cols);
  at::parallel_for(0, batch, grain, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) row_gain(usr[b], itm + b * cols, cols, dst + b * cols);
  });
  return out;
}

at::Tensor gdns_lookup_cpu(const at::Tensor& slot_keys, const at::Tensor& slot_g,
                           const at::Tensor& users, const at::Tensor& items) {
  check_gdns_lookup_args(slot_keys, slot_g, users, items);
  const at::Tensor keys_c = slot_keys.contiguous(), g_c = slot_g.contiguous();
  const at::Tensor users_c = users.contiguous(), items_c = items.contiguous();
  check_pairs(Op::kGdnsLookup, users_c.data_ptr<int64_t>(), items_c.data_ptr<int64_t>(),
              items.size(0), items.size(1), slot_keys.size(0), -1);
  const int64_t num_slots = slot_keys.size(1);
  at::Tensor out;
  AT_DISPATCH_FLOATING_TYPES(slot_g.scalar_type(), "gdns_lookup_cpu", [&] {
    int64_t* keys = const_cast<int64_t*>(keys_c.data_ptr<int64_t>());
    scalar_t* g = const_cast<scalar_t*>(g_c.data_ptr<scalar_t>());
    out = lookup_rows<scalar_t>(users_c, items_c, slot_g.options(),
                                [&](int64_t u, const int64_t* row, int64_t cols, scalar_t* dst) {
      const GdnsSlotRow<scalar_t> r{keys + u * num_slots, nullptr, g + u * num_slots, num_slots};
      const scalar_t dflt = gdns_default_gain(r.keys, r.g, num_slots);
      for (int64_t m = 0; m < cols; ++m) dst[m] = r.gain(row[m], dflt);
    });
  });
  return out;
}

at::Tensor gdns_contains_cpu(const at::Tensor& slot_keys, const at::Tensor& users,
                             const at::Tensor& items) {
  check_gdns_contains_args(slot_keys, users, items);
  const at::Tensor keys_c = slot_keys.contiguous();
  const at::Tensor users_c = users.contiguous(), items_c = items.contiguous();
  check_pairs(Op::kGdnsContains, users_c.data_ptr<int64_t>(), items_c.data_ptr<int64_t>(),
              items.size(0), items.size(1), slot_keys.size(0), -1);
  const int64_t num_slots = slot_keys.size(1);
  const int64_t* keys = keys_c.data_ptr<int64_t>();
  return lookup_rows<bool>(users_c, items_c, users.options().dtype(at::kBool),
                           [&](int64_t u, const int64_t* row, int64_t cols, bool* dst) {
    for (int64_t m = 0; m < cols; ++m) dst[m] = gdns_find(keys + u * num_slots, num_slots, row[m]) >= 0;
  });
}

at::Tensor gdns_dense_lookup_cpu(const at::Tensor& g, const at::Tensor& users,
                                 const at::Tensor& items) {
  check_gdns_dense_lookup_args(g, users, items);
  const at::Tensor g_c = g.contiguous();
  const at::Tensor users_c = users.contiguous(), items_c = items.contiguous();
  check_pairs(Op::kGdnsDenseLookup, users_c.data_ptr<int64_t>(), items_c.data_ptr<int64_t>(),
              items.size(0), items.size(1), g.size(0), g.size(1));
  const int64_t num_items = g.size(1);
  at::Tensor out;
  AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "gdns_dense_lookup_cpu", [&] {
    scalar_t* gp = const_cast<scalar_t*>(g_c.data_ptr<scalar_t>());
    out = lookup_rows<scalar_t>(users_c, items_c, g.options(),
                                [&](int64_t u, const int64_t* row, int64_t cols, scalar_t* dst) {
      const GdnsDenseRow<scalar_t> r{nullptr, gp + u * num_items};
      for (int64_t m = 0; m < cols; ++m) dst[m] = r.gain(row[m]);
    });
  });
  return out;
}

// The update of both layouts: make_row(u) is user u's row object (GdnsSlotRow / GdnsDenseRow).
template <typename scalar_t, typename MakeRow>
void update_rows(const at::Tensor& users_c, const at::Tensor& items_c, const at::Tensor& pos_c,
                 const at::Tensor& neg_c, double alpha, double eps, const MakeRow& make_row) {
  const int64_t batch = items_c.size(0), cols = items_c.size(1), npos = pos_c.size(1);
  const int64_t* usr = users_c.data_ptr<int64_t>();
  const int64_t* itm = items_c.data_ptr<int64_t>();
  // Rows grouped by user, in their original order within a group: order[group_start[k] ..
  // group_start[k+1]) are the rows of the k-th distinct user.
  std::vector<int64_t> order(batch);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return usr[a] < usr[b]; });
  std::vector<int64_t> group_start{0};
  for (int64_t i = 1; i < batch; ++i) {
    if (usr[order[i]] != usr[order[i - 1]]) group_start.push_back(i);
  }
  group_start.push_back(batch);
  const int64_t num_groups = static_cast<int64_t>(group_start.size()) - 1;
  const scalar_t* pos = pos_c.data_ptr<scalar_t>();
  const scalar_t* neg = neg_c.data_ptr<scalar_t>();
  const scalar_t a = static_cast<scalar_t>(alpha), e = static_cast<scalar_t>(eps);
  at::parallel_for(0, num_groups, 1, [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      const auto row = make_row(usr[order[group_start[k]]]);
      for (int64_t i = group_start[k]; i < group_start[k + 1]; ++i) {
        const int64_t b = order[i];
        for (int64_t n = 0; n < cols; ++n) {
          const scalar_t h_new = gdns_h_new(neg[b * cols + n], pos + b * npos, npos);
          row.apply(itm[b * cols + n], h_new, a, e);
        }
      }
    }
  });
}

void gdns_update_cpu(const at::Tensor& slot_keys, const at::Tensor& slot_h,
                     const at::Tensor& slot_g, const at::Tensor& users, const at::Tensor& items,
                     const at::Tensor& pos_scores, const at::Tensor& neg_scores, double alpha,
                     double eps) {
  check_gdns_update_args(slot_keys, slot_h, slot_g, users, items, pos_scores, neg_scores, alpha,
                         eps);
  const at::Tensor users_c = users.contiguous(), items_c = items.contiguous();
  const at::Tensor pos_c = pos_scores.contiguous(), neg_c = neg_scores.contiguous();
  check_pairs(Op::kGdnsUpdate, users_c.data_ptr<int64_t>(), items_c.data_ptr<int64_t>(),
              items.size(0), items.size(1), slot_keys.size(0), -1);
  if (items.size(0) == 0 || items.size(1) == 0) return;
  const int64_t num_slots = slot_keys.size(1);
  int64_t* keys = slot_keys.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(slot_h.scalar_type(), "gdns_update_cpu", [&] {
    scalar_t* h = slot_h.data_ptr<scalar_t>();
    scalar_t* g = slot_g.data_ptr<scalar_t>();
    update_rows<scalar_t>(users_c, items_c, pos_c, neg_c, alpha, eps, [&](int64_t u) {
      return GdnsSlotRow<scalar_t>{keys + u * num_slots, h + u * num_slots, g + u * num_slots,
                                   num_slots};
    });
  });
}

void gdns_dense_update_cpu(const at::Tensor& h, const at::Tensor& g, const at::Tensor& users,
                           const at::Tensor& items, const at::Tensor& pos_scores,
                           const at::Tensor& neg_scores, double alpha, double eps) {
  check_gdns_dense_update_args(h, g, users, items, pos_scores, neg_scores, alpha, eps);
  const at::Tensor users_c = users.contiguous(), items_c = items.contiguous();
  const at::Tensor pos_c = pos_scores.contiguous(), neg_c = neg_scores.contiguous();
  check_pairs(Op::kGdnsDenseUpdate, users_c.data_ptr<int64_t>(), items_c.data_ptr<int64_t>(),
              items.size(0), items.size(1), h.size(0), h.size(1));
  if (items.size(0) == 0 || items.size(1) == 0) return;
  const int64_t num_items = h.size(1);
  AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "gdns_dense_update_cpu", [&] {
    scalar_t* hp = h.data_ptr<scalar_t>();
    scalar_t* gp = g.data_ptr<scalar_t>();
    update_rows<scalar_t>(users_c, items_c, pos_c, neg_c, alpha, eps, [&](int64_t u) {
      return GdnsDenseRow<scalar_t>{hp + u * num_items, gp + u * num_items};
    });
  });
}

}  // namespace
}  // namespace autosample

TORCH_LIBRARY_IMPL(autosample, CPU, m) {
  m.impl("gdns_lookup", &autosample::gdns_lookup_cpu);
  m.impl("gdns_update", &autosample::gdns_update_cpu);
  m.impl("gdns_contains", &autosample::gdns_contains_cpu);
  m.impl("gdns_dense_lookup", &autosample::gdns_dense_lookup_cpu);
  m.impl("gdns_dense_update", &autosample::gdns_dense_update_cpu);
}
