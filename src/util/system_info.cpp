#include "ulmfit/util/system_info.h"

#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include "ulmfit/util/cpu_load.h"
#include "ulmfit/util/error.h"
#include "ulmfit/util/files.h"

namespace ulmfit::util {

namespace fs = std::filesystem;

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

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  }
  return "unknown CPU";
}

Bf16Decision cached_bf16_speedup(const std::function<double()>& measure) {
  const std::string cpu = cpu_model_name();
  const std::string libtorch = TORCH_VERSION;
  char name[40];
  std::snprintf(name, sizeof(name), "bf16-%016llx.json",
                static_cast<unsigned long long>(fnv1a(cpu + '\x1f' + libtorch)));
  Bf16Decision d;
  d.cache_file = (user_cache_dir() / "precision" / name).string();
  auto read_cached = [&]() {
    try {
      const auto j = nlohmann::json::parse(read_file(d.cache_file));
      if (j.value("cpu", "") != cpu || j.value("libtorch", "") != libtorch || !j["bf16_matmul_speedup"].is_number()) {
        return false;
      }
      d.speedup = j["bf16_matmul_speedup"].get<double>();
      d.measured_at = j.value("measured", "");
      return d.speedup > 0;
    } catch (const std::exception&) {
      return false;  // absent or damaged: measure again
    }
  };
  if (fs::exists(d.cache_file) && read_cached()) return d;
  d.speedup = measure();
  const std::time_t now = std::time(nullptr);
  char when[32];
  std::strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  d.measured_at = when;
  const nlohmann::json record = {{"cpu", cpu}, {"libtorch", libtorch}, {"bf16_matmul_speedup", d.speedup},
                                 {"measured", d.measured_at}, {"threads", 1}};
  try {
    // A damaged file is replaced; otherwise the first of several processes
    // measuring at once wins, and the others take its figure, so that runs
    // started together cannot choose differently.
    if (fs::exists(d.cache_file)) {
      write_file_atomic(d.cache_file, record.dump(2) + "\n");
      d.measured_now = true;
    } else if (write_file_if_absent(d.cache_file, record.dump(2) + "\n")) {
      d.measured_now = true;
    } else if (!read_cached()) {
      d.measured_now = true;
    }
  } catch (const std::exception& e) {
    d.measured_now = true;
    d.cache_error = e.what();
  }
  return d;
}

RuntimeInfo resolve_runtime(const std::string& device, const std::string& precision, int threads) {
  auto info = resolve_runtime(device, precision, threads, detect_cpu_features());
  // Measure only where the answer decides something: auto on a CPU whose bf16
  // support alone does not tell whether bf16 pays; then decide again with it.
  // The figure is measured once per CPU model and LibTorch and kept in the
  // user's cache: measured at every start, a busy machine could tip two runs
  // of one config into different precisions.
  if (precision != "auto" || info.device != "cpu" || !info.cpu.bf16_needs_measuring()) return info;
  auto cpu = info.cpu;
  const auto decision = cached_bf16_speedup([] { return measure_bf16_matmul_speedup(1); });
  cpu.bf16_matmul_speedup = decision.speedup;
  auto decided = resolve_runtime(device, precision, threads, cpu);
  decided.bf16_decision = decision;
  return decided;
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

  if (threads < 0) throw ConfigError("threads: must be >= 0 (0 = every free core)");
  info.cores = static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  info.threads_requested = threads;
  const auto& threading = threading_setup();
  info.other_busy_cores = threading.other_busy_cores;
  info.passive_wait = threading.passive_wait;
  info.passive_for_own_threads = threading.passive_for_own_threads;
  info.wait_policy_from_user = threading.policy_from_user;
  info.threads = threads == 0 ? threads_for_free_cores(info.cores, info.other_busy_cores) : threads;
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
  const auto& d = info.bf16_decision;
  if (!d.cache_file.empty()) {
    out << "\nprecision auto: the bf16 figure was " << (d.measured_now ? "measured now" : "measured " + d.measured_at);
    if (d.cache_error.empty()) {
      out << " and is kept in " << d.cache_file << " (delete it to measure again)";
    } else {
      out << "; it could not be kept (" << d.cache_error << "), so the next run measures again";
    }
  }
  out << "\nthreads: " << info.threads;
  if (info.threads_requested == 0) {
    out << " of " << info.cores << " cores (threads: 0 takes the free ones";
    if (info.other_busy_cores >= 0) {
      out.precision(2);
      out << "; other processes were using " << info.other_busy_cores << " cores";
    }
    out << ")";
  }
  out << "; OpenMP waits "
      << (info.wait_policy_from_user ? "as OMP_WAIT_POLICY / GOMP_SPINCOUNT in the environment say"
                                     : info.passive_wait ? (info.passive_for_own_threads
                                                                ? "passively (the command's own threads share the cores)"
                                                                : "passively (another process is using a core)")
                                                         : "by spinning briefly (the machine was idle)");
  return out.str();
}

}  // namespace ulmfit::util
