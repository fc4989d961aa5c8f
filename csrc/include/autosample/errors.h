// Value errors of the operators: one catalogue for the CPU and CUDA kernels, so that both raise
// the same message for the same bad input (docs/design.md: the op, the argument and the value).
//
// A value error is (op, code, v[4]): the op names itself and its CSR arguments, the code picks
// the message template, v holds the values it quotes ({0}..{3}; {f0} reads v[0] as float32
// bits). CPU kernels raise at once with raise_value_error(); CUDA kernels record the same triple
// on the device (cuda_utils.cuh) and the host raises it later with the same text.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>

namespace autosample {

enum class Op : int32_t {
  kNone = 0,
  kSampleNegatives,
  kScoreCandidates,
  kScoreTopk,
  kSelectTopk,
  kGdnsLookup,
  kGdnsUpdate,
  kRankTopk,
  kSpmm,
  kGraphPropagate,
  kMfBprTrain,
  kGdnsDenseLookup,
  kGdnsDenseUpdate,
  kGdnsContains,
};

enum class Err : int32_t {
  kNone = 0,
  kUserOutOfRange,  // {0} user, {1} position in 'users', {2} number of users
  kCandOutOfRange,  // {0} id, ({1}, {2}) position in 'cand', {3} N
  kItemNegative,    // {0} id, ({1}, {2}) position in 'items'
  kCsrRowSpan,      // row {0} spans [{1}, {2}), {3} = len(indices)
  kCsrEntryRange,   // {0} id in row {1} at indices[{2}], {3} = N
  kCsrEntryOrder,   // row {0}: {1} then {2} at indices[{3}]
  kNoNegative,      // user {0} at position {1}: {2} positives of {3} items
  kAliasIdx,        // {0} at position {1}, {2} = N
  kAliasProb,       // {f0} at position {1}
  kRankK,           // k = {0} > {1} non-excluded items of row {2}
  kCsrStart,        // {0} = indptr[0]
  kCsrEnd,          // {0} = R, {1} = len(indices), {2} = indptr[R]
  kCsrColumn,       // {0} column id in row {1} at indices[{2}], {3} = C
  kPosOutOfRange,   // {0} id, {1} position in 'pos_items', {2} N
  kNegOutOfRange,   // {0} id, ({1}, {2}) position in 'negatives', {3} N
  kItemOutOfRange,  // {0} id, ({1}, {2}) position in 'items', {3} = I
};

inline const char* op_name(Op op) {
  switch (op) {
    case Op::kSampleNegatives: return "sample_negatives";
    case Op::kScoreCandidates: return "score_candidates";
    case Op::kScoreTopk: return "score_topk";
    case Op::kSelectTopk: return "select_topk";
    case Op::kGdnsLookup: return "gdns_lookup";
    case Op::kGdnsUpdate: return "gdns_update";
    case Op::kRankTopk: return "rank_topk";
    case Op::kSpmm: return "spmm";
    case Op::kGraphPropagate: return "graph_propagate";
    case Op::kMfBprTrain: return "mf_bpr_train";
    case Op::kGdnsDenseLookup: return "gdns_dense_lookup";
    case Op::kGdnsDenseUpdate: return "gdns_dense_update";
    case Op::kGdnsContains: return "gdns_contains";
    default: return "unknown_op";
  }
}

// Names of an op's CSR arguments ({ptr} and {idx} in the templates).
inline const char* csr_ptr_arg(Op op) { return op == Op::kRankTopk ? "excl_indptr" : "indptr"; }
inline const char* csr_idx_arg(Op op) { return op == Op::kRankTopk ? "excl_indices" : "indices"; }

inline const char* error_template(Err err) {
  switch (err) {
    case Err::kUserOutOfRange:
      return "argument 'users' holds user {0} at position {1}, outside [0, {2})";
    case Err::kCandOutOfRange:
      return "argument 'cand' holds item id {0} at position ({1}, {2}), outside [0, {3})";
    case Err::kItemNegative:
      return "argument 'items' holds item id {0} at position ({1}, {2}); item ids must be >= 0";
    case Err::kCsrRowSpan:
      return "argument '{ptr}' gives row {0} the span [{1}, {2}), which is not a range within "
             "[0, len({idx}) = {3}]";
    case Err::kCsrEntryRange:
      return "argument '{idx}' holds item id {0} in row {1} (at {idx}[{2}]), outside [0, {3})";
    case Err::kCsrEntryOrder:
      return "argument '{idx}': row {0} must be sorted ascending without duplicates, got {1} "
             "then {2} at {idx}[{3}]";
    case Err::kNoNegative:
      return "user {0} (argument 'users' position {1}) has no non-positive item: {2} positives "
             "of num_items = {3}";
    case Err::kAliasIdx:
      return "argument 'alias_idx' holds {0} at position {1}, outside [0, num_items = {2})";
    case Err::kAliasProb:
      return "argument 'alias_prob' holds {f0} at position {1}; alias probabilities must lie in "
             "[0, 1]";
    case Err::kRankK:
      return "argument 'k' = {0} exceeds the {1} non-excluded items of row {2}";
    case Err::kCsrStart:
      return "argument '{ptr}' must start at 0, got {ptr}[0] = {0}";
    case Err::kCsrEnd:
      return "argument '{ptr}' must end at len({idx}) = {1}, got {ptr}[{0}] = {2}";
    case Err::kCsrColumn:
      return "argument '{idx}' holds column id {0} in row {1} (at {idx}[{2}]), outside [0, {3}) "
             "(the rows of 'x')";
    case Err::kPosOutOfRange:
      return "argument 'pos_items' holds item id {0} at position {1}, outside [0, {2})";
    case Err::kNegOutOfRange:
      return "argument 'negatives' holds item id {0} at position ({1}, {2}), outside [0, {3})";
    case Err::kItemOutOfRange:
      return "argument 'items' holds item id {0} at position ({1}, {2}), outside [0, {3}) (the "
             "columns of the gain table)";
    default:
      return "unknown error {0} {1} {2} {3}";
  }
}

// "autosample::<op>: <template with the values filled in>".
inline std::string format_value_error(Op op, Err err, const int64_t v[4]) {
  std::string out = std::string("autosample::") + op_name(op) + ": ";
  const char* t = error_template(err);
  while (*t) {
    if (*t == '{') {
      const char* close = std::strchr(t, '}');
      const std::string key(t + 1, close ? close : t + 1);
      if (close && key.size() == 1 && key[0] >= '0' && key[0] <= '3') {
        out += std::to_string(v[key[0] - '0']);
      } else if (close && key == "f0") {
        float f;
        const uint32_t bits = static_cast<uint32_t>(v[0]);
        std::memcpy(&f, &bits, sizeof f);
        out += std::to_string(f);
      } else if (close && key == "ptr") {
        out += csr_ptr_arg(op);
      } else if (close && key == "idx") {
        out += csr_idx_arg(op);
      } else {
        out += *t++;
        continue;
      }
      t = close + 1;
    } else {
      out += *t++;
    }
  }
  return out;
}

inline std::string format_value_error(Op op, Err err, int64_t v0, int64_t v1 = 0, int64_t v2 = 0,
                                      int64_t v3 = 0) {
  const int64_t v[4] = {v0, v1, v2, v3};
  return format_value_error(op, err, v);
}

// Bits of a float32 value as an int64 (for {f0}).
inline int64_t float_bits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return static_cast<int64_t>(bits);
}

}  // namespace autosample
