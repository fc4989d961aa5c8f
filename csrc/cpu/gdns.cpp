// CPU kernels of autosample::gdns_lookup and autosample::gdns_update (DESIGN.md §3; semantics:
// ops/reference.py). The slot table layout, probing and eviction live in gdns_table.h.
//
// gdns_update applies pairs in row-major order of items, each reading the previous write. Rows
// of different users touch disjoint table rows, so rows are grouped by user (stable, keeping
// their order) and each group is one task: the result equals the sequential rule exactly.
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
// the row's item ids >= 0 (-1 is the empty-slot key, so it must never be looked up).
void check_pairs(Op op, const int64_t* users, const int64_t* items, int64_t batch, int64_t cols,
                 int64_t num_users) {
  for (int64_t b = 0; b < batch; ++b) {
    if (users[b] < 0 || users[b] >= num_users) {
      const int64_t v[4] = {users[b], b, num_users, 0};
      raise_value_error(op, Err::kUserOutOfRange, v);
    }
    for (int64_t m = 0; m < cols; ++m) {
      if (items[b * cols + m] < 0) {
        const int64_t v[4] = {items[b * cols + m], b, m, 0};
        raise_value_error(op, Err::kItemNegative, v);
      }
    }
  }
}

at::Tensor gdns_lookup_cpu(const at::Tensor& slot_keys, const at::Tensor& slot_g,
                           const at::Tensor& users, const at::Tensor& items) {
  check_gdns_lookup_args(slot_keys, slot_g, users, items);
  const at::Tensor keys_c = slot_keys.contiguous(), g_c = slot_g.contiguous();
  const at::Tensor users_c = users.contiguous(), items_c = items.contiguous();
  const int64_t batch = items.size(0), cols = items.size(1), num_slots = slot_keys.size(1);
  const int64_t* usr = users_c.data_ptr<int64_t>();
  const int64_t* itm = items_c.data_ptr<int64_t>();
  check_pairs(Op::kGdnsLookup, usr, itm, batch, cols, slot_keys.size(0));
  at::Tensor out = at::empty({batch, cols}, slot_g.options());
  if (out.numel() == 0) return out;
  const int64_t* keys = keys_c.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(slot_g.scalar_type(), "gdns_lookup_cpu", [&] {
    const scalar_t* g = g_c.data_ptr<scalar_t>();
    scalar_t* dst = out.data_ptr<scalar_t>();
    const int64_t grain = std::max<int64_t>(1, 2048 / cols);
    at::parallel_for(0, batch, grain, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t base = usr[b] * num_slots;
        for (int64_t m = 0; m < cols; ++m) {
          const int64_t s = gdns_find(keys + base, num_slots, itm[b * cols + m]);
          dst[b * cols + m] = s >= 0 ? g[base + s] : scalar_t(1);
        }
      }
    });
  });
  return out;
}

void gdns_update_cpu(const at::Tensor& slot_keys, const at::Tensor& slot_h,
                     const at::Tensor& slot_g, const at::Tensor& users, const at::Tensor& items,
                     const at::Tensor& pos_scores, const at::Tensor& neg_scores, double alpha,
                     double eps) {
  check_gdns_update_args(slot_keys, slot_h, slot_g, users, items, pos_scores, neg_scores, alpha,
                         eps);
  const at::Tensor users_c = users.contiguous(), items_c = items.contiguous();
  const at::Tensor pos_c = pos_scores.contiguous(), neg_c = neg_scores.contiguous();
  const int64_t batch = items.size(0), cols = items.size(1), npos = pos_scores.size(1);
  const int64_t num_slots = slot_keys.size(1);
  const int64_t* usr = users_c.data_ptr<int64_t>();
  const int64_t* itm = items_c.data_ptr<int64_t>();
  check_pairs(Op::kGdnsUpdate, usr, itm, batch, cols, slot_keys.size(0));
  if (batch == 0 || cols == 0) return;

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

  int64_t* keys = slot_keys.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(slot_h.scalar_type(), "gdns_update_cpu", [&] {
    scalar_t* h = slot_h.data_ptr<scalar_t>();
    scalar_t* g = slot_g.data_ptr<scalar_t>();
    const scalar_t* pos = pos_c.data_ptr<scalar_t>();
    const scalar_t* neg = neg_c.data_ptr<scalar_t>();
    const scalar_t a = static_cast<scalar_t>(alpha), e = static_cast<scalar_t>(eps);
    at::parallel_for(0, num_groups, 1, [&](int64_t k0, int64_t k1) {
      for (int64_t k = k0; k < k1; ++k) {
        for (int64_t i = group_start[k]; i < group_start[k + 1]; ++i) {
          const int64_t b = order[i];
          const int64_t base = usr[b] * num_slots;
          const scalar_t* pos_row = pos + b * npos;
          for (int64_t n = 0; n < cols; ++n) {
            // H_new = mean_p sigmoid(neg - pos_p), accumulated in double.
            const scalar_t x = neg[b * cols + n];
            double acc = 0.0;
            for (int64_t p = 0; p < npos; ++p) acc += sigmoid<scalar_t>(x - pos_row[p]);
            const scalar_t h_new = static_cast<scalar_t>(acc / static_cast<double>(npos));
            const int64_t item = itm[b * cols + n];
            bool found = false;
            const int64_t s = base + gdns_find_or_claim(keys + base, g + base, num_slots, item,
                                                        &found);
            const scalar_t h_old = found ? h[s] : scalar_t(1), g_old = found ? g[s] : scalar_t(1);
            keys[s] = item;
            g[s] = gdns_next_gain(g_old, h_old, h_new, a, e);
            h[s] = h_new;
          }
        }
      }
    });
  });
}

}  // namespace
}  // namespace autosample

TORCH_LIBRARY_IMPL(autosample, CPU, m) {
  m.impl("gdns_lookup", &autosample::gdns_lookup_cpu);
  m.impl("gdns_update", &autosample::gdns_update_cpu);
}
