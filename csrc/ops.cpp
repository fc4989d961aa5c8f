// Operator schemas (docs/design.md) and the Python module autosample_ext._C: build facts and the
// two error-reporting functions. Kernels register themselves per device in cpu/<op>.cpp and
// cuda/<op>.cu.
// No pybind11: the module is made with the Python C API (torch/extension.h took ten times as
// long to compile as this whole file). check_errors / set_sync_errors are plain module
// functions, not torch operators: they take no tensor and act on process state (a sync, a
// switch), which an operator schema cannot state (torch.compile would treat `() -> ()` as pure
// and drop it); every tensor computation goes through torch.ops.autosample.
#include <Python.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <cstring>
#include <exception>
#include <string>

#ifndef AUTOSAMPLE_VERSION
#define AUTOSAMPLE_VERSION "0.0.0"
#endif
#ifndef AUTOSAMPLE_CUDA_ARCHS
#define AUTOSAMPLE_CUDA_ARCHS ""
#endif

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

namespace {

// One row per operator: its schema, and whether it is differentiable. The schema definitions and
// the Autograd registrations below both read this table, so an operator is listed once.
// Differentiable operators get their backward from torch.library.register_autograd in their
// Python wrapper (autosample_ext/ops/graph.py); every other one falls through the Autograd key.
struct OpDef {
  const char* schema;
  bool differentiable;
};

constexpr OpDef kOps[] = {
    {"sample_negatives(Tensor indptr, Tensor indices, Tensor users, int num_items, "
     "int num_samples, int seed, int offset, Tensor? alias_prob=None, "
     "Tensor? alias_idx=None, bool validate=True) -> Tensor",
     false},
    {"score_candidates(Tensor user_emb, Tensor item_emb, Tensor cand) -> Tensor", false},
    {"score_topk(Tensor user_emb, Tensor item_emb, Tensor cand, int k) -> (Tensor, Tensor)", false},
    {"select_topk(Tensor keys, int k) -> (Tensor, Tensor)", false},
    {"gdns_lookup(Tensor slot_keys, Tensor slot_g, Tensor users, Tensor items) -> Tensor", false},
    {"gdns_update(Tensor(a!) slot_keys, Tensor(b!) slot_h, Tensor(c!) slot_g, Tensor users, "
     "Tensor items, Tensor pos_scores, Tensor neg_scores, float alpha, float eps) -> ()",
     false},
    {"gdns_contains(Tensor slot_keys, Tensor users, Tensor items) -> Tensor", false},
    {"gdns_dense_lookup(Tensor g, Tensor users, Tensor items) -> Tensor", false},
    {"gdns_dense_update(Tensor(a!) h, Tensor(b!) g, Tensor users, Tensor items, "
     "Tensor pos_scores, Tensor neg_scores, float alpha, float eps) -> ()",
     false},
    {"rank_topk(Tensor user_emb, Tensor item_emb, Tensor excl_indptr, Tensor excl_indices, "
     "int k, bool validate=True) -> (Tensor, Tensor)",
     false},
    {"spmm(Tensor indptr, Tensor indices, Tensor values, Tensor x, bool symmetric=False) "
     "-> Tensor",
     true},
    {"graph_propagate(Tensor indptr, Tensor indices, Tensor values, Tensor x, "
     "int num_layers, bool symmetric=False) -> Tensor",
     true},
    {"mf_bpr_train(Tensor(a!) user_emb, Tensor(b!) item_emb, Tensor(c!)? weight, "
     "Tensor(d!)[] state, Tensor indptr, Tensor indices, Tensor users, Tensor pos_items, "
     "Tensor? negatives, int batch_size, int num_negatives, str sampler, int num_candidates, "
     "int top_k, Tensor? alias_prob, Tensor? alias_idx, Tensor? cdf, Tensor? uniforms, int seed, "
     "int offset, int offset_stride, float lr, float l2, str optimizer, float beta1, "
     "float beta2, float eps, int opt_step, bool validate=True) -> Tensor",
     false},
};

// The operator's name: the schema up to its argument list.
std::string op_name(const char* schema) { return std::string(schema, std::strchr(schema, '(')); }

}  // namespace

TORCH_LIBRARY(autosample, m) {
  for (const OpDef& op : kOps) m.def(op.schema);
}

// The non-differentiable ops (samplers and evaluation use them on detached tables) fall through
// the autograd key, so their outputs never require grad, even for inputs that do (without this,
// torch gives them a grad_fn that backpropagates nothing, with a warning only).
TORCH_LIBRARY_IMPL(autosample, Autograd, m) {
  for (const OpDef& op : kOps) {
    if (!op.differentiable) {
      m.impl(op_name(op.schema).c_str(), torch::CppFunction::makeFallthrough());
    }
  }
}

namespace {

// Runs fn without the GIL (check_errors may wait for the devices); a C++ error becomes a Python
// RuntimeError with the message torch.ops would give (no C++ backtrace).
template <typename F>
bool call_without_gil(F&& fn) {
  std::string error;
  Py_BEGIN_ALLOW_THREADS
  try {
    fn();
  } catch (const c10::Error& e) {
    error = e.what_without_backtrace();
  } catch (const std::exception& e) {
    error = e.what();
  }
  Py_END_ALLOW_THREADS
  if (error.empty()) return true;
  PyErr_SetString(PyExc_RuntimeError, error.c_str());
  return false;
}

PyObject* py_check_errors(PyObject*, PyObject*) {
  if (!call_without_gil([] { check_errors(); })) return nullptr;
  Py_RETURN_NONE;
}

PyObject* py_set_sync_errors(PyObject*, PyObject* arg) {
  const int enabled = PyObject_IsTrue(arg);
  if (enabled < 0) return nullptr;
  bool previous = false;
  if (!call_without_gil([&] { previous = set_sync_errors(enabled != 0); })) return nullptr;
  return PyBool_FromLong(previous ? 1 : 0);
}

PyMethodDef g_methods[] = {
    {"check_errors", py_check_errors, METH_NOARGS,
     "check_errors() -> None: synchronise the devices, raise the earliest pending CUDA value error."},
    {"set_sync_errors", py_set_sync_errors, METH_O,
     "set_sync_errors(enabled) -> bool: every CUDA call synchronises and raises its own errors; "
     "returns the previous setting."},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef g_module = {PyModuleDef_HEAD_INIT, "_C",
                        "autosample_ext._C: registers torch.ops.autosample.*, holds build facts and "
                        "the error-reporting functions.",
                        -1, g_methods, nullptr, nullptr, nullptr, nullptr};

}  // namespace

PyMODINIT_FUNC PyInit__C() {
  PyObject* module = PyModule_Create(&g_module);
  if (module == nullptr) return nullptr;
#ifdef AUTOSAMPLE_WITH_CUDA
  PyObject* cuda = Py_True;
#else
  PyObject* cuda = Py_False;
#endif
  Py_INCREF(cuda);
  if (PyModule_AddStringConstant(module, "__version__", AUTOSAMPLE_VERSION) < 0 ||
      PyModule_AddObject(module, "cuda_compiled", cuda) < 0 ||
      PyModule_AddStringConstant(module, "cuda_arch_list", AUTOSAMPLE_CUDA_ARCHS) < 0) {
    Py_DECREF(module);
    return nullptr;
  }
  return module;
}
