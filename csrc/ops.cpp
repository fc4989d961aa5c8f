// Operator schemas (DESIGN.md §3) and the Python module holding build facts.
// Kernels register themselves per device in cpu/<op>.cpp and cuda/<op>.cu.
#include <torch/extension.h>
#include <torch/library.h>

#ifdef AUTOSAMPLE_WITH_CUDA
namespace autosample {
namespace cuda {
void check_errors();            // csrc/cuda/errors.cu
bool set_sync_errors(bool enabled);
}  // namespace cuda
}  // namespace autosample
#endif

namespace {

// Raises the earliest value error a CUDA kernel reported asynchronously (after synchronising
// the devices); nothing to do on the CPU, whose kernels raise in the call.
void check_errors() {
#ifdef AUTOSAMPLE_WITH_CUDA
  autosample::cuda::check_errors();
#endif
}

// Debug switch: every CUDA call synchronises and raises its own errors. Returns the old value.
bool set_sync_errors(bool enabled) {
#ifdef AUTOSAMPLE_WITH_CUDA
  return autosample::cuda::set_sync_errors(enabled);
#else
  (void)enabled;
  return false;
#endif
}

}  // namespace

TORCH_LIBRARY(autosample, m) {
  m.def(
      "sample_negatives(Tensor indptr, Tensor indices, Tensor users, int num_items, "
      "int num_samples, int seed, int offset, Tensor? alias_prob=None, "
      "Tensor? alias_idx=None) -> Tensor");
  m.def("score_candidates(Tensor user_emb, Tensor item_emb, Tensor cand) -> Tensor");
  m.def("score_topk(Tensor user_emb, Tensor item_emb, Tensor cand, int k) -> (Tensor, Tensor)");
  m.def("select_topk(Tensor keys, int k) -> (Tensor, Tensor)");
  m.def("gdns_lookup(Tensor slot_keys, Tensor slot_g, Tensor users, Tensor items) -> Tensor");
  m.def(
      "gdns_update(Tensor(a!) slot_keys, Tensor(b!) slot_h, Tensor(c!) slot_g, Tensor users, "
      "Tensor items, Tensor pos_scores, Tensor neg_scores, float alpha, float eps) -> ()");
  m.def(
      "rank_topk(Tensor user_emb, Tensor item_emb, Tensor excl_indptr, Tensor excl_indices, "
      "int k) -> (Tensor, Tensor)");
  m.def("spmm(Tensor indptr, Tensor indices, Tensor values, Tensor x, bool symmetric=False) "
        "-> Tensor");
  m.def("graph_propagate(Tensor indptr, Tensor indices, Tensor values, Tensor x, "
        "int num_layers, bool symmetric=False) -> Tensor");
  m.def("check_errors() -> ()", &check_errors);
  m.def("set_sync_errors(bool enabled) -> bool", &set_sync_errors);
}

#ifndef AUTOSAMPLE_VERSION
#define AUTOSAMPLE_VERSION "0.0.0"
#endif
#ifndef AUTOSAMPLE_CUDA_ARCHS
#define AUTOSAMPLE_CUDA_ARCHS ""
#endif

PYBIND11_MODULE(_C, module) {
  module.attr("__version__") = AUTOSAMPLE_VERSION;
#ifdef AUTOSAMPLE_WITH_CUDA
  module.attr("cuda_compiled") = true;
#else
  module.attr("cuda_compiled") = false;
#endif
  module.attr("cuda_arch_list") = AUTOSAMPLE_CUDA_ARCHS;
}
