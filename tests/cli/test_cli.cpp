// End-to-end tests of the `ulmfit` binary: exit codes, messages and outputs.
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "../test_helpers.h"
#include "cli_runner.h"
#include "ulmfit/util/cpu_load.h"

namespace ulmfit {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::write_file;

std::size_t count_lines(const std::string& s) { return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n')); }

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string lines;
    for (const auto& d : testing::tiny_documents(200)) lines += d + "\n";
    corpus_ = write_file(dir_ / "corpus.txt", lines);
    config_ = write_file(dir_ / "c.yaml",
                         "threads: 1\ntokenizer:\n  vocab_size: 40\ndata:\n  train:\n    path: corpus.txt\n"
                         "  cache_dir: cache\ntrain:\n  bptt: 16\n");
  }
  testing::TempDir dir_;
  std::filesystem::path corpus_, config_;
};

TEST_F(Cli, VersionReportsRuntime) {
  const auto r = cli_run("--version", dir_.path());
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("ulmfit 0.1.0"));
  EXPECT_THAT(r.out, HasSubstr("LibTorch 2."));
  EXPECT_THAT(r.out, HasSubstr("threads; precision"));
  EXPECT_THAT(r.out, HasSubstr("OpenMP waits"));
  EXPECT_THAT(cli_run("--version", dir_.path()).out, HasSubstr("OpenMP waits"));
}

TEST_F(Cli, ABusyCoreMakesOpenMpWaitPassively) {
  // Another process holds a core while ulmfit starts: it starts itself again
  // with OMP_WAIT_POLICY=PASSIVE, which libgomp then reports (GOMP_SPINCOUNT 0).
  if (util::measure_other_busy_cores(10) < 0) GTEST_SKIP() << "no /proc/stat here: the load cannot be measured";
  CliResult busy, chosen;
  {
    testing::BusyProcess spinner(std::chrono::seconds(20));
    ASSERT_TRUE(spinner.started());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    busy = cli_run("--version", dir_.path(), "", "-u OMP_WAIT_POLICY -u GOMP_SPINCOUNT OMP_DISPLAY_ENV=verbose");
    chosen = cli_run("--version", dir_.path(), "", "OMP_WAIT_POLICY=active");
  }
  EXPECT_THAT(busy.out, HasSubstr("OpenMP waits passively"));
  EXPECT_THAT(busy.out, HasSubstr("threads: 0 takes the free ones"));
  EXPECT_THAT(busy.err, HasSubstr("GOMP_SPINCOUNT = '0'"));
  // A policy in the environment is the user's choice: kept, and said so.
  EXPECT_THAT(chosen.out, HasSubstr("as OMP_WAIT_POLICY / GOMP_SPINCOUNT in the environment say"));
}

TEST_F(Cli, HelpShowsConfigDefaults) {
  const auto r = cli_run("pretrain --help", dir_.path());
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("train.bptt = 72"));
  EXPECT_THAT(r.out, HasSubstr("model.backbone = \"awd_lstm\""));
  EXPECT_THAT(cli_run("generate --help", dir_.path()).out, HasSubstr("--temperature"));
}

TEST_F(Cli, UnknownKeyExitsTwoWithOneLine) {
  write_file(dir_ / "bad.yaml", "train:\n  bptt: 16\n  epocs: 3\n");
  const auto r = cli_run("pretrain --config " + (dir_ / "bad.yaml").string(), dir_.path());
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "error: " + (dir_ / "bad.yaml").string() + ":3:3: train.epocs: unknown key\n");
}

TEST_F(Cli, StringWhereNumberGoesExitsTwo) {
  write_file(dir_ / "bad.yaml", "train:\n  batch_size: lots\n");
  const auto r = cli_run("pretrain --config " + (dir_ / "bad.yaml").string(), dir_.path());
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("bad.yaml:2:15: train.batch_size: expected an integer, got 'lots'"));
  EXPECT_EQ(count_lines(r.err), 1u);
}

TEST_F(Cli, MissingDataFileExitsTwoNamingFileAndKey) {
  write_file(dir_ / "bad.yaml", "threads: 1\ndata:\n  train: {path: nowhere.txt}\n");
  const auto r = cli_run("pretrain --config " + (dir_ / "bad.yaml").string(), dir_.path());
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("bad.yaml:3:17: data.train.path: not found: " + (dir_ / "nowhere.txt").string()));
  EXPECT_EQ(count_lines(r.err), 1u);
}

TEST_F(Cli, MissingConfigAndBadUsageExitTwo) {
  EXPECT_EQ(cli_run("pretrain --config /no/such.yaml", dir_.path()).code, 2);
  EXPECT_EQ(cli_run("pretrain", dir_.path()).code, 2);
  EXPECT_EQ(cli_run("frobnicate", dir_.path()).code, 2);
  const auto bad_set = cli_run("pretrain --config " + config_.string() + " --set model.layers=-1", dir_.path());
  EXPECT_EQ(bad_set.code, 2);
  EXPECT_THAT(bad_set.err, HasSubstr("--set model.layers: must be >= 1, got -1"));
}

TEST_F(Cli, DumpConfigPrintsTheResolvedConfig) {
  const auto r = cli_run("pretrain --config " + config_.string() + " --set train.bptt=20 --dump-config", dir_.path());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("bptt: 20"));
  EXPECT_THAT(r.out, HasSubstr("vocab_size: 40"));
  EXPECT_THAT(r.out, HasSubstr(corpus_.string()));
  // The dump is itself a valid config.
  write_file(dir_ / "dumped.yaml", r.out);
  EXPECT_EQ(cli_run("pretrain --config " + (dir_ / "dumped.yaml").string() + " --dump-config", dir_.path()).out, r.out);
}

TEST_F(Cli, ModelCommandsCheckTheRunDirectory) {
  const auto missing = cli_run("predict --model /no/run", dir_.path());
  EXPECT_EQ(missing.code, 2);
  EXPECT_THAT(missing.err, HasSubstr("/no/run: run directory not found"));
  // A folder without meta.yaml is not a run.
  const auto not_run = cli_run("generate --model " + dir_.path().string() + " --prompt hi", dir_.path());
  EXPECT_EQ(not_run.code, 2);
  EXPECT_THAT(not_run.err, HasSubstr("meta.yaml: missing"));
}

TEST_F(Cli, TokenizerTrainEncodeDecodeRoundTrip) {
  const auto model = (dir_ / "tok.model").string();
  const auto train = cli_run("tokenizer train --config " + config_.string() + " --out " + model, dir_.path());
  ASSERT_EQ(train.code, 0) << train.err;
  ASSERT_TRUE(std::filesystem::exists(model));
  const std::string text = "the film was great.\nloved a boring scene.\n";
  const auto enc = cli_run("tokenizer encode --model " + model, dir_.path(), text);
  ASSERT_EQ(enc.code, 0) << enc.err;
  EXPECT_EQ(count_lines(enc.out), 2u);
  const auto dec = cli_run("tokenizer decode --model " + model, dir_.path(), enc.out);
  ASSERT_EQ(dec.code, 0) << dec.err;
  EXPECT_EQ(dec.out, text);
  const auto bad = cli_run("tokenizer decode --model " + model, dir_.path(), "5 x 7\n");
  EXPECT_EQ(bad.code, 2);
  EXPECT_THAT(bad.err, HasSubstr("<stdin>:1: not a token id: 'x'"));
  EXPECT_EQ(cli_run("tokenizer encode --model " + (dir_ / "none.model").string(), dir_.path()).code, 2);
}

TEST_F(Cli, TokenizerEncodeSplitUsesTheCache) {
  const auto model = (dir_ / "tok.model").string();
  ASSERT_EQ(cli_run("tokenizer train --config " + config_.string() + " --out " + model, dir_.path()).code, 0);
  const std::string cmd = "tokenizer encode --model " + model + " --config " + config_.string() + " --split train";
  const auto first = cli_run(cmd, dir_.path());
  ASSERT_EQ(first.code, 0) << first.err;
  const auto a = nlohmann::json::parse(first.out);
  EXPECT_EQ(a["documents"], 200);
  EXPECT_FALSE(a["cache_hit"].get<bool>());
  const auto b = nlohmann::json::parse(cli_run(cmd, dir_.path()).out);
  EXPECT_TRUE(b["cache_hit"].get<bool>());
  EXPECT_EQ(b["tokens"], a["tokens"]);
  EXPECT_TRUE(std::filesystem::exists(dir_ / "cache"));
}

TEST_F(Cli, BenchPrintsThroughputAsJson) {
  const std::string tiny = " --set model.emb_size=8 model.hidden_size=16 model.layers=2 train.batch_size=4 train.bptt=8";
  const auto r = cli_run("bench --config " + config_.string() + " --steps 2 --warmup 1 --doc-tokens 16" + tiny + " precision=fp32",
                         dir_.path());
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  for (const char* field : {"lm_train_tokens_per_s", "clf_train_docs_per_s", "predict_docs_per_s",
                            "matmul_peak_fp32_gflops"}) {
    EXPECT_GT(j.at(field).get<double>(), 0.0) << field;
  }
  EXPECT_EQ(j.at("precision"), "fp32");
  EXPECT_EQ(j.at("threads"), 1);  // the config asks for one thread
  EXPECT_EQ(j.at("device"), "cpu");
  EXPECT_FALSE(j.at("libtorch").get<std::string>().empty());
  const auto only = cli_run("bench --config " + config_.string() + " --steps 1 --warmup 0 --only predict --doc-tokens 16" + tiny,
                            dir_.path());
  ASSERT_EQ(only.code, 0) << only.err;
  EXPECT_EQ(nlohmann::json::parse(only.out).at("lm_train_tokens_per_s").get<double>(), 0.0);
}

}  // namespace
}  // namespace ulmfit
