#pragma once
/// What the toolkit will run on: LibTorch version, device, threads, precision,
/// CPU features and a check that the linked BLAS is not a slow reference one.
///
///   auto info = ulmfit::util::resolve_runtime("auto", "auto", 0);
///   ulmfit::util::apply_runtime(info);       // sets LibTorch's thread count
///   std::cerr << describe_runtime(info);
#include <string>
#include <vector>

namespace ulmfit::util {

struct CpuFeatures {
  bool avx512_bf16 = false;
  bool amx_bf16 = false;
  bool bf16() const { return avx512_bf16 || amx_bf16; }
};

/// Reads the CPU's bf16 support with cpuid (x86-64; all false elsewhere).
CpuFeatures detect_cpu_features();

struct RuntimeInfo {
  std::string libtorch_version;
  std::string device;     // "cpu" or "cuda:N"
  int threads = 1;        // intra-op threads LibTorch will use
  std::string precision;  // "fp32", "bf16" or "fp16"
  bool cuda_built = false;
  bool cuda_available = false;
  CpuFeatures cpu;
  std::vector<std::string> warnings;
};

/// Resolves the config's `device` (auto | cpu | cuda | cuda:N), `precision`
/// (auto | fp32 | bf16 | fp16) and `threads` (0 = every core) against this
/// machine. Throws ConfigError when asked for what the machine lacks (cuda
/// without a GPU, fp16 on CPU). `cpu` overrides detection (for tests).
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
