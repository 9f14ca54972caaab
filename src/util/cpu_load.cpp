#include "ulmfit/util/cpu_load.h"

#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace ulmfit::util {
namespace {

ThreadingSetup g_setup;
bool g_prepared = false;
// Carries the start-up measurement across prepare_threading's re-execution.
constexpr const char* kCarriedLoad = "ULMFIT_STARTUP_OTHER_LOAD";

double seconds(clockid_t clock) {
  timespec ts{};
  ::clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

/// Busy clock ticks of all cores from /proc/stat's first line
/// ("cpu user nice system idle iowait irq softirq steal ..."); -1 on failure.
long long busy_ticks() {
  const int fd = ::open("/proc/stat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[512];
  const ssize_t n = ::read(fd, buf, sizeof(buf) - 1);
  ::close(fd);
  if (n < 5 || buf[0] != 'c' || buf[1] != 'p' || buf[2] != 'u' || buf[3] != ' ') return -1;
  buf[n] = '\0';
  long long field[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  const char* p = buf + 3;
  for (long long& f : field) {
    while (*p == ' ') ++p;
    if (*p < '0' || *p > '9') return -1;
    while (*p >= '0' && *p <= '9') f = f * 10 + (*p++ - '0');
  }
  // idle (3) and iowait (4) are not busy.
  return field[0] + field[1] + field[2] + field[5] + field[6] + field[7];
}

/// The start-up measurement, without touching OpenMP's policy.
void measure_setup() {
  g_setup.other_busy_cores = measure_other_busy_cores(100);
  g_setup.policy_from_user = std::getenv("OMP_WAIT_POLICY") != nullptr || std::getenv("GOMP_SPINCOUNT") != nullptr;
}

}  // namespace

double measure_other_busy_cores(int window_ms) {
  const long hz = ::sysconf(_SC_CLK_TCK);
  const long long busy0 = busy_ticks();
  if (busy0 < 0 || hz <= 0) return -1;
  const double wall0 = seconds(CLOCK_MONOTONIC), self0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
  timespec wait{window_ms / 1000, static_cast<long>(window_ms % 1000) * 1000000L};
  while (::nanosleep(&wait, &wait) != 0) {
  }
  const long long busy1 = busy_ticks();
  const double wall = seconds(CLOCK_MONOTONIC) - wall0, self = seconds(CLOCK_PROCESS_CPUTIME_ID) - self0;
  if (busy1 < 0 || wall <= 0) return -1;
  const double others = (static_cast<double>(busy1 - busy0) / static_cast<double>(hz) - self) / wall;
  return others > 0 ? others : 0.0;
}

void prepare_threading(char** argv, bool own_threads_share_cores) {
  if (g_prepared) return;
  g_prepared = true;
  // After the re-execution below: take what the first start measured.
  if (const char* carried = std::getenv(kCarriedLoad); carried != nullptr) {
    g_setup.other_busy_cores = std::strtod(carried, nullptr);
    g_setup.passive_wait = true;
    g_setup.passive_for_own_threads = own_threads_share_cores && g_setup.other_busy_cores < kBusyCoreThreshold;
    ::unsetenv(kCarriedLoad);
    return;
  }
  measure_setup();
  if (g_setup.policy_from_user || argv == nullptr) return;
  if (g_setup.other_busy_cores < kBusyCoreThreshold && !own_threads_share_cores) return;
  // OpenMP read its environment when LibTorch was loaded, before main(): the
  // policy only takes effect in a fresh process image. Nothing has been read or
  // written yet, so starting again costs only the load time (~0.3 s).
  char load[32];
  std::snprintf(load, sizeof(load), "%.3f", g_setup.other_busy_cores);
  ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  ::setenv(kCarriedLoad, load, 1);
  ::execv("/proc/self/exe", argv);
  // exec failed (no /proc): carry on with spinning waits.
  ::unsetenv("OMP_WAIT_POLICY");
  ::unsetenv(kCarriedLoad);
}

const ThreadingSetup& threading_setup() {
  if (!g_prepared) {
    // Too late to change OpenMP's policy here: only measure.
    g_prepared = true;
    measure_setup();
  }
  return g_setup;
}

int threads_for_free_cores(int cores, double other_busy_cores) {
  if (other_busy_cores <= 0) return cores > 0 ? cores : 1;
  const int busy = static_cast<int>(std::floor(other_busy_cores + 0.5));
  return cores - busy > 1 ? cores - busy : 1;
}

}  // namespace ulmfit::util
