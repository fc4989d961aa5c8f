// mf_bpr_train on CUDA: whole MF / GMF BPR training steps (semantics: ops/reference_mf.py; the
// CPU kernel: cpu/mf_step_impl.h). Per step, on the current stream, no host synchronisation:
//   1. mf_row_kernel, one warp per batch row: the negatives (negative_draw.h's rule, the Philox
//      stream of sample_negatives: row = position in the step's batch; DNS: each lane draws and
//      scores candidates with dot.h's order without FMA, the CPU's bits, and the candidate of
//      the drawn local rank in topk.h's order is taken), the scores, BPR's coefficients, the
//      row's loss terms, its share of its user's gradient (and of GMF's weight's), a copy of the
//      user vector, and the sort keys of its user and items;
//   2. a stable sort of the item keys and of the user keys (at::sort: no synchronisation): each
//      table row's contributions end up together, in batch order;
//   3. mf_item_kernel / mf_user_kernel, one warp per table row (the first position of its
//      group): the gradient summed over its contributions in batch order (as the CPU kernel
//      sums), then bpr.h's optimiser rule on the row; mf_weight_kernel for GMF's weight;
//   4. dense Adam only: mf_idle_kernel updates every row the step did not touch (marked by
//      mf_row_kernel) with a zero gradient;
//   5. mf_loss_kernel: the step's loss from the rows' terms, in a fixed order.
// Every sum has a fixed order: the result does not depend on scheduling (deterministic).
// Value checks: the rules of the CPU kernel (mf_step.h, validate.h), reported asynchronously with
// the CPU's messages (cuda_utils.cuh) by mf_validate_rows_kernel / mf_validate_alias_kernel; the
// step kernels skip a bad row (its keys become the sentinels U / N, which no update reads), so
// nothing is read out of bounds. Unlike the CPU, the valid rows of a call are trained before the
// error is raised (the CPU checks every row before any update).
#include <torch/library.h>

#include <ATen/ops/empty.h>
#include <ATen/ops/sort.h>

#include "mf_step_kernels.cuh"

namespace autosample {
namespace cuda {
namespace {

at::Tensor mf_bpr_train_cuda(const MfCall& c) {
  const MfArgs a = check_mf_bpr_train_args(c);
  const at::Tensor &user_emb = c.user_emb, &item_emb = c.item_emb;
  const c10::cuda::CUDAGuard guard(user_emb.device());
  at::Tensor losses = at::empty({a.steps}, user_emb.options().dtype(at::kDouble));
  const int64_t total = c.users.size(0);
  if (total == 0) return losses;
  const MfInputs in = prepare_mf_inputs(c, a);
  const MfDraw& dr = in.draw;
  const at::Tensor& users = in.users;
  const int64_t U = user_emb.size(0), N = item_emb.size(0), d = user_emb.size(1);
  const int64_t n = c.num_negatives, batch_size = c.batch_size, B = std::min(batch_size, total);
  const ErrorSink err = begin_call(Op::kMfBprTrain, users);
  auto stream = at::cuda::getCurrentCUDAStream();
  const int64_t* usr = users.data_ptr<int64_t>();
  const int64_t* ps = in.pos.data_ptr<int64_t>();
  if (c.validate && dr.prob != nullptr) {
    mf_validate_alias_kernel<<<grid_for(N, kThreads), kThreads, 0, stream>>>(dr.prob, dr.alias, N,
                                                                            err);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  mf_validate_rows_kernel<<<blocks_for_warps(total), kThreads, 0, stream>>>(
      dr, usr, ps, total, U, N, c.validate && a.sampler != MfSampler::kGiven, err);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  const auto i64 = users.options();
  const auto fp = user_emb.options();
  const auto f64 = user_emb.options().dtype(at::kDouble);
  at::Tensor neg = at::empty({B * n}, i64), ukeys = at::empty({B}, i64);
  at::Tensor ikeys = at::empty({B * (n + 1)}, i64);
  at::Tensor coef = at::empty({B * n}, fp), ug = at::empty({B * d}, fp);
  at::Tensor urow = at::empty({B * d}, fp);
  at::Tensor wg = at::empty({c.weight.has_value() ? B * d : 0}, fp);
  at::Tensor row_loss = at::empty({B}, f64), row_reg = at::empty({B}, f64);
  const int64_t cands = a.sampler == MfSampler::kDns ? B * n * dr.M : 0;
  at::Tensor cand_score = at::empty({cands}, fp), cand_id = at::empty({cands}, i64);
  const bool dense = a.opt == SparseOpt::kAdam;
  const auto u8 = users.options().dtype(at::kByte);
  at::Tensor touched_u = at::empty({dense ? U : 0}, u8), touched_i = at::empty({dense ? N : 0}, u8);
  double* out = losses.data_ptr<double>();
  AT_DISPATCH_FLOATING_TYPES(user_emb.scalar_type(), "mf_bpr_train_cuda", [&] {
    using T = scalar_t;
    const MfTables<T> tb = mf_tables<T>(c, a);
    StepBufs<T> buf{neg.data_ptr<int64_t>(), coef.data_ptr<T>(), ug.data_ptr<T>(),
                    urow.data_ptr<T>(), c.weight.has_value() ? wg.data_ptr<T>() : nullptr,
                    row_loss.data_ptr<double>(), row_reg.data_ptr<double>(),
                    ukeys.data_ptr<int64_t>(), ikeys.data_ptr<int64_t>(),
                    cands ? cand_score.data_ptr<T>() : nullptr,
                    cands ? cand_id.data_ptr<int64_t>() : nullptr,
                    dense ? touched_u.data_ptr<uint8_t>() : nullptr,
                    dense ? touched_i.data_ptr<uint8_t>() : nullptr};
    for (int64_t s = 0; s < a.steps; ++s) {
      const int64_t r0 = s * batch_size, rows = std::min(batch_size, total - r0);
      const auto oc = opt_step_constants<T>(c.lr, c.eps, c.beta1, c.beta2, c.opt_step + s + 1);
      const uint64_t off = static_cast<uint64_t>(c.offset) +
                           static_cast<uint64_t>(s) * static_cast<uint64_t>(c.offset_stride);
      const T inv_bn = T(1) / static_cast<T>(rows * n);
      const T r2 = static_cast<T>(2.0 * c.l2 / static_cast<double>(rows));
      if (dense) {
        C10_CUDA_CHECK(cudaMemsetAsync(buf.touched_u, 0, U, stream));
        C10_CUDA_CHECK(cudaMemsetAsync(buf.touched_i, 0, N, stream));
      }
      mf_row_kernel<T><<<blocks_for_warps(rows), kThreads, 0, stream>>>(
          tb, dr, off, usr, ps, r0, rows, inv_bn, r2, buf, err);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      const int64_t E = rows * (n + 1);
      // Stable sorts: a row's contributions stay in batch order within its group.
      const auto item_sorted = at::sort(ikeys.narrow(0, 0, E), /*stable=*/true, 0, false);
      const auto user_sorted = at::sort(ukeys.narrow(0, 0, rows), /*stable=*/true, 0, false);
      const at::Tensor ik = std::get<0>(item_sorted).contiguous();
      const at::Tensor io = std::get<1>(item_sorted).contiguous();
      const at::Tensor uk = std::get<0>(user_sorted).contiguous();
      const at::Tensor uo = std::get<1>(user_sorted).contiguous();
      mf_item_kernel<T><<<blocks_for_warps(E), kThreads, 0, stream>>>(
          tb, a.opt, oc, ik.data_ptr<int64_t>(), io.data_ptr<int64_t>(), E, n, r2, buf);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      mf_user_kernel<T><<<blocks_for_warps(rows), kThreads, 0, stream>>>(
          tb, a.opt, oc, uk.data_ptr<int64_t>(), uo.data_ptr<int64_t>(), rows, buf);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      if (dense) {
        mf_idle_kernel<T><<<grid_for(U * d, kThreads), kThreads, 0, stream>>>(
            tb.P, tb.st[0][0], tb.st[0][1], buf.touched_u, U, d, oc);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
        mf_idle_kernel<T><<<grid_for(N * d, kThreads), kThreads, 0, stream>>>(
            tb.Q, tb.st[1][0], tb.st[1][1], buf.touched_i, N, d, oc);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      }
      if (tb.w != nullptr) {
        mf_weight_kernel<T><<<grid_for(d, kThreads), kThreads, 0, stream>>>(tb, a.opt, oc, rows,
                                                                             buf);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      }
      mf_loss_kernel<<<1, kThreads, 0, stream>>>(row_loss.data_ptr<double>(),
                                                 row_reg.data_ptr<double>(), rows, n, c.l2, out + s);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
  });
  end_call(err);
  return losses;
}

}  // namespace
}  // namespace cuda
}  // namespace autosample

TORCH_LIBRARY_IMPL(autosample, CUDA, m) {
  m.impl("mf_bpr_train",
         &autosample::mf_bpr_train_entry<&autosample::cuda::mf_bpr_train_cuda>);
}
