// math.h: stable sigmoid and the GDNS gain recurrence.
#include <cmath>
#include <limits>

#include "autosample/math.h"
#include "harness.h"

using namespace autosample;

namespace {
bool near(double a, double b, double tol) { return std::fabs(a - b) <= tol * (1 + std::fabs(b)); }
}  // namespace

TEST(sigmoid_values_and_stability) {
  for (double x : {-30.0, -5.0, -1.0, 0.0, 0.5, 3.0, 30.0}) {
    CHECK(near(sigmoid(x), 1.0 / (1.0 + std::exp(-x)), 1e-15));
    CHECK(near(sigmoid(x) + sigmoid(-x), 1.0, 1e-15));
    CHECK(near(sigmoid(static_cast<float>(x)), 1.0 / (1.0 + std::exp(-x)), 1e-6));
  }
  CHECK_EQ(sigmoid(0.0), 0.5);
  // Extreme arguments: no overflow to NaN, correct limits, tiny values keep relative accuracy.
  CHECK_EQ(sigmoid(1000.0), 1.0);
  CHECK_EQ(sigmoid(-1000.0), 0.0);
  CHECK(near(sigmoid(-700.0), std::exp(-700.0), 1e-12));
  CHECK(!std::isnan(sigmoid(-1e30f)) && !std::isnan(sigmoid(1e30f)));
}

TEST(gdns_next_gain_formula) {
  const double g_old = 0.4, h_old = 0.7, h_new = 0.3, alpha = 0.8, eps = 1e-3;
  const double gain = 1.0 / (1.0 + std::exp(-(h_old - h_new) / (h_new + eps)));
  CHECK(near(gdns_next_gain(g_old, h_old, h_new, alpha, eps), alpha * g_old + (1 - alpha) * gain,
             1e-15));
  // alpha = 1 keeps G; alpha = 0 is the raw gain; unchanged H gives gain 1/2.
  CHECK_EQ(gdns_next_gain(g_old, h_old, h_new, 1.0, eps), g_old);
  CHECK(near(gdns_next_gain(g_old, h_old, h_new, 0.0, eps), gain, 1e-15));
  CHECK(near(gdns_next_gain(0.0, 0.5, 0.5, 0.0, 0.0), 0.5, 1e-15));
  // H_old > H_new gives a gain above 1/2, H_old < H_new one below.
  CHECK(gdns_next_gain(0.0, 0.9, 0.1, 0.0, 1e-3) > 0.5);
  CHECK(gdns_next_gain(0.0, 0.1, 0.9, 0.0, 1e-3) < 0.5);
}

TEST_MAIN()
