// rank_topk (CPU): per row b, the k best items over all N, excluding the sorted CSR list
// excl_indices[excl_indptr[b]:excl_indptr[b+1]]. Scores are computed in (user block x item
// block) tiles with at::mm into a per-task scratch buffer (no [B, N] matrix), then each tile row
// is scanned in increasing item id with the running top-k of stream_topk.h, walking the row's
// exclusion list alongside (rows of many exclusions: see kMarkFrom). Order: topk.h (ties to the
// smaller item id).
#include <ATen/core/Tensor.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/mm.h>
#include <torch/library.h>

#include <algorithm>
#include <limits>
#include <tuple>
#include <vector>

#include "autosample/checks.h"
#include "autosample/validate.h"
#include "stream_topk.h"

namespace autosample {
namespace {

// Tile: up to kUserBlock users x kItemBlock items of scores (fits in L2 for float32).
constexpr int64_t kUserBlock = 256;
constexpr int64_t kItemBlock = 256;

// Row by row (validate.h's rules, errors.h's messages, as the CUDA kernel): the span within
// [0, nnz] (excl_indptr need not start at 0), [the entries: sorted, unique, in [0, N); skipped
// when validate is false], then k <= N - |row|.
void check_exclusions(const int64_t* ptr, const int64_t* ex, int64_t B, int64_t nnz, int64_t N,
                      int64_t k, bool validate) {
  for (int64_t b = 0; b < B; ++b) {
    ValueError e = check_csr_row(ptr + b, ex, nnz, N, b, validate);
    if (!e && N - (ptr[b + 1] - ptr[b]) < k)
      e = value_error(Err::kRankK, k, N - (ptr[b + 1] - ptr[b]), b);
    if (e) raise_value_error(Op::kRankTopk, e.code, e.v);
  }
}

// Rows of many exclusions split a row into short runs, too short for offer_span's 16-key
// chunks; such rows are scanned whole, their excluded items' scores set to -inf in the tile
// first. The result is the same unless an excluded item is among the row's k best, which needs
// -inf among those k (fewer than k items above -inf, or a tie at -inf): rank_block reports such
// rows, and they are ranked again with the walk.
constexpr int64_t kMarkFrom = 4;  // exclusions per kItemBlock items from which a row is marked

inline bool excluded(const int64_t* ex, int64_t begin, int64_t end, int64_t item) {
  return std::binary_search(ex + begin, ex + end, item);
}

// Ranks users b0 .. b0 + nb - 1; `walk_only`: never mark. Returns whether a marked row needs
// the walk (the caller ranks the block again with walk_only).
template <typename T>
bool rank_block(const at::Tensor& user_emb, const at::Tensor& item_emb, at::Tensor& tile,
                const int64_t* ptr, const int64_t* ex, int64_t b0, int64_t nb, int64_t k,
                bool walk_only, T* out_scores, int64_t* out_items) {
  const int64_t N = item_emb.size(0);
  std::vector<cpu::StreamTopK<T>> tops;
  tops.reserve(nb);
  std::vector<int64_t> cursor(nb);
  std::vector<char> marked(nb);
  for (int64_t r = 0; r < nb; ++r) {
    tops.emplace_back(out_scores + (b0 + r) * k, out_items + (b0 + r) * k, k);
    cursor[r] = ptr[b0 + r];
    marked[r] = !walk_only && (ptr[b0 + r + 1] - ptr[b0 + r]) * kItemBlock >= kMarkFrom * N;
  }
  const at::Tensor users = user_emb.narrow(0, b0, nb);
  T* t = tile.data_ptr<T>();
  const int64_t ld = tile.stride(0);
  for (int64_t j0 = 0; j0 < N; j0 += kItemBlock) {
    const int64_t jend = std::min(N, j0 + kItemBlock);
    at::Tensor scores = tile.narrow(0, 0, nb).narrow(1, 0, jend - j0);
    at::mm_out(scores, users, item_emb.narrow(0, j0, jend - j0).t());
    for (int64_t r = 0; r < nb; ++r) {
      T* row = t + r * ld - j0;  // row[j] is the score of item j
      cpu::StreamTopK<T>& top = tops[r];
      int64_t e = cursor[r];
      const int64_t eend = ptr[b0 + r + 1];
      if (marked[r]) {
        for (; e < eend && ex[e] < jend; ++e) row[ex[e]] = -std::numeric_limits<T>::infinity();
        top.offer_span(row, j0, jend);
        cursor[r] = e;
        continue;
      }
      int64_t j = j0;
      while (j < jend) {
        const bool skip = e < eend && ex[e] < jend;  // next excluded item lies in this tile
        const int64_t stop = skip ? ex[e] : jend;
        top.offer_span(row, j, stop);
        j = stop;
        if (skip) {
          ++j;
          ++e;
        }
      }
      cursor[r] = e;
    }
  }
  bool again = false;
  for (int64_t r = 0; r < nb; ++r) {
    const int64_t held = tops[r].finish();
    if (!marked[r]) continue;
    const T* key = out_scores + (b0 + r) * k;
    const int64_t* item = out_items + (b0 + r) * k;
    for (int64_t i = held - 1; i >= 0 && key[i] == -std::numeric_limits<T>::infinity(); --i)
      again |= excluded(ex, ptr[b0 + r], ptr[b0 + r + 1], item[i]);
  }
  return again;
}

std::tuple<at::Tensor, at::Tensor> rank_topk_cpu(const at::Tensor& user_emb_in,
                                                 const at::Tensor& item_emb_in,
                                                 const at::Tensor& excl_indptr_in,
                                                 const at::Tensor& excl_indices_in, int64_t k,
                                                 bool validate) {
  check_rank_topk_args(user_emb_in, item_emb_in, excl_indptr_in, excl_indices_in, k);
  // detached: the tiles are computed with at::mm_out, which refuses inputs requiring grad
  const at::Tensor user_emb = user_emb_in.detach().contiguous();
  const at::Tensor item_emb = item_emb_in.detach().contiguous();
  const at::Tensor excl_indptr = excl_indptr_in.contiguous();
  const at::Tensor excl_indices = excl_indices_in.contiguous();
  const int64_t B = user_emb.size(0), N = item_emb.size(0);
  const int64_t* ptr = excl_indptr.data_ptr<int64_t>();
  const int64_t* ex = excl_indices.data_ptr<int64_t>();
  check_exclusions(ptr, ex, B, excl_indices.numel(), N, k, validate);
  at::Tensor scores = at::empty({B, k}, user_emb.options());
  at::Tensor items = at::empty({B, k}, excl_indptr.options());
  if (B == 0 || k == 0) return {scores, items};
  // Enough blocks for every thread, at most kUserBlock users each.
  const int64_t threads = at::get_num_threads();
  const int64_t ub = std::max<int64_t>(1, std::min(kUserBlock, (B + threads - 1) / threads));
  const int64_t nblocks = (B + ub - 1) / ub;
  AT_DISPATCH_FLOATING_TYPES(user_emb.scalar_type(), "rank_topk_cpu", [&] {
    scalar_t* os = scores.data_ptr<scalar_t>();
    int64_t* oi = items.data_ptr<int64_t>();
    at::parallel_for(0, nblocks, 1, [&](int64_t lo, int64_t hi) {
      at::Tensor tile = at::empty({ub, std::min(N, kItemBlock)}, user_emb.options());
      for (int64_t blk = lo; blk < hi; ++blk) {
        const int64_t b0 = blk * ub;
        const int64_t nb = std::min(ub, B - b0);
        if (rank_block<scalar_t>(user_emb, item_emb, tile, ptr, ex, b0, nb, k, false, os, oi))
          rank_block<scalar_t>(user_emb, item_emb, tile, ptr, ex, b0, nb, k, true, os, oi);
      }
    });
  });
  return {scores, items};
}

}  // namespace

TORCH_LIBRARY_IMPL(autosample, CPU, m) { m.impl("rank_topk", &rank_topk_cpu); }

}  // namespace autosample
