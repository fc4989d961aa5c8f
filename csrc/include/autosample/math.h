// Scalar formulas shared by every kernel (docs/search.md, GDNS).
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

// GDNS H of one selected negative (eq. 4, read as an assignment):
//   H_new = mean over the P positives of sigmoid(neg - pos[p]), summed in order, in double.
template <typename T>
AS_HD T gdns_h_new(T neg, const T* pos, int64_t num_pos) {
  double acc = 0.0;
  for (int64_t p = 0; p < num_pos; ++p) acc += sigmoid<T>(neg - pos[p]);
  return static_cast<T>(acc / static_cast<double>(num_pos));
}

}  // namespace autosample
