#pragma once
// Where the conformance tests find the bundled MiniLM and the fixtures made
// by scripts/conformance-fixtures (scripts/test runs it first). A missing
// fixture fails the test with that instruction: it is never skipped.
#include <cstdlib>
#include <filesystem>

namespace ulmfit::testing {

inline std::filesystem::path data_dir() {
  const char* env = std::getenv("ULMFIT_DATA");
  return env && *env ? std::filesystem::path(env) : std::filesystem::path(ULMFIT_SOURCE_DIR) / "data" / "datasets";
}
inline std::filesystem::path fixtures_dir() {
  const char* env = std::getenv("ULMFIT_FIXTURES");
  return env && *env ? std::filesystem::path(env) : data_dir() / "conformance";
}
inline std::filesystem::path minilm_dir() { return data_dir() / "models" / "all-MiniLM-L6-v2"; }

}  // namespace ulmfit::testing

#define ULMFIT_REQUIRE_FIXTURE(path)                                                                     \
  ASSERT_TRUE(std::filesystem::exists(path)) << (path) << " is missing: run scripts/conformance-fixtures " \
                                                          "(scripts/test runs it)"
