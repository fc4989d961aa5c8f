// rank_topk on CUDA: for each user row b, the k best of all N items (canonical order, ties to
// the smaller item id) excluding excl_indices[excl_indptr[b]:excl_indptr[b+1]], no [B, N]
// scores (k <= 128; larger k: see rank_topk_sorted below).
//
// Grid (user tiles of kTU rows) x (item splits). A block streams its split's items in blocks of
// kTI: user and item chunks of kDC dims are staged (transposed) in shared memory, each lane
// accumulates a 4 users x 4 items register tile (warp w: users 4w..4w+3, all kTI items), and
// offers it to its users' register top-k lists (warp_topk.cuh). Exclusions: each (warp, user)
// keeps a cursor into the user's sorted excluded list and merges the entries that fall in the
// item block into a bit mask (loads, ballots and an OR-reduction); no score tile is stored.
// With several splits, each writes its partial list and a merge kernel (same order) reduces them;
// the split count fills whole waves of resident blocks (choose_splits). Staging is
// bank-conflict-free (stage(), kPad) and the register cap gives 3 blocks per SM for k <= 32.
// Validation (row spans within [0, nnz], [excluded ids in [0, N), sorted and unique: skipped
// when validate is false], k <= N - |excl|) runs first on the device and reports asynchronously (cuda_utils.cuh); the
// ranking kernels then treat a row with a bad span as empty and never read out of bounds, and
// positions no valid item filled are returned as item 0 with score -inf.
#include <ATen/ops/cat.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/gather.h>
#include <ATen/ops/matmul.h>
#include <ATen/ops/sort.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include "autosample/checks.h"
#include "autosample/csr.h"
#include "autosample/csr_check.cuh"
#include "autosample/cuda_utils.cuh"
#include "autosample/warp_topk.cuh"

namespace autosample {
namespace cuda {
namespace {

constexpr int kTU = 32, kTI = 128, kDC = 32, kThreads = 256;
constexpr int kUsersPerWarp = kTU / (kThreads / kWarp);  // 4
// Blocks per SM the register budget must allow (ptxas -v, sm_90, no cap: float 112 / 120 / 142
// registers for KW = 1 / 2 / 4, double 148 / 162 / 188). float KW = 1 (k <= 32: evaluation,
// DNS) is capped at 80 registers, 3 blocks per SM instead of 2 (12 bytes of spill stores, 4 of
// loads); the others at 128 where that spills nothing.
template <typename T, int KW>
constexpr int kRankMinBlocks = sizeof(T) == 4 ? (KW == 1 ? 3 : 2) : (KW == 1 ? 2 : 1);

// Shared-memory row padding (elements): rows of kTU and kTI elements plus kPad<T> keep every
// row 16-byte aligned (for the 16-byte loads of load4) and make the staging stores of stage()
// conflict-free: float, stride = 4 words mod 32, so the 32 stores of a warp (8 d-rows x 4
// columns) hit banks 4 * (d % 8) + column, all distinct; double, stride = 2 doubles mod 16,
// distinct bank pairs within each half-warp.
template <typename T> constexpr int kPad = sizeof(T) == 4 ? 4 : 2;
constexpr int32_t kNoItem = std::numeric_limits<int32_t>::max();
constexpr int64_t kPastEnd = std::numeric_limits<int64_t>::max();  // no excluded entry left

// One warp per row b: span, entries (validate.h), then k <= N - |excl| (the CPU kernel's order).
__global__ void rank_validate_kernel(const int64_t* __restrict__ indptr,
                                     const int64_t* __restrict__ excl, int64_t nnz, int64_t B,
                                     int64_t N, int64_t k, bool entries, const ErrorSink err) {
  const int64_t b = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
  if (b >= B) return;  // warp-uniform
  const int lane = threadIdx.x % kWarp;
  const int64_t begin = indptr[b], end = indptr[b + 1];
  if (!csr_span_ok(begin, end, nnz)) {
    if (lane == 0) err.report(Err::kCsrRowSpan, b, b, begin, end, nnz);
    return;
  }
  if (entries && !warp_check_csr_row(excl, begin, end, N, b, b, err)) return;
  if (N - (end - begin) < k && lane == 0) err.report(Err::kRankK, b, k, N - (end - begin), b);
}

// Row b's exclusion span, empty when invalid (reported by rank_validate_kernel).
__device__ __forceinline__ void safe_span(const int64_t* __restrict__ indptr, int64_t b,
                                          int64_t nnz, int64_t* begin, int64_t* end) {
  *begin = indptr[b];
  *end = indptr[b + 1];
  if (!csr_span_ok(*begin, *end, nnz)) *begin = *end = 0;
}

// Four consecutive T from 16-byte aligned shared memory (one or two 16-byte loads).
template <typename T>
__device__ __forceinline__ void load4(const T* p, T (&v)[4]) {
  using V = typename Vec16<T>::type;
  if constexpr (Vec16<T>::width == 4) {
    const V x = *reinterpret_cast<const V*>(p);
    v[0] = x.x; v[1] = x.y; v[2] = x.z; v[3] = x.w;
  } else {
    const V x = reinterpret_cast<const V*>(p)[0], y = reinterpret_cast<const V*>(p)[1];
    v[0] = x.x; v[1] = x.y; v[2] = y.x; v[3] = y.y;
  }
}

// Copies rows [r0, r0 + R) x columns [d0, d0 + kDC) of src (row-major, d columns; rows >= rend
// or columns >= d read as 0) into dst[kDC][R + kPad<T>], transposed. Lane l of a warp moves
// column d0 + 8 * (chunk % 4) + l % 8 of row 4 * (chunk / 4) + l / 8: the global reads are four
// 32-byte runs (as many sectors as one 128-byte row) and the shared stores are conflict-free
// (kPad).
template <typename T, int R>
__device__ __forceinline__ void stage(T (*dst)[R + kPad<T>], const T* __restrict__ src, int64_t r0,
                                      int64_t rend, int64_t d0, int64_t d) {
  constexpr int kChunks = R * kDC / kWarp;  // 32 (users) or 128 (items)
  const int lane = threadIdx.x % kWarp;
  for (int chunk = threadIdx.x / kWarp; chunk < kChunks; chunk += kThreads / kWarp) {
    const int r = 4 * (chunk / (kDC / 8)) + lane / 8, c = 8 * (chunk % (kDC / 8)) + lane % 8;
    const int64_t row = r0 + r, col = d0 + c;
    dst[c][r] = (row < rend && col < d) ? src[row * d + col] : T(0);
  }
}

// Block: kTU = 32 users (warp w owns users 4w..4w+3) x the items of split blockIdx.y, in item
// blocks of kTI = 128. Lane l of warp w accumulates the 4 x 4 scores of its users and of items
// i0 + 4l .. i0 + 4l + 3 over d (chunks of kDC staged transposed in shared memory, read as
// 16-byte vectors), then offers them to its users' WarpTopK lists, masked by the exclusions of
// [i0, i0 + kTI) (a 128-bit mask merged from each user's sorted list, cursor in registers).
template <typename T, int KW>
__global__ void __launch_bounds__(kThreads, kRankMinBlocks<T, KW>)
rank_topk_kernel(const T* __restrict__ user, const T* __restrict__ items,
                 const int64_t* __restrict__ indptr, const int64_t* __restrict__ excl, int64_t B,
                 int64_t nnz, int64_t N, int64_t d, int64_t span, int k, T* __restrict__ out_s,
                 int64_t* __restrict__ out_i, int64_t out_stride, int64_t empty_id) {
  __shared__ __align__(16) T us[kDC][kTU + kPad<T>];
  __shared__ __align__(16) T is[kDC][kTI + kPad<T>];
  const int tid = threadIdx.x, lane = tid % kWarp, warp = tid / kWarp;
  const int64_t u0 = static_cast<int64_t>(blockIdx.x) * kTU;
  const int64_t istart = static_cast<int64_t>(blockIdx.y) * span;
  const int64_t iend = istart + span < N ? istart + span : N;

  WarpTopK<T, int32_t, KW> top[kUsersPerWarp] = {WarpTopK<T, int32_t, KW>(k),
                                                 WarpTopK<T, int32_t, KW>(k),
                                                 WarpTopK<T, int32_t, KW>(k),
                                                 WarpTopK<T, int32_t, KW>(k)};
  int64_t cur[kUsersPerWarp];  // next excluded entry of each user at or after the item block
  int rem[kUsersPerWarp];      // entries left in its row (< N < 2^31)
#pragma unroll
  for (int q = 0; q < kUsersPerWarp; ++q) {
    const int64_t b = u0 + warp * kUsersPerWarp + q;
    cur[q] = 0;
    rem[q] = 0;
    if (b < B) {
      int64_t begin, end;
      safe_span(indptr, b, nnz, &begin, &end);
      cur[q] = begin + lower_bound(excl + begin, end - begin, istart);
      rem[q] = static_cast<int>(end - cur[q]);
    }
  }

  for (int64_t i0 = istart; i0 < iend; i0 += kTI) {
    T acc[kUsersPerWarp][4] = {};
    for (int64_t d0 = 0; d0 < d; d0 += kDC) {
      stage<T, kTU>(us, user, u0, B, d0, d);
      stage<T, kTI>(is, items, i0, iend, d0, d);
      __syncthreads();
#pragma unroll 4
      for (int dd = 0; dd < kDC; ++dd) {
        T a[4], v[4];
        load4(&us[dd][warp * kUsersPerWarp], a);
        load4(&is[dd][lane * 4], v);
#pragma unroll
        for (int q = 0; q < kUsersPerWarp; ++q) {
#pragma unroll
          for (int j = 0; j < 4; ++j) acc[q][j] += a[q] * v[j];
        }
      }
      __syncthreads();  // us / is are restaged next
    }
#pragma unroll
    for (int q = 0; q < kUsersPerWarp; ++q) {
      if (u0 + warp * kUsersPerWarp + q >= B) continue;  // warp-uniform
      // Excluded ids in [i0, i0 + kTI) are the next entries from cur[q]: at most kTI of them.
      unsigned mask[kTI / kWarp] = {};
      if (rem[q] > 0 && excl[cur[q]] < i0 + kTI) {
        int taken = 0;
#pragma unroll
        for (int r = 0; r < kTI / kWarp; ++r) {
          const int jr = r * kWarp + lane;
          const int64_t e = jr < rem[q] ? excl[cur[q] + jr] : kPastEnd;
          const bool in = e < i0 + kTI;
          const int off = in ? static_cast<int>(e - i0) : 0;
#pragma unroll
          for (int w = 0; w < kTI / kWarp; ++w) {
            if (in && off / kWarp == w) mask[w] |= 1u << (off % kWarp);
          }
          taken += __popc(__ballot_sync(kFullMask, in));
        }
#pragma unroll
        for (int w = 0; w < kTI / kWarp; ++w) {
#pragma unroll
          for (int off = 16; off > 0; off /= 2) mask[w] |= __shfl_xor_sync(kFullMask, mask[w], off);
        }
        cur[q] += taken;
        rem[q] -= taken;
      }
      // Lane l's items i0 + 4l + j sit in mask word l / 8, bits 4 (l % 8) + j.
      unsigned mine = 0;
#pragma unroll
      for (int w = 0; w < kTI / kWarp; ++w) {
        if (w == lane / 8) mine = (mask[w] >> (4 * (lane % 8))) & 0xFu;
      }
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int64_t item = i0 + 4 * lane + j;
        top[q].offer(acc[q][j], static_cast<int32_t>(item), item < iend && !((mine >> j) & 1u));
      }
    }
  }

#pragma unroll
  for (int q = 0; q < kUsersPerWarp; ++q) {
    const int64_t b = u0 + warp * kUsersPerWarp + q;
    if (b < B) {
      const int64_t base = b * out_stride + static_cast<int64_t>(blockIdx.y) * k;
      top[q].write(out_s + base, out_i + base,
                   [empty_id](int32_t i) { return i == kNoItem ? empty_id : int64_t{i}; });
    }
  }
}

// Reduces the per-split lists part_[s|i] [B, L] (sentinel item kNoItem = empty) to [B, k].
template <typename T, int KW>
__global__ void rank_merge_kernel(const T* __restrict__ part_s, const int64_t* __restrict__ part_i,
                                  int64_t B, int64_t L, int k, T* __restrict__ out_s,
                                  int64_t* __restrict__ out_i) {
  const int64_t b = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
  if (b >= B) return;
  WarpTopK<T, int32_t, KW> top(k);
  for (int64_t j0 = 0; j0 < L; j0 += kWarp) {
    const int64_t j = j0 + top.lane;
    const bool in = j < L;
    const int64_t item = in ? part_i[b * L + j] : kNoItem;
    top.offer(in ? part_s[b * L + j] : T(0), static_cast<int32_t>(item), item != kNoItem);
  }
  top.write(out_s + b * k, out_i + b * k,
            [](int32_t i) { return i == kNoItem ? int64_t{0} : int64_t{i}; });
}

// Blocks of `kernel` the whole device holds at once (SMs x blocks per SM, from the occupancy
// calculator: registers and shared memory as compiled).
template <typename Kernel>
int64_t resident_blocks(Kernel kernel) {
  int per_sm = 0;
  C10_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads, 0));
  const int sms = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
  return std::max<int64_t>(1, static_cast<int64_t>(per_sm) * sms);
}

// Item splits per user tile: the s in [1, min(64, N / 512)] with the least time per block of
// work, ceil(tiles * s / wave) waves of blocks that each scan N / s items, i.e. the smallest
// ceil(tiles * s / wave) / s (ties: fewer splits, less merging). A grid of 2.15 waves (ML-1M,
// 2 blocks per SM, 3 splits) leaves the last wave 15% full; this picks full waves.
int64_t choose_splits(int64_t tiles, int64_t N, int64_t wave) {
  const int64_t most = std::max<int64_t>(1, std::min<int64_t>(64, ceil_div(N, 4 * kTI)));
  int64_t best = 1;
  for (int64_t s = 2; s <= most; ++s) {
    // ceil(tiles*s/wave)/s < ceil(tiles*best/wave)/best, in integers
    if (ceil_div(tiles * s, wave) * best < ceil_div(tiles * best, wave) * s) best = s;
  }
  return best;
}

template <typename T, int KW>
void launch_rank(const at::Tensor& user, const at::Tensor& items, const at::Tensor& indptr,
                 const at::Tensor& excl, int64_t k, at::Tensor& out_s, at::Tensor& out_i) {
  const int64_t B = user.size(0), N = items.size(0), d = user.size(1);
  auto stream = at::cuda::getCurrentCUDAStream();
  const int64_t tiles = ceil_div(B, kTU);
  int64_t splits = choose_splits(tiles, N, resident_blocks(rank_topk_kernel<T, KW>));
  const int64_t span = ceil_div(ceil_div(N, splits), kTI) * kTI;
  splits = ceil_div(N, span);
  const dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>(splits));
  const int kk = static_cast<int>(k);
  const int64_t nnz = excl.size(0);
  if (splits == 1) {
    rank_topk_kernel<T, KW><<<grid, kThreads, 0, stream>>>(
        user.data_ptr<T>(), items.data_ptr<T>(), indptr.data_ptr<int64_t>(),
        excl.data_ptr<int64_t>(), B, nnz, N, d, span, kk, out_s.data_ptr<T>(),
        out_i.data_ptr<int64_t>(), k, 0);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return;
  }
  const int64_t L = splits * k;
  auto part_s = at::empty({B, L}, out_s.options());
  auto part_i = at::empty({B, L}, out_i.options());
  rank_topk_kernel<T, KW><<<grid, kThreads, 0, stream>>>(
      user.data_ptr<T>(), items.data_ptr<T>(), indptr.data_ptr<int64_t>(),
      excl.data_ptr<int64_t>(), B, nnz, N, d, span, kk, part_s.data_ptr<T>(),
      part_i.data_ptr<int64_t>(), L, kNoItem);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  rank_merge_kernel<T, KW><<<static_cast<unsigned>(ceil_div(B * kWarp, 128)), 128, 0, stream>>>(
      part_s.data_ptr<T>(), part_i.data_ptr<int64_t>(), B, L, kk, out_s.data_ptr<T>(),
      out_i.data_ptr<int64_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// mask[r, excl[j]] = 1 for the excluded ids of rows r0 + r, r < R (one warp per row; rows with a
// bad span are empty, ids outside [0, N) skipped: both reported by rank_validate_kernel).
__global__ void exclusion_mask_kernel(const int64_t* __restrict__ indptr,
                                      const int64_t* __restrict__ excl, int64_t nnz, int64_t r0,
                                      int64_t R, int64_t N, uint8_t* __restrict__ mask) {
  const int64_t r = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
  if (r >= R) return;
  int64_t begin, end;
  safe_span(indptr, r0 + r, nnz, &begin, &end);
  for (int64_t j = begin + threadIdx.x % kWarp; j < end; j += kWarp) {
    const int64_t v = excl[j];
    if (v >= 0 && v < N) mask[r * N + v] = 1;
  }
}

// k > kMaxWarpK: users in batches of at most 2^24 / N rows; scores, excluded set to -inf, then
// a stable sort on (excluded, canonical order) as reference.rank_topk (writes [batch, N]).
// No host synchronisation: the batches are cut from B and N alone. The scores come from a
// float64 product rounded to T: never TF32, whatever torch.backends.cuda.matmul.allow_tf32 says
// (TF32 would rank by 10-bit mantissas, unlike the CPU kernel and the k <= 128 path).
std::tuple<at::Tensor, at::Tensor> rank_topk_sorted(const at::Tensor& user, const at::Tensor& items,
                                                    const at::Tensor& indptr,
                                                    const at::Tensor& excl, int64_t k) {
  const int64_t B = user.size(0), N = items.size(0);
  const int64_t rows = std::max<int64_t>(1, (int64_t{1} << 24) / std::max<int64_t>(N, 1));
  auto stream = at::cuda::getCurrentCUDAStream();
  const auto items_t = items.to(at::kDouble).t();
  std::vector<at::Tensor> vs, is;
  for (int64_t r0 = 0; r0 < B; r0 += rows) {
    const int64_t R = std::min(B, r0 + rows) - r0;
    auto scores = at::matmul(user.narrow(0, r0, R).to(at::kDouble), items_t).to(user.scalar_type());
    auto mask = at::zeros({R, N}, indptr.options().dtype(at::kByte));
    exclusion_mask_kernel<<<static_cast<unsigned>(ceil_div(R * kWarp, 128)), 128, 0, stream>>>(
        indptr.data_ptr<int64_t>(), excl.data_ptr<int64_t>(), excl.size(0), r0, R, N,
        mask.data_ptr<uint8_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    auto order = std::get<1>(at::sort(scores, /*stable=*/true, /*dim=*/1, /*descending=*/true));
    auto flag = at::gather(mask, 1, order);
    order = at::gather(order, 1, std::get<1>(at::sort(flag, /*stable=*/true, 1, false)));
    auto top = order.narrow(1, 0, k).contiguous();
    vs.push_back(at::gather(scores, 1, top));
    is.push_back(top);
  }
  return {at::cat(vs, 0), at::cat(is, 0)};
}

std::tuple<at::Tensor, at::Tensor> rank_topk_cuda(const at::Tensor& user_in,
                                                  const at::Tensor& items_in,
                                                  const at::Tensor& indptr_in,
                                                  const at::Tensor& excl_in, int64_t k,
                                                  bool validate) {
  check_rank_topk_args(user_in, items_in, indptr_in, excl_in, k);
  const c10::cuda::CUDAGuard guard(user_in.device());
  const int64_t B = user_in.size(0), N = items_in.size(0);
  TORCH_CHECK(N < kNoItem, "autosample::rank_topk: argument 'item_emb' must have fewer than ",
              kNoItem, " rows on CUDA, got ", N);
  auto out_s = at::empty({B, k}, user_in.options());
  auto out_i = at::empty({B, k}, indptr_in.options());
  if (B == 0) return {out_s, out_i};
  const auto user = user_in.detach().contiguous();  // no autograd inside (matmul for k > 128)
  const auto items = items_in.detach().contiguous();
  const auto indptr = indptr_in.contiguous();
  const auto excl = excl_in.contiguous();
  const ErrorSink err = begin_call(Op::kRankTopk, indptr);
  rank_validate_kernel<<<static_cast<unsigned>(ceil_div(B * kWarp, 128)), 128, 0,
                         at::cuda::getCurrentCUDAStream()>>>(
      indptr.data_ptr<int64_t>(), excl.data_ptr<int64_t>(), excl.size(0), B, N, k, validate, err);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  end_call(err);
  if (k == 0) return {out_s, out_i};
  if (k > kMaxWarpK) return rank_topk_sorted(user, items, indptr, excl, k);
  AT_DISPATCH_FLOATING_TYPES(user.scalar_type(), "rank_topk_cuda", [&] {
    if (k <= 32) launch_rank<scalar_t, 1>(user, items, indptr, excl, k, out_s, out_i);
    else if (k <= 64) launch_rank<scalar_t, 2>(user, items, indptr, excl, k, out_s, out_i);
    else launch_rank<scalar_t, 4>(user, items, indptr, excl, k, out_s, out_i);
  });
  return {out_s, out_i};
}

}  // namespace
}  // namespace cuda
}  // namespace autosample

TORCH_LIBRARY_IMPL(autosample, CUDA, m) {
  m.impl("rank_topk", &autosample::cuda::rank_topk_cuda);
}
