#pragma once
/// How busy the machine's cores are with other work, and the threading set-up
/// chosen from it. On a machine where another process holds a core, OpenMP
/// threads that spin while they wait take turns with it, and every parallel
/// region waits for the one that lost its turn: LSTM training on two threads
/// fell from 11,600 to 3,800 tokens/s on a 2-core AMD EPYC with one core busy,
/// below one thread's 6,700. Waiting passively avoids the collapse but costs a
/// quarter of the idle speed (8,800), so the choice follows the load measured
/// at start-up: `threads: 0` takes the cores that are free, and OpenMP waits
/// passively only when another process is using a core.
///
///   const auto& t = ulmfit::util::threading_setup();   // measured once per process
///   int n = ulmfit::util::threads_for_free_cores(cores, t.other_busy_cores);
namespace ulmfit::util {

/// CPU time that other processes used over `window_ms`, in cores (the machine's
/// busy time from /proc/stat less this process's own); -1 where /proc/stat is
/// missing.
double measure_other_busy_cores(int window_ms);

struct ThreadingSetup {
  double other_busy_cores = -1;  // at start-up; -1 = unknown
  bool passive_wait = false;     // ulmfit started itself again with OMP_WAIT_POLICY=PASSIVE
  bool passive_for_own_threads = false;  // ... because the command's own threads share the cores (serve)
  bool policy_from_user = false; // OMP_WAIT_POLICY or GOMP_SPINCOUNT was already in the environment
};

/// At least this much other load (in cores) makes OpenMP wait passively.
constexpr double kBusyCoreThreshold = 0.5;

/// Measures the load (100 ms) and, when another process is using a core and
/// the environment does not set a policy, starts the program again with
/// OMP_WAIT_POLICY=PASSIVE (execv of /proc/self/exe with the same arguments):
/// OpenMP reads its environment once, when LibTorch is loaded, before main(),
/// so only a new process image sees it. Call first thing in main(), before
/// anything is read or written. Elsewhere threading_setup() only measures.
/// `own_threads_share_cores`: the command runs other threads beside the
/// model's (serve's HTTP threads, and a load generator on the same host),
/// which spinning OpenMP threads would starve between batches; wait
/// passively whatever the load.
void prepare_threading(char** argv, bool own_threads_share_cores = false);

/// What prepare_threading found (measured on first use if it never ran).
const ThreadingSetup& threading_setup();

/// Threads for `threads: 0`: the cores not busy with other work, at least one.
int threads_for_free_cores(int cores, double other_busy_cores);

}  // namespace ulmfit::util
