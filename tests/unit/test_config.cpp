#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>

#include "../test_helpers.h"
#include "ulmfit/config/loader.h"
#include "ulmfit/util/error.h"

namespace ulmfit {
namespace {

using config::load_config_text;
using ::testing::HasSubstr;

std::string error_of(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  try {
    load_config_text(yaml, "x.yaml", "/base", overrides);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

TEST(Config, DefaultsMatchTheDesignSketch) {
  const auto cfg = config::default_config();
  EXPECT_EQ(cfg.seed, 42);
  EXPECT_EQ(cfg.device, "auto");
  EXPECT_EQ(cfg.tokenizer.vocab_size, 16000);
  EXPECT_EQ(cfg.model.backbone, "awd_lstm");
  EXPECT_EQ(cfg.model.hidden_size, 1152);
  EXPECT_EQ(cfg.train.bptt, 72);
  EXPECT_DOUBLE_EQ(cfg.train.discriminative_factor, 2.6);
}

TEST(Config, ReadsNestedKeys) {
  const auto cfg = load_config_text(
      "seed: 7\nmodel:\n  hidden_size: 256\n  dropout: {mult: 0.5}\ntrain:\n  lr: 1.0e-2\n"
      "  optimizer: {betas: [0.8, 0.95]}\n",
      "x.yaml", "/base");
  EXPECT_EQ(cfg.seed, 7);
  EXPECT_EQ(cfg.model.hidden_size, 256);
  EXPECT_DOUBLE_EQ(cfg.model.dropout.mult, 0.5);
  EXPECT_DOUBLE_EQ(cfg.train.lr, 0.01);
  EXPECT_EQ(cfg.train.optimizer.betas, (std::vector<double>{0.8, 0.95}));
  EXPECT_EQ(cfg.where("model.hidden_size"), "x.yaml:3:16: model.hidden_size");
}

TEST(Config, KeepIsBestByDefaultAndTakesLast) {
  EXPECT_EQ(config::default_config().train.keep, "best");
  EXPECT_EQ(load_config_text("train:\n  keep: last\n", "x.yaml", "/base").train.keep, "last");
  EXPECT_THAT(error_of("train:\n  keep: newest\n"), HasSubstr("x.yaml:2:9: train.keep"));
}

TEST(Config, UnknownKeyIsRejectedByNameWithLineAndColumn) {
  EXPECT_EQ(error_of("model:\n  hiden_size: 3\n"), "x.yaml:2:3: model.hiden_size: unknown key");
  EXPECT_EQ(error_of("sed: 1\n"), "x.yaml:1:1: sed: unknown key");
}

TEST(Config, WrongTypeNamesKeyAndValue) {
  EXPECT_EQ(error_of("train:\n  bptt: abc\n"),
            "x.yaml:2:9: train.bptt: expected an integer, got 'abc'");
  EXPECT_EQ(error_of("train:\n  bptt: 3.5\n"),
            "x.yaml:2:9: train.bptt: expected an integer, got '3.5'");
  EXPECT_THAT(error_of("train: 5\n"), HasSubstr("train: expected a mapping"));
  EXPECT_THAT(error_of("train:\n  optimizer: {betas: 0.9}\n"),
              HasSubstr("train.optimizer.betas: expected a list of numbers"));
}

TEST(Config, OutOfRangeValues) {
  EXPECT_EQ(error_of("train:\n  bptt: 0\n"), "x.yaml:2:9: train.bptt: must be >= 1, got 0");
  EXPECT_THAT(error_of("model:\n  dropout:\n    input: -0.1\n"),
              HasSubstr("x.yaml:3:12: model.dropout.input: must be in [0, 1)"));
  EXPECT_THAT(error_of("model: {backbone: gru}\n"),
              HasSubstr("model.backbone: must be one of awd_lstm | qrnn | transformer | bert"));
  EXPECT_THAT(error_of("device: gpu\n"), HasSubstr("device: must be auto | cpu | cuda | cuda:N"));
  EXPECT_THAT(error_of("train: {optimizer: {betas: [0.9]}}\n"), HasSubstr("list of two numbers"));
}

TEST(Config, OverridesWinAndAreNamedInErrors) {
  const auto cfg = load_config_text("train:\n  bptt: 70\n", "x.yaml", "/base",
                                    {"train.bptt=16", "model.layers=2", "data.train.format=csv"});
  EXPECT_EQ(cfg.train.bptt, 16);
  EXPECT_EQ(cfg.model.layers, 2);
  EXPECT_EQ(cfg.data.train.format, "csv");
  EXPECT_EQ(cfg.where("train.bptt"), "--set: train.bptt");
  EXPECT_EQ(error_of("", {"model.hiden=1"}), "--set model.hiden: unknown key");
  EXPECT_EQ(error_of("", {"train.bptt=x"}), "--set train.bptt: expected an integer, got 'x'");
  EXPECT_THAT(error_of("", {"train.bptt"}), HasSubstr("expected key.path=value"));
}

TEST(Config, DumpLoadsBackToTheSameConfig) {
  const auto cfg = load_config_text("seed: 3\ntrain: {lr: 0.003, optimizer: {betas: [0.7, 0.99]}}\n"
                                    "data:\n  train: {path: [a.txt, b.txt], format: wikitext}\n",
                                    "x.yaml", "/base");
  const std::string dumped = config::dump_config(cfg);
  EXPECT_THAT(dumped, HasSubstr("seed: 3  # "));
  EXPECT_THAT(dumped, HasSubstr("lr: 0.003"));
  const auto again = load_config_text(dumped, "dump.yaml", "/elsewhere");
  EXPECT_EQ(config::dump_config(again), dumped);
  EXPECT_EQ(again.data.train.path, (std::vector<std::string>{"/base/a.txt", "/base/b.txt"}));
}

TEST(Config, PathsAreRelativeToTheConfigAndExpandEnvironment) {
  ::setenv("ULMFIT_TEST_ROOT", "/corpora", 1);
  const auto cfg = load_config_text(
      "data:\n  train: {path: ../data/train.txt}\n  valid: {path: '${ULMFIT_TEST_ROOT}/v.txt'}\n"
      "  test: {path: '${ULMFIT_TEST_UNSET:-/fallback}/t.txt'}\n",
      "x.yaml", "/proj/configs");
  EXPECT_EQ(cfg.data.train.path.at(0), "/proj/data/train.txt");
  EXPECT_EQ(cfg.data.valid.path.at(0), "/corpora/v.txt");
  EXPECT_EQ(cfg.data.test.path.at(0), "/fallback/t.txt");
  EXPECT_THAT(error_of("data: {train: {path: '${ULMFIT_TEST_UNSET}/x'}}\n"),
              HasSubstr("ULMFIT_TEST_UNSET is not set"));
  ::unsetenv("ULMFIT_DATA");
  const auto data = load_config_text("data: {train: {path: '${ULMFIT_DATA}/w.txt'}}\n", "x.yaml", "/b");
  EXPECT_EQ(data.data.train.path.at(0),
            (std::filesystem::current_path() / "data/datasets/w.txt").string());
}

TEST(Config, SyntaxErrorsAndMissingFiles) {
  EXPECT_THAT(error_of("train: [1, 2\n"), HasSubstr("x.yaml:"));
  EXPECT_THAT(error_of("train: [1, 2\n"), HasSubstr("YAML syntax error"));
  EXPECT_THROW(config::load_config("/nonexistent/x.yaml"), ConfigError);
  testing::TempDir dir;
  const auto file = testing::write_file(dir / "c.yaml", "train:\n  epochs: 2\n");
  EXPECT_EQ(config::load_config(file.string()).train.epochs, 2);
}

TEST(Config, NonScalarKeysAreConfigErrors) {
  // Found by fuzz/fuzz_config: a list as a mapping key escaped as yaml-cpp's
  // bad-conversion exception (exit 1 in the CLI, a crash in the fuzzer).
  EXPECT_THAT(error_of("train: {optimizer: {[a, b]: 1}}\n"),
              HasSubstr("x.yaml:1:21: train.optimizer.<key>: keys must be plain names, got a list"));
  EXPECT_THAT(error_of("{a: 1}: 2\n"), HasSubstr("keys must be plain names, got a mapping"));
}

}  // namespace
}  // namespace ulmfit
