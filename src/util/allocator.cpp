#include "ulmfit/util/allocator.h"

#include <malloc.h>

#include <cstdlib>
#include <cstring>

namespace ulmfit::util {

bool keep_freed_memory_for_reuse() {
#if defined(__GLIBC__)
  // A user's own malloc tunables are an explicit choice: leave them alone.
  if (const char* t = std::getenv("GLIBC_TUNABLES"); t != nullptr && std::strstr(t, "glibc.malloc.") != nullptr) {
    return false;
  }
  constexpr int kMmapThreshold = 32 << 20;  // DEFAULT_MMAP_THRESHOLD_MAX on 64-bit glibc
  constexpr int kTrimThreshold = 1 << 30;   // give memory back only past 1 GiB free at the top
  return mallopt(M_MMAP_THRESHOLD, kMmapThreshold) == 1 && mallopt(M_TRIM_THRESHOLD, kTrimThreshold) == 1;
#else
  return false;
#endif
}

void release_freed_memory() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

}  // namespace ulmfit::util
