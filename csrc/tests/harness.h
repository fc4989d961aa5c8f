// Minimal test harness for the header tests: TEST(name) registers a function, CHECK* record
// failures with file:line, main() runs every test and returns non-zero when any check failed.
#pragma once
#include <cstdio>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace as_test {

struct Registry {
  std::vector<std::pair<std::string, std::function<void()>>> tests;
  int failures = 0;
  static Registry& get() {
    static Registry r;
    return r;
  }
};

struct Register {
  Register(const char* name, std::function<void()> fn) {
    Registry::get().tests.emplace_back(name, std::move(fn));
  }
};

inline void fail(const char* file, int line, const std::string& what) {
  ++Registry::get().failures;
  std::fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, what.c_str());
}

template <typename A, typename B>
void check_eq(const A& a, const B& b, const char* expr, const char* file, int line) {
  if (!(a == b)) {
    std::ostringstream os;
    os << expr << " (" << +a << " vs " << +b << ")";
    fail(file, line, os.str());
  }
}

inline int run_all() {
  Registry& r = Registry::get();
  for (auto& [name, fn] : r.tests) {
    const int before = r.failures;
    fn();
    std::printf("[%s] %s\n", r.failures == before ? "  OK  " : "FAILED", name.c_str());
  }
  std::printf("%zu tests, %d failed checks\n", r.tests.size(), r.failures);
  return r.failures == 0 ? 0 : 1;
}

}  // namespace as_test

#define TEST(name)                                                   \
  static void name();                                                \
  static as_test::Register name##_registered(#name, name);           \
  static void name()
#define CHECK(cond) \
  do { if (!(cond)) as_test::fail(__FILE__, __LINE__, #cond); } while (0)
#define CHECK_EQ(a, b) as_test::check_eq((a), (b), #a " == " #b, __FILE__, __LINE__)
#define TEST_MAIN() \
  int main() { return as_test::run_all(); }
