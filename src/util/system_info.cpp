#include "ulmfit/util/system_info.h"

#include <torch/torch.h>

#include <chrono>
#include <sstream>
#include <thread>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include "ulmfit/util/error.h"

namespace ulmfit::util {

CpuFeatures detect_cpu_features() {
  CpuFeatures f;
#if defined(__x86_64__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) {
    f.amx_bf16 = (edx >> 22) & 1U;
    const unsigned max_subleaf = eax;
    if (max_subleaf >= 1 && __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx)) {
      f.avx512_bf16 = (eax >> 5) & 1U;
    }
  }
#endif
  return f;
}

namespace {

/// Seconds of the fastest of `calls` products (after one warm-up, which
/// allocates and dispatches): other processes on the machine only slow some.
double best_product_seconds(const torch::Tensor& a, const torch::Tensor& b, int calls) {
  auto c = torch::mm(a, b);
  double best = 1e30;
  for (int i = 0; i < calls; ++i) {
    const auto start = std::chrono::steady_clock::now();
    c = torch::mm(a, b);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return std::max(best, 1e-9);
}

}  // namespace

double measure_bf16_matmul_speedup(int threads, int size) {
  torch::NoGradGuard no_grad;
  const int before = at::get_num_threads();
  at::set_num_threads(std::max(1, threads));
  const auto a = torch::rand({size, size});
  const auto b = torch::rand({size, size});
  const double fp32 = best_product_seconds(a, b, 3);
  const double bf16 = best_product_seconds(a.to(torch::kBFloat16), b.to(torch::kBFloat16), 3);
  at::set_num_threads(before);
  return fp32 / bf16;
}

RuntimeInfo resolve_runtime(const std::string& device, const std::string& precision, int threads) {
  auto info = resolve_runtime(device, precision, threads, detect_cpu_features());
  // Measure only where the answer decides something: auto on a CPU whose bf16
  // support alone does not tell whether bf16 pays; then decide again with it.
  if (precision != "auto" || info.device != "cpu" || !info.cpu.bf16_needs_measuring()) return info;
  auto cpu = info.cpu;
  cpu.bf16_matmul_speedup = measure_bf16_matmul_speedup(info.threads);
  return resolve_runtime(device, precision, threads, cpu);
}

RuntimeInfo resolve_runtime(const std::string& device, const std::string& precision, int threads,
                            const CpuFeatures& cpu) {
  RuntimeInfo info;
  info.libtorch_version = TORCH_VERSION;
  info.cuda_built = ULMFIT_WITH_CUDA != 0;
  info.cuda_available = torch::cuda::is_available();
  info.cpu = cpu;

  if (device == "auto") {
    info.device = info.cuda_available ? "cuda:0" : "cpu";
  } else if (device == "cpu") {
    info.device = "cpu";
  } else if (device == "cuda" || device.rfind("cuda:", 0) == 0) {
    if (!info.cuda_available) {
      throw ConfigError("device: '" + device + "' asked for, but no CUDA GPU is available" +
                        (info.cuda_built ? "" : " (this build has no CUDA path)"));
    }
    info.device = device == "cuda" ? "cuda:0" : device;
  } else {
    throw ConfigError("device: unknown device '" + device + "' (auto | cpu | cuda | cuda:N)");
  }
  const bool on_cuda = info.device != "cpu";

  if (precision == "auto") {
    const bool bf16_pays = cpu.amx_bf16 || (cpu.bf16_needs_measuring() && cpu.bf16_matmul_speedup >= kMinBf16Speedup);
    info.precision = (on_cuda || bf16_pays) ? "bf16" : "fp32";
  } else if (precision == "fp32" || precision == "bf16") {
    info.precision = precision;
  } else if (precision == "fp16") {
    if (!on_cuda) throw ConfigError("precision: fp16 needs a CUDA device; use bf16 or fp32 on CPU");
    info.precision = precision;
  } else {
    throw ConfigError("precision: unknown precision '" + precision + "' (auto | fp32 | bf16 | fp16)");
  }
  if (info.precision == "bf16" && !on_cuda && !cpu.bf16()) {
    info.warnings.push_back("bf16 asked for on a CPU without AVX-512 BF16 or AMX: it will be slow");
  }

  if (threads < 0) throw ConfigError("threads: must be >= 0 (0 = every core)");
  const int cores = static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  info.threads = threads == 0 ? cores : threads;
  return info;
}

void apply_runtime(const RuntimeInfo& info) { at::set_num_threads(info.threads); }

double measure_matmul_gflops(int size) {
  torch::NoGradGuard no_grad;
  // One thread: the figure then speaks of the BLAS, not of how busy the other
  // cores are.
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  const double seconds = best_product_seconds(torch::rand({size, size}), torch::rand({size, size}), 7);
  at::set_num_threads(threads);
  const double flops = 2.0 * size * size * static_cast<double>(size);
  return flops / seconds / 1e9;
}

void check_blas(RuntimeInfo& info) {
  const double gflops = measure_matmul_gflops();
  if (gflops < kSlowBlasGflops) {
    std::ostringstream msg;
    msg.precision(3);
    msg << "the linked BLAS multiplies matrices at " << gflops
        << " GFLOP/s: it looks like a slow reference implementation; link LibTorch with "
           "MKL or OpenBLAS (scripts/setup installs the PyPI wheel, which has MKL)";
    info.warnings.push_back(msg.str());
  }
}

std::string describe_runtime(const RuntimeInfo& info) {
  std::ostringstream out;
  out << "LibTorch " << info.libtorch_version << (info.cuda_built ? " (CUDA build)" : " (CPU build)")
      << "; device " << info.device << "; " << info.threads << " threads; precision "
      << info.precision << "; CPU bf16: "
      << (info.cpu.amx_bf16 ? "AMX" : (info.cpu.avx512_bf16 ? "AVX-512 BF16" : "none"));
  if (info.cpu.bf16_matmul_speedup > 0) {
    out.precision(2);
    out << " (bf16 products " << info.cpu.bf16_matmul_speedup << "x fp32 here"
        << (info.cpu.bf16_matmul_speedup >= kMinBf16Speedup ? ")" : ", so auto keeps fp32)");
  }
  return out.str();
}

}  // namespace ulmfit::util
