// BPR's loss and gradient and the row updates of the fused training step (mf_bpr_train), shared
// by the CPU and CUDA kernels. The loss of a (positive, negative) pair with scores (r_pos, r_neg)
// is softplus(x), x = r_neg - r_pos, in torch's form (F.softplus, beta 1, threshold 20), so the
// fused step differentiates what the autograd path does:
//   softplus(x)  = x > 20 ? x : log1p(exp(x))
//   softplus'(x) = x > 20 ? 1 : z / (z + 1), z = exp(x)       (torch's softplus_backward)
#pragma once
#include <cmath>

#include "autosample/common.h"

namespace autosample {

constexpr double kSoftplusThreshold = 20.0;

template <typename T>
AS_HD T bpr_softplus(T x) {
  return x > T(kSoftplusThreshold) ? x : std::log1p(std::exp(x));
}

// The gradient of softplus at x given the upstream gradient a, as torch's softplus_backward
// computes it: x > 20 ? a : a * z / (z + 1).
template <typename T>
AS_HD T bpr_softplus_backward(T a, T x) {
  if (x > T(kSoftplusThreshold)) return a;
  const T z = std::exp(x);
  return a * z / (z + T(1));
}

// The optimisers of the fused step; each updates one element of a touched row from its gradient
// g (rows not in the batch are not visited: "lazy").
enum class SparseOpt : int { kSgd = 0, kAdagrad = 1, kAdam = 2 };

// Per-step constants of the update, in the tables' type T (computed once per step on the host,
// in double): the loops then read no memory besides the rows.
template <typename T>
struct OptStep {
  T lr;
  T eps;
  T beta1, one_minus_beta1;
  T beta2, one_minus_beta2;
  T step_size;     // Adam: lr / (1 - beta1^t)
  T inv_bc2_sqrt;  // Adam: 1 / sqrt(1 - beta2^t)
};

template <typename T>
inline OptStep<T> opt_step_constants(double lr, double eps, double beta1, double beta2,
                                     int64_t t) {
  const double bc1 = 1.0 - std::pow(beta1, static_cast<double>(t));
  const double bc2 = 1.0 - std::pow(beta2, static_cast<double>(t));
  return OptStep<T>{static_cast<T>(lr),           static_cast<T>(eps),
                    static_cast<T>(beta1),        static_cast<T>(1.0 - beta1),
                    static_cast<T>(beta2),        static_cast<T>(1.0 - beta2),
                    static_cast<T>(lr / bc1),     static_cast<T>(1.0 / std::sqrt(bc2))};
}

// SGD: p -= lr g.
template <typename T>
AS_HD void sgd_update(T* p, T g, const OptStep<T>& c) {
  *p -= c.lr * g;
}

// AdaGrad (torch.optim.Adagrad, no decay): s += g^2; p -= lr g / (sqrt(s) + eps).
template <typename T>
AS_HD void adagrad_update(T* p, T* s, T g, const OptStep<T>& c) {
  const T acc = *s + g * g;
  *s = acc;
  *p -= c.lr * g / (std::sqrt(acc) + c.eps);
}

// Lazy Adam, torch.optim.Adam's formula on the row: m = b1 m + (1 - b1) g,
// v = b2 v + (1 - b2) g^2, p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// (the division by sqrt(1 - b2^t) as a product with its inverse).
template <typename T>
AS_HD void adam_update(T* p, T* m, T* v, T g, const OptStep<T>& c) {
  const T mt = *m * c.beta1 + g * c.one_minus_beta1;
  const T vt = *v * c.beta2 + g * g * c.one_minus_beta2;
  *m = mt;
  *v = vt;
  *p -= c.step_size * mt / (std::sqrt(vt) * c.inv_bc2_sqrt + c.eps);
}

}  // namespace autosample
