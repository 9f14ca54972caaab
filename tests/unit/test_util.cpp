#include <cmath>
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "../test_helpers.h"
#include "ulmfit/util/cpu_load.h"
#include "ulmfit/util/error.h"
#include "ulmfit/util/files.h"
#include "ulmfit/util/svg_chart.h"
#include "ulmfit/util/system_info.h"
#include "ulmfit/util/utf8.h"

namespace ulmfit {
namespace {

TEST(Files, AtomicWriteReplacesAndLeavesNoTemporaryFile) {
  testing::TempDir dir;
  const auto path = dir / "sub/meta.yaml";
  util::write_file_atomic(path, "one");
  util::write_file_atomic(path, "two");
  EXPECT_EQ(util::read_file(path), "two");
  std::size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(path.parent_path())) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1u);
}

TEST(Files, UncommittedWriterKeepsTheOldFile) {
  testing::TempDir dir;
  const auto path = dir / "model.pt";
  util::write_file_atomic(path, "old");
  {
    util::AtomicFileWriter writer(path);
    writer.write("half", 4);
  }  // destroyed without commit, as when an exception unwinds
  EXPECT_EQ(util::read_file(path), "old");
}

TEST(Files, UnwritableFolderIsARuntimeFailure) {
  EXPECT_THROW(util::write_file_atomic("/proc/ulmfit-cannot-write/x", "x"), RuntimeFailure);
}

TEST(Files, MappedFileSeesTheBytes) {
  testing::TempDir dir;
  const auto path = testing::write_file(dir / "m.bin", "abcdef");
  util::MappedFile m(path);
  ASSERT_EQ(m.size(), 6u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(m.data()), 6), "abcdef");
  EXPECT_THROW(util::MappedFile(dir / "none"), DataError);
}

TEST(Utf8, FindsTheFirstInvalidByte) {
  EXPECT_EQ(util::find_invalid_utf8("plain"), std::string_view::npos);
  EXPECT_EQ(util::find_invalid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), std::string_view::npos);
  EXPECT_EQ(util::find_invalid_utf8("ab\xff"), 2u);
  EXPECT_EQ(util::find_invalid_utf8("\xc0\xaf"), 0u);          // overlong
  EXPECT_EQ(util::find_invalid_utf8("x\xed\xa0\x80"), 1u);     // surrogate
  EXPECT_EQ(util::find_invalid_utf8("\xf4\x90\x80\x80"), 0u);  // past U+10FFFF
  EXPECT_EQ(util::find_invalid_utf8("ok\xe2\x82"), 2u);        // cut short
}

TEST(SystemInfo, PrecisionAutoFollowsCpuSupport) {
  util::CpuFeatures none;
  util::CpuFeatures amx;
  amx.amx_bf16 = true;
  util::CpuFeatures bf16;  // AVX-512 BF16 whose products measured faster than fp32
  bf16.avx512_bf16 = true;
  bf16.bf16_matmul_speedup = 2.7;
  util::CpuFeatures slow_bf16 = bf16;  // the same instructions, measured slower
  slow_bf16.bf16_matmul_speedup = 0.5;
  util::CpuFeatures unmeasured = bf16;
  unmeasured.bf16_matmul_speedup = 0;
  EXPECT_EQ(util::resolve_runtime("cpu", "auto", 1, none).precision, "fp32");
  EXPECT_EQ(util::resolve_runtime("cpu", "auto", 1, amx).precision, "bf16");
  EXPECT_EQ(util::resolve_runtime("cpu", "auto", 1, bf16).precision, "bf16");
  EXPECT_EQ(util::resolve_runtime("cpu", "auto", 1, slow_bf16).precision, "fp32");
  EXPECT_EQ(util::resolve_runtime("cpu", "auto", 1, unmeasured).precision, "fp32");
  EXPECT_EQ(util::resolve_runtime("cpu", "bf16", 1, slow_bf16).precision, "bf16");  // asked for, given
  EXPECT_EQ(util::resolve_runtime("cpu", "fp32", 1, bf16).precision, "fp32");
  EXPECT_THROW(util::resolve_runtime("cpu", "fp16", 1, bf16), ConfigError);
  EXPECT_FALSE(util::resolve_runtime("cpu", "bf16", 1, none).warnings.empty());
}

/// Points the user cache ($ULMFIT_CACHE) at a folder for one test.
class ScopedCache {
 public:
  explicit ScopedCache(const std::filesystem::path& dir) {
    if (const char* old = std::getenv("ULMFIT_CACHE")) old_ = old;
    ::setenv("ULMFIT_CACHE", dir.c_str(), 1);
  }
  ~ScopedCache() {
    if (old_.empty()) {
      ::unsetenv("ULMFIT_CACHE");
    } else {
      ::setenv("ULMFIT_CACHE", old_.c_str(), 1);
    }
  }

 private:
  std::string old_;
};

TEST(SystemInfo, Bf16SpeedupIsAMeasuredRatio) {
  testing::TempDir dir;
  ScopedCache cache(dir.path());  // resolve_runtime keeps its figure there
  const double speedup = util::measure_bf16_matmul_speedup(1, 256);
  EXPECT_TRUE(std::isfinite(speedup));
  EXPECT_GT(speedup, 0.01);
  EXPECT_LT(speedup, 100.0);
  // Detection measures exactly when auto needs it to decide.
  const auto info = util::resolve_runtime("cpu", "auto", 1);
  const bool measured = info.cpu.avx512_bf16 && !info.cpu.amx_bf16;
  EXPECT_EQ(info.cpu.bf16_matmul_speedup > 0, measured);
  EXPECT_EQ(util::resolve_runtime("cpu", "fp32", 1).cpu.bf16_matmul_speedup, 0.0);
}

TEST(SystemInfo, Bf16FigureIsMeasuredOncePerCpuAndKept) {
  testing::TempDir dir;
  ScopedCache cache(dir.path());
  int calls = 0;
  const auto first = util::cached_bf16_speedup([&] { return ++calls, 2.0; });
  EXPECT_TRUE(first.measured_now);
  EXPECT_EQ(first.speedup, 2.0);
  EXPECT_TRUE(std::filesystem::exists(first.cache_file));
  EXPECT_THAT(first.cache_file, ::testing::StartsWith(dir.path().string()));
  // A later run, on a machine now so busy that it would measure 1.2x, keeps the first figure.
  const auto second = util::cached_bf16_speedup([&] { return ++calls, 1.2; });
  EXPECT_FALSE(second.measured_now);
  EXPECT_EQ(second.speedup, 2.0);
  EXPECT_EQ(second.measured_at, first.measured_at);
  EXPECT_EQ(calls, 1);
  // A damaged file is measured again and replaced.
  util::write_file_atomic(first.cache_file, "{not json");
  const auto third = util::cached_bf16_speedup([&] { return ++calls, 1.7; });
  EXPECT_TRUE(third.measured_now);
  EXPECT_EQ(third.speedup, 1.7);
  EXPECT_EQ(util::cached_bf16_speedup([] { return 9.0; }).speedup, 1.7);
}

TEST(Files, WriteIfAbsentLeavesAnExistingFileAlone) {
  testing::TempDir dir;
  EXPECT_TRUE(util::write_file_if_absent(dir / "a", "first"));
  EXPECT_FALSE(util::write_file_if_absent(dir / "a", "second"));
  EXPECT_EQ(util::read_file(dir / "a"), "first");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1);  // no temporary left
}

TEST(CpuLoad, ThreadsZeroTakesTheFreeCores) {
  EXPECT_EQ(util::threads_for_free_cores(2, 0.0), 2);
  EXPECT_EQ(util::threads_for_free_cores(2, 0.4), 2);
  EXPECT_EQ(util::threads_for_free_cores(2, 1.1), 1);
  EXPECT_EQ(util::threads_for_free_cores(2, 3.0), 1);
  EXPECT_EQ(util::threads_for_free_cores(16, 1.0), 15);
  EXPECT_EQ(util::threads_for_free_cores(4, -1), 4);  // unknown load: every core
}

TEST(CpuLoad, AnotherProcessSpinningCountsAsBusy) {
  if (util::measure_other_busy_cores(10) < 0) GTEST_SKIP() << "no /proc/stat here";
  double busy = 0;
  {
    testing::BusyProcess spinner(std::chrono::milliseconds(600));
    ASSERT_TRUE(spinner.started());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    busy = util::measure_other_busy_cores(300);
  }
  // At least most of a core, whatever else runs beside this test.
  EXPECT_GE(busy, 0.5);
  EXPECT_LE(busy, static_cast<double>(std::thread::hardware_concurrency()) + 0.5);
}

TEST(SvgChart, DrawsEveryPanelSeriesAndMarker) {
  util::Chart chart{"a <title>", "step", false, {}};
  chart.panels.push_back({"loss", {{"train", {{0, 2.0}, {1, 1.5}, {2, NAN}, {3, 1.0}}, false}, {"valid", {{3, 1.2}}, true}},
                          {{2, "unfreeze"}}});
  chart.panels.push_back({"lr", {{"lr", {{0, 1e-3}, {3, 1e-4}}, false}}, {}});
  const auto svg = util::render_svg(chart);
  EXPECT_EQ(svg.rfind("<svg", 0), 0U);
  EXPECT_THAT(svg, ::testing::HasSubstr("a &lt;title&gt;"));  // text is escaped
  auto count = [&](const std::string& what) {
    std::size_t n = 0;
    for (auto at = svg.find(what); at != std::string::npos; at = svg.find(what, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("<polyline"), 2U);  // train loss and lr; valid is dots
  EXPECT_EQ(count("<circle"), 1U);
  EXPECT_EQ(count("stroke-dasharray"), 1U);
  // The NaN point is left out of the line: three points remain.
  const auto line = svg.substr(svg.find("points=\"") + 8);
  EXPECT_EQ(std::count(line.begin(), line.begin() + static_cast<std::ptrdiff_t>(line.find('"')), ','), 3);
  // A log axis labels its decades.
  util::Chart log_chart{"", "lr", true, {{"loss", {{"l", {{1e-5, 1}, {1e-1, 2}}, false}}, {}}}};
  EXPECT_THAT(util::render_svg(log_chart), ::testing::HasSubstr(">1e-3<"));
}

TEST(SystemInfo, ThreadsAndDevice) {
  const auto info = util::resolve_runtime("auto", "fp32", 0);
  EXPECT_GE(info.threads, 1);
  EXPECT_EQ(util::resolve_runtime("cpu", "fp32", 3).threads, 3);
  EXPECT_THROW(util::resolve_runtime("tpu", "fp32", 1), ConfigError);
  if (!info.cuda_available) {
    EXPECT_EQ(info.device, "cpu");
    EXPECT_THROW(util::resolve_runtime("cuda", "fp32", 1), ConfigError);
  }
}

TEST(SystemInfo, LinkedBlasIsNotAReferenceImplementation) {
  // The wheel's MKL runs a 384^3 product far above the slow-BLAS line.
  EXPECT_GT(util::measure_matmul_gflops(), util::kSlowBlasGflops);
}

}  // namespace
}  // namespace ulmfit
