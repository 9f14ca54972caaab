#include <cmath>

#include "../test_helpers.h"
#include "ulmfit/util/error.h"
#include "ulmfit/util/files.h"
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

TEST(SystemInfo, Bf16SpeedupIsAMeasuredRatio) {
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
