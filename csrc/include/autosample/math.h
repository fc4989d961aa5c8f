// Scalar formulas shared by every kernel (DESIGN.md §1, GDNS).
#pragma once
#include <cmath>
#include "autosample/common.h"

namespace autosample {

// Numerically stable logistic function.
template <typename T>
AS_HD T sigmoid(T x) {
  if (x >= T(0)) {
    T z = exp(-x);
    return T(1) / (T(1) + z);
  }
  T z = exp(x);
  return z / (T(1) + z);
}

// GDNS gain of one (user, item) pair (Zhu et al., WWW 2022, eq. 6 + Algorithm 1):
//   gain  = sigmoid((H_old - H_new) / (H_new + eps))
//   G_new = alpha * G_old + (1 - alpha) * gain
template <typename T>
AS_HD T gdns_next_gain(T g_old, T h_old, T h_new, T alpha, T eps) {
  T gain = sigmoid((h_old - h_new) / (h_new + eps));
  return alpha * g_old + (T(1) - alpha) * gain;
}

}  // namespace autosample
