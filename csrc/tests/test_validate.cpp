// validate.h and errors.h: the CSR row rule against a brute-force definition, the first bad
// entry and its code, the alias rule, and the message text both devices raise.
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "autosample/validate.h"
#include "harness.h"

using namespace autosample;

namespace {
// Brute force: first p with row[p] outside [0, n) or row[p] <= row[p - 1]; -1 when none.
int64_t first_bad_brute(const std::vector<int64_t>& row, int64_t n) {
  for (size_t p = 0; p < row.size(); ++p) {
    if (row[p] < 0 || row[p] >= n || (p > 0 && row[p] <= row[p - 1])) return static_cast<int64_t>(p);
  }
  return -1;
}
}  // namespace

TEST(csr_row_rule_matches_brute_force) {
  std::mt19937_64 rng(5);
  std::uniform_int_distribution<int64_t> len(0, 9), val(-2, 12);
  for (int trial = 0; trial < 4000; ++trial) {
    std::vector<int64_t> row(len(rng));
    for (auto& v : row) v = val(rng);
    if (trial % 2 == 0) std::sort(row.begin(), row.end());
    const int64_t n = 10, want = first_bad_brute(row, n);
    const int64_t len_ = static_cast<int64_t>(row.size());
    CHECK_EQ(csr_first_bad(row.data(), len_, n), want);
    CHECK_EQ(csr_row_ok(row.data(), len_, n), want < 0);
    if (want >= 0) {
      const bool range = row[want] < 0 || row[want] >= n;
      CHECK_EQ(csr_entry_error(row.data(), want, n) == Err::kCsrEntryRange, range);
    }
  }
}

TEST(csr_spans) {
  CHECK(csr_span_ok(0, 0, 0));
  CHECK(csr_span_ok(2, 5, 5));
  CHECK(!csr_span_ok(-1, 2, 5));
  CHECK(!csr_span_ok(3, 2, 5));
  CHECK(!csr_span_ok(2, 6, 5));
}

TEST(check_csr_row_reports_the_first_bad_entry) {
  const std::vector<int64_t> ptr = {0, 3, 6}, idx = {1, 4, 7, 2, 9, 5};
  CHECK(!check_csr_row(ptr.data(), idx.data(), 6, 8, 0, true));
  const ValueError e = check_csr_row(ptr.data() + 1, idx.data(), 6, 8, 1, true);
  CHECK(e.code == Err::kCsrEntryRange);  // 9 >= 8 comes before the order error 9 > 5
  CHECK_EQ(e.v[0], 9);
  CHECK_EQ(e.v[1], 1);
  CHECK_EQ(e.v[2], 4);
  CHECK(!check_csr_row(ptr.data() + 1, idx.data(), 6, 8, 1, false));  // entries opted out
  const ValueError order = check_csr_row(ptr.data() + 1, idx.data(), 6, 10, 1, true);
  CHECK(order.code == Err::kCsrEntryOrder);
  CHECK_EQ(order.v[1], 9);
  CHECK_EQ(order.v[2], 5);
  CHECK_EQ(order.v[3], 5);
}

TEST(alias_rule) {
  CHECK(alias_entry_ok(0.0f, 0, 3));
  CHECK(alias_entry_ok(1.0f, 2, 3));
  CHECK(!alias_entry_ok(std::numeric_limits<float>::quiet_NaN(), 0, 3));
  CHECK(!alias_entry_ok(-0.1f, 0, 3));
  CHECK(!alias_entry_ok(1.5f, 0, 3));
  CHECK(!alias_entry_ok(0.5f, 3, 3));
  CHECK(alias_entry_error(-0.5f, 9, 4, 3).code == Err::kAliasProb);  // prob checked first
  CHECK(alias_entry_error(0.5f, 9, 4, 3).code == Err::kAliasIdx);
}

TEST(messages) {
  CHECK(format_value_error(Op::kRankTopk, Err::kCsrEntryOrder, 3, 7, 7, 12) ==
           std::string("autosample::rank_topk: argument 'excl_indices': row 3 must be sorted "
                       "ascending without duplicates, got 7 then 7 at excl_indices[12]"));
  CHECK(format_value_error(Op::kSampleNegatives, Err::kCsrRowSpan, 1, 3, 2, 5) ==
           std::string("autosample::sample_negatives: argument 'indptr' gives row 1 the span "
                       "[3, 2), which is not a range within [0, len(indices) = 5]"));
  CHECK(format_value_error(Op::kSampleNegatives, Err::kAliasProb, float_bits(-0.5f), 4) ==
           std::string("autosample::sample_negatives: argument 'alias_prob' holds -0.500000 at "
                       "position 4; alias probabilities must lie in [0, 1]"));
}

TEST_MAIN()
