#pragma once
/// What the toolkit will run on: LibTorch version, device, threads, precision,
/// CPU features and a check that the linked BLAS is not a slow reference one.
///
///   auto info = ulmfit::util::resolve_runtime("auto", "auto", 0);
///   ulmfit::util::apply_runtime(info);       // sets LibTorch's thread count
///   std::cerr << describe_runtime(info);
#include <functional>
#include <string>
#include <vector>

namespace ulmfit::util {

struct CpuFeatures {
  bool avx512_bf16 = false;
  bool amx_bf16 = false;
  /// Throughput of a bf16 matrix product over an fp32 one on this machine's
  /// threads; 0 = not measured. Only AVX-512 BF16 without AMX needs it: there
  /// bf16 may be faster (2.7x on an AMD EPYC) or slower (0.5x on an Intel Xeon
  /// whose hypervisor hides AMX) than fp32, depending on the chip and BLAS.
  double bf16_matmul_speedup = 0;
  bool bf16() const { return avx512_bf16 || amx_bf16; }
  /// Whether only a measurement can tell if bf16 pays on this CPU.
  bool bf16_needs_measuring() const { return avx512_bf16 && !amx_bf16; }
};

/// Reads the CPU's bf16 support with cpuid (x86-64; all false elsewhere).
CpuFeatures detect_cpu_features();

/// `precision: auto` picks bf16 on a CPU with AVX-512 BF16 but no AMX only
/// when its bf16 products measure at least this much faster than fp32: below
/// that the casts around each product eat the gain (measured: 2.7x faster
/// products made LSTM training 1.16-1.3x faster).
constexpr double kMinBf16Speedup = 1.5;

/// Times a bf16 and an fp32 matrix product (size^3) on `threads` threads and
/// returns fp32 time / bf16 time, the best of a few calls each (about 0.1 s).
double measure_bf16_matmul_speedup(int threads, int size = 1024);

/// Where `precision: auto`'s bf16 figure came from.
struct Bf16Decision {
  double speedup = 0;
  std::string cache_file;   // empty = not measured (not needed)
  std::string measured_at;  // "YYYY-MM-DD HH:MM UTC"
  bool measured_now = false;
  std::string cache_error;  // why it could not be kept, if it could not
};

/// The bf16 speedup of this CPU model under this LibTorch: read from
/// <user cache>/precision/, or measured with `measure` and kept there (the
/// first of several processes measuring at once wins; the others use its
/// figure). Measured on one thread: the ratio speaks of the instructions and
/// the BLAS, and one thread is least disturbed by a busy machine.
Bf16Decision cached_bf16_speedup(const std::function<double()>& measure);

/// The CPU's model name from /proc/cpuinfo ("unknown CPU" elsewhere).
std::string cpu_model_name();

struct RuntimeInfo {
  std::string libtorch_version;
  std::string device;     // "cpu" or "cuda:N"
  int threads = 1;        // intra-op threads LibTorch will use
  int threads_requested = 0;  // the config's threads (0 = every free core)
  int cores = 1;
  double other_busy_cores = -1;  // other processes' load at start-up, in cores; -1 = unknown
  bool passive_wait = false;     // OpenMP waits passively (set at start-up because of that load)
  bool passive_for_own_threads = false;  // ... because the command's own threads share the cores
  bool wait_policy_from_user = false;
  Bf16Decision bf16_decision;
  std::string precision;  // "fp32", "bf16" or "fp16"
  bool cuda_built = false;
  bool cuda_available = false;
  CpuFeatures cpu;
  std::vector<std::string> warnings;
};

/// Resolves the config's `device` (auto | cpu | cuda | cuda:N), `precision`
/// (auto | fp32 | bf16 | fp16) and `threads` (0 = every free core) against this
/// machine. Throws ConfigError when asked for what the machine lacks (cuda
/// without a GPU, fp16 on CPU). `auto` is bf16 on CUDA, on AMX and on AVX-512
/// BF16 CPUs whose measured bf16 products are kMinBf16Speedup faster, else
/// fp32. `cpu` overrides detection and measurement (for tests).
RuntimeInfo resolve_runtime(const std::string& device, const std::string& precision, int threads);
RuntimeInfo resolve_runtime(const std::string& device, const std::string& precision, int threads,
                            const CpuFeatures& cpu);

/// Sets LibTorch's intra-op thread count to info.threads.
void apply_runtime(const RuntimeInfo& info);

/// Measures a float32 matrix product on one thread and returns GFLOP/s (a few ms).
double measure_matmul_gflops(int size = 384);

/// Below this a BLAS is taken for a slow reference implementation: optimised
/// ones reach tens of GFLOP/s on one core of any current x86 CPU.
constexpr double kSlowBlasGflops = 8.0;

/// Adds a warning to `info` when the linked BLAS is slow.
void check_blas(RuntimeInfo& info);

/// Multi-line, human-readable summary for logs and --version.
std::string describe_runtime(const RuntimeInfo& info);

}  // namespace ulmfit::util
