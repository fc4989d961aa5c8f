// topk.h: BoundedTopK against a full sort in the canonical order (NaN first, larger key first,
// ties to the smaller index), written independently of ranks_before.
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "autosample/topk.h"
#include "harness.h"

using namespace autosample;

namespace {
std::vector<int64_t> sorted_order(const std::vector<float>& keys) {
  std::vector<int64_t> order(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) order[i] = static_cast<int64_t>(i);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    const bool na = std::isnan(keys[a]), nb = std::isnan(keys[b]);
    if (na || nb) return na && !nb;  // stable: NaNs keep index order
    return keys[a] > keys[b];        // stable: ties keep index order
  });
  return order;
}
}  // namespace

TEST(ranks_before_rules) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  CHECK(ranks_before(2.0f, 5, 1.0f, 0));
  CHECK(ranks_before(1.0f, 0, 1.0f, 5));
  CHECK(!ranks_before(1.0f, 5, 1.0f, 0));
  CHECK(!ranks_before(1.0f, 3, 1.0f, 3));
  CHECK(ranks_before(nan, 9, std::numeric_limits<float>::infinity(), 0));
  CHECK(!ranks_before(std::numeric_limits<float>::infinity(), 0, nan, 9));
  CHECK(ranks_before(nan, 1, nan, 2));
  CHECK(!ranks_before(nan, 2, nan, 1));
}

TEST(bounded_topk_matches_sort) {
  std::mt19937 rng(7);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int trial = 0; trial < 500; ++trial) {
    const int m = 1 + static_cast<int>(rng() % 40);
    std::vector<float> keys(m);
    for (float& k : keys) {
      const unsigned pick = rng() % 10;
      // Few distinct values (many ties), some NaN and infinities.
      k = pick == 0 ? nan : pick == 1 ? -std::numeric_limits<float>::infinity()
                                      : static_cast<float>(static_cast<int>(rng() % 5) - 2);
    }
    const int k = static_cast<int>(rng() % (m + 1));
    std::vector<float> top_keys(std::max(k, 1));
    std::vector<int64_t> top_idx(std::max(k, 1));
    BoundedTopK<float, int64_t> top(top_keys.data(), top_idx.data(), k);
    for (int i = 0; i < m; ++i) top.push(keys[i], static_cast<int64_t>(i));
    const std::vector<int64_t> order = sorted_order(keys);
    CHECK_EQ(top.size, static_cast<int64_t>(k));
    for (int i = 0; i < k; ++i) CHECK_EQ(top_idx[i], order[i]);
  }
}

TEST(bounded_topk_order_of_pushes_does_not_matter) {
  std::mt19937 rng(8);
  std::vector<float> keys(64);
  for (float& k : keys) k = static_cast<float>(rng() % 6);
  std::vector<int64_t> ids(64);
  for (int i = 0; i < 64; ++i) ids[i] = i;
  std::shuffle(ids.begin(), ids.end(), rng);
  float tk[10];
  int64_t ti[10];
  BoundedTopK<float, int64_t> top(tk, ti, 10);
  for (int64_t id : ids) top.push(keys[id], id);
  const std::vector<int64_t> order = sorted_order(keys);
  for (int i = 0; i < 10; ++i) CHECK_EQ(ti[i], order[i]);
}

TEST_MAIN()
