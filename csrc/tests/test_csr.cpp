// csr.h: lower_bound, row_contains and rank_to_non_member against brute force.
#include <algorithm>
#include <random>
#include <vector>

#include "autosample/csr.h"
#include "harness.h"

using namespace autosample;

namespace {
std::vector<int64_t> random_row(std::mt19937_64& rng, int64_t n, double density) {
  std::vector<int64_t> row;
  std::bernoulli_distribution keep(density);
  for (int64_t i = 0; i < n; ++i) if (keep(rng)) row.push_back(i);
  return row;
}
}  // namespace

TEST(lower_bound_and_contains) {
  const std::vector<int64_t> row = {2, 3, 7, 11};
  CHECK_EQ(lower_bound(row.data(), 4, int64_t{0}), 0);
  CHECK_EQ(lower_bound(row.data(), 4, int64_t{3}), 1);
  CHECK_EQ(lower_bound(row.data(), 4, int64_t{4}), 2);
  CHECK_EQ(lower_bound(row.data(), 4, int64_t{12}), 4);
  CHECK_EQ(lower_bound(row.data(), 0, int64_t{12}), 0);
  for (int64_t v = -1; v < 13; ++v) {
    CHECK_EQ(row_contains(row.data(), 4, v), std::find(row.begin(), row.end(), v) != row.end());
  }
}

TEST(rank_to_non_member_matches_brute_force) {
  std::mt19937_64 rng(42);
  for (int trial = 0; trial < 300; ++trial) {
    const int64_t n = 1 + static_cast<int64_t>(rng() % 80);
    const double density = (trial % 5) / 4.0 * 0.98;
    std::vector<int64_t> row = random_row(rng, n, density);
    if (static_cast<int64_t>(row.size()) == n) row.pop_back();
    std::vector<int64_t> free;
    for (int64_t i = 0; i < n; ++i) {
      if (!std::binary_search(row.begin(), row.end(), i)) free.push_back(i);
    }
    for (int64_t r = 0; r < static_cast<int64_t>(free.size()); ++r) {
      CHECK_EQ(rank_to_non_member(row.data(), static_cast<int64_t>(row.size()), r), free[r]);
    }
  }
}

TEST(rank_to_non_member_edge_rows) {
  const std::vector<int64_t> all_but_last = {0, 1, 2, 3, 4};  // n = 6: only 5 is free
  CHECK_EQ(rank_to_non_member(all_but_last.data(), 5, int64_t{0}), 5);
  const std::vector<int64_t> all_but_first = {1, 2, 3, 4, 5};
  CHECK_EQ(rank_to_non_member(all_but_first.data(), 5, int64_t{0}), 0);
  const std::vector<int32_t> narrow = {0, 2, 4};
  CHECK_EQ(rank_to_non_member(narrow.data(), 3, int32_t{0}), 1);
  CHECK_EQ(rank_to_non_member(narrow.data(), 3, int32_t{2}), 5);
  CHECK_EQ(rank_to_non_member<int64_t>(nullptr, 0, 9), 9);
}

TEST_MAIN()
