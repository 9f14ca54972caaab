// The whole pipeline through the CLI on tiny data: pretrain -> adapt ->
// finetune -> evaluate -> predict -> generate, with exit codes and outputs.
#include <nlohmann/json.hpp>

#include "../test_helpers.h"
#include "cli_runner.h"
#include "ulmfit/util/files.h"

namespace ulmfit {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::write_file;

class CliPipeline : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("ULMFIT_TINY_DATA", dir_.path().c_str(), 1);
    testing::write_tiny_corpora(dir_.path());
    write_file(dir_ / "inputs.txt", "the film was great, loved the music\nthe plot was boring, hated the acting\n");
  }
  std::string cfg(const std::string& name) const { return std::string(ULMFIT_SOURCE_DIR) + "/configs/" + name; }
  std::string run(const std::string& name) const { return (dir_ / name).string(); }
  /// The same three stages and three tools with a Transformer backbone: the
  /// architecture comes from the LM config and is inherited by adapt and finetune.
  void run_pipeline_with(const std::string& lm_config, bool can_generate) {
    const auto lm = cli_run("pretrain --config " + cfg(lm_config) + " --out " + run("lm"), dir_.path());
    ASSERT_EQ(lm.code, 0) << lm.err;
    const auto lm_eval = cli_run("evaluate --model " + run("lm") + " --data " + run("general-valid.txt") + " --json", dir_.path());
    ASSERT_EQ(lm_eval.code, 0) << lm_eval.err;
    const double perplexity = nlohmann::json::parse(lm_eval.out)["perplexity"].get<double>();
    EXPECT_GT(perplexity, 1.0);
    EXPECT_LT(perplexity, 40.0);  // better than a uniform guess over the 40 pieces
    const auto adapted = cli_run("adapt --config " + cfg("tiny-adapt.yaml") + " --from " + run("lm") + " --out " + run("adapted"), dir_.path());
    ASSERT_EQ(adapted.code, 0) << adapted.err;
    EXPECT_THAT(adapted.err, HasSubstr("train the top 1 of 3 layer groups"));
    const auto clf = cli_run("finetune --config " + cfg("tiny-classifier.yaml") + " --from " + run("adapted") + " --out " + run("clf"), dir_.path());
    ASSERT_EQ(clf.code, 0) << clf.err;
    EXPECT_THAT(util::read_file(dir_ / "clf/config.yaml"), HasSubstr("heads: 2"));
    const auto eval = cli_run("evaluate --model " + run("clf") + " --data " + run("labelled.csv") + " --json", dir_.path());
    ASSERT_EQ(eval.code, 0) << eval.err;
    const auto report = nlohmann::json::parse(eval.out);
    EXPECT_EQ(report["documents"], 40);
    const auto pred = cli_run("predict --model " + run("clf") + " --format csv --input " + run("labelled.csv"), dir_.path());
    ASSERT_EQ(pred.code, 0) << pred.err;
    int predicted_pos = 0, count = 0;
    std::istringstream lines(pred.out);
    for (std::string line; std::getline(lines, line); ++count) predicted_pos += nlohmann::json::parse(line)["label"] == "pos";
    EXPECT_EQ(count, 40);
    EXPECT_EQ(predicted_pos, report["confusion"][0][1].get<int>() + report["confusion"][1][1].get<int>());
    const auto gen = cli_run("generate --model " + run("adapted") + " --prompt 'the film' --max-tokens 30 --seed 3", dir_.path());
    if (can_generate) {
      ASSERT_EQ(gen.code, 0) << gen.err;
      EXPECT_EQ(gen.out.rfind("the film", 0), 0u) << gen.out;
    } else {
      EXPECT_EQ(gen.code, 2);
      EXPECT_THAT(gen.err, HasSubstr("is a masked language model (model.backbone: bert)"));
    }
  }

  testing::TempDir dir_;
};

TEST_F(CliPipeline, PretrainAdaptFinetuneEvaluatePredictGenerate) {
  const auto lm = cli_run("pretrain --config " + cfg("tiny-lm.yaml") + " --out " + run("lm"), dir_.path());
  ASSERT_EQ(lm.code, 0) << lm.err;
  EXPECT_EQ(lm.out, run("lm") + "\n");
  for (const char* f : {"config.yaml", "meta.yaml", "tokenizer.model", "model.pt", "metrics.jsonl", "state/checkpoint.pt"}) {
    EXPECT_TRUE(std::filesystem::exists(dir_ / "lm" / f)) << f;
  }
  // A run directory is never overwritten by accident.
  const auto again = cli_run("pretrain --config " + cfg("tiny-lm.yaml") + " --out " + run("lm"), dir_.path());
  EXPECT_EQ(again.code, 2);
  EXPECT_THAT(again.err, HasSubstr("not empty; pass --overwrite"));
  // --overwrite replaces the run: nothing of the old one stays behind.
  write_file(dir_ / "lm/stale.txt", "old");
  ASSERT_EQ(cli_run("pretrain --config " + cfg("tiny-lm.yaml") + " --out " + run("lm") + " --overwrite", dir_.path()).code, 0);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "lm/stale.txt"));

  const auto onto_parent = cli_run("adapt --config " + cfg("tiny-adapt.yaml") + " --from " + run("lm") + " --out " + run("lm") + " --overwrite", dir_.path());
  EXPECT_EQ(onto_parent.code, 2);
  EXPECT_THAT(onto_parent.err, HasSubstr("--out is the --from run"));
  EXPECT_TRUE(std::filesystem::exists(dir_ / "lm/model.pt"));

  const auto adapted = cli_run("adapt --config " + cfg("tiny-adapt.yaml") + " --from " + run("lm") + " --out " + run("adapted"), dir_.path());
  ASSERT_EQ(adapted.code, 0) << adapted.err;
  EXPECT_THAT(adapted.err, HasSubstr("train the top 1 of 3 layer groups"));

  const auto clf = cli_run("finetune --config " + cfg("tiny-classifier.yaml") + " --from " + run("adapted") + " --out " + run("clf"), dir_.path());
  ASSERT_EQ(clf.code, 0) << clf.err;
  EXPECT_THAT(util::read_file(dir_ / "clf/meta.yaml"), HasSubstr("labels: [neg, pos]"));
  // Each evaluation counts the documents given to each class; the curves are drawn.
  EXPECT_THAT(util::read_file(dir_ / "clf/metrics.jsonl"), HasSubstr("\"predicted_neg\""));
  const auto curves = util::read_file(dir_ / "clf/curves.svg");
  for (const char* part : {"<svg", "training loss", "validation loss", "accuracy", "learning rate", "groups train"}) {
    EXPECT_THAT(curves, HasSubstr(part));
  }
  EXPECT_THAT(util::read_file(dir_ / "adapted/curves.svg"), HasSubstr("training loss"));

  const auto eval = cli_run("evaluate --model " + run("clf") + " --data " + run("labelled.csv") + " --json", dir_.path());
  ASSERT_EQ(eval.code, 0) << eval.err;
  const auto report = nlohmann::json::parse(eval.out);
  EXPECT_EQ(report["documents"], 40);
  EXPECT_GE(report["accuracy"].get<double>(), 0.0);
  const auto table = cli_run("evaluate --model " + run("clf") + " --data " + run("labelled.csv"), dir_.path());
  EXPECT_THAT(table.out, HasSubstr("macro-F1"));
  EXPECT_THAT(table.out, HasSubstr("confusion"));

  // predict's labels agree with evaluate's confusion matrix on the same data.
  const auto pred = cli_run("predict --model " + run("clf") + " --format csv --input " + run("labelled.csv"), dir_.path());
  ASSERT_EQ(pred.code, 0) << pred.err;
  std::map<std::string, int> predicted;
  std::istringstream lines(pred.out);
  int count = 0;
  for (std::string line; std::getline(lines, line); ++count) {
    const auto j = nlohmann::json::parse(line);
    predicted[j["label"]]++;
    EXPECT_NEAR(j["probabilities"]["neg"].get<double>() + j["probabilities"]["pos"].get<double>(), 1.0, 1e-5);
  }
  EXPECT_EQ(count, 40);
  const auto confusion = report["confusion"];
  EXPECT_EQ(predicted["neg"], confusion[0][0].get<int>() + confusion[1][0].get<int>());
  EXPECT_EQ(predicted["pos"], confusion[0][1].get<int>() + confusion[1][1].get<int>());
  const auto stdin_pred = cli_run("predict --model " + run("clf"), dir_.path(), "one line\n\nthird line\n");
  ASSERT_EQ(stdin_pred.code, 0) << stdin_pred.err;
  EXPECT_EQ(std::count(stdin_pred.out.begin(), stdin_pred.out.end(), '\n'), 3);

  const auto gen = cli_run("generate --model " + run("adapted") + " --prompt 'the film' --max-tokens 12 --seed 3", dir_.path());
  ASSERT_EQ(gen.code, 0) << gen.err;
  EXPECT_EQ(gen.out.rfind("the film", 0), 0u) << gen.out;
  EXPECT_EQ(cli_run("generate --model " + run("adapted") + " --prompt 'the film' --max-tokens 12 --seed 3", dir_.path()).out, gen.out);

  const auto lm_eval = cli_run("evaluate --model " + run("lm") + " --data " + run("general-valid.txt") + " --json", dir_.path());
  ASSERT_EQ(lm_eval.code, 0) << lm_eval.err;
  EXPECT_GT(nlohmann::json::parse(lm_eval.out)["perplexity"].get<double>(), 1.0);

  // Wrong kinds of run are clear errors.
  EXPECT_EQ(cli_run("predict --model " + run("lm"), dir_.path()).code, 2);
  EXPECT_EQ(cli_run("generate --model " + run("clf") + " --prompt x", dir_.path()).code, 2);
  const auto wrong_from = cli_run("adapt --config " + cfg("tiny-adapt.yaml") + " --from " + run("clf") + " --out " + run("x"), dir_.path());
  EXPECT_EQ(wrong_from.code, 2);
  EXPECT_THAT(wrong_from.err, HasSubstr("is a classifier run"));
}

TEST_F(CliPipeline, FinetuneFromScratchAndLrFind) {
  const auto clf = cli_run("finetune --config " + cfg("tiny-classifier.yaml") + " --out " + run("scratch"), dir_.path());
  ASSERT_EQ(clf.code, 0) << clf.err;
  EXPECT_THAT(clf.err, HasSubstr("from scratch"));
  // The from-scratch recipe: one LR for every group, no dropout, batches of
  // random lengths, BatchNorm statistics recomputed before each evaluation
  // (the config asks for gradual unfreezing and its own LR, which are kept).
  EXPECT_THAT(clf.err, HasSubstr("from scratch: the recipe sets what the config leaves out "
                                 "(train.discriminative_factor, model.dropout.mult, train.length_sort_window, "
                                 "train.batch_norm_refresh)"));
  const auto resolved = util::read_file(dir_ / "scratch/config.yaml");
  EXPECT_THAT(resolved, HasSubstr("discriminative_factor: 1.0 "));
  EXPECT_THAT(resolved, HasSubstr("mult: 0.0 "));
  EXPECT_THAT(resolved, HasSubstr("length_sort_window: 1 "));
  EXPECT_THAT(resolved, HasSubstr("batch_norm_refresh: 16 "));
  EXPECT_THAT(resolved, HasSubstr("unfreeze: \"gradual\""));
  const auto own = cli_run("finetune --config " + cfg("tiny-classifier.yaml") +
                               " --set train.discriminative_factor=2 --set model.dropout.output=0.2"
                               " --set train.length_sort_window=50 --set train.batch_norm_refresh=0"
                               " --set train.epochs=1 --out " + run("own"),
                           dir_.path());
  ASSERT_EQ(own.code, 0) << own.err;
  EXPECT_THAT(own.err, Not(HasSubstr("the recipe sets")));
  EXPECT_THAT(util::read_file(dir_ / "own/config.yaml"), HasSubstr("discriminative_factor: 2.0 "));
  const auto lr = cli_run("lr-find --config " + cfg("tiny-lm.yaml") + " --out " + run("lrf"), dir_.path());
  ASSERT_EQ(lr.code, 0) << lr.err;
  EXPECT_THAT(lr.out, HasSubstr("suggested lr"));
  EXPECT_THAT(util::read_file(dir_ / "lrf/lr_find.csv"), HasSubstr("lr,smoothed_loss\n"));
  EXPECT_THAT(util::read_file(dir_ / "lrf/lr_find.svg"), HasSubstr("<svg"));
}

TEST_F(CliPipeline, ImpossibleTransformerShapeIsAConfigErrorAndWritesNothing) {
  const auto r = cli_run("pretrain --config " + cfg("tiny-gpt.yaml") + " --set model.heads=3 --out " + run("gpt"), dir_.path());
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("--set: model.heads: emb_size 8 is not a multiple of 3 heads"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "gpt"));
  const auto windows = cli_run("pretrain --config " + cfg("tiny-gpt.yaml") + " --set train.bptt=17 --out " + run("gpt"), dir_.path());
  EXPECT_EQ(windows.code, 2);
  EXPECT_THAT(windows.err, HasSubstr("train.bptt: 17-token windows exceed model.max_len 16"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "gpt"));
}

TEST_F(CliPipeline, GptStylePipelineEndToEnd) { run_pipeline_with("tiny-gpt.yaml", true); }

TEST_F(CliPipeline, BertStylePipelineEndToEnd) { run_pipeline_with("tiny-bert.yaml", false); }

TEST_F(CliPipeline, QrnnPipelineEndToEnd) {
  // tiny-lm.yaml's sizes with MultiFiT's quasi-recurrent layers; adapt and
  // finetune inherit the backbone.
  const auto lm = cli_run("pretrain --config " + cfg("tiny-lm.yaml") + " --set model.backbone=qrnn --out " + run("lm"),
                          dir_.path());
  ASSERT_EQ(lm.code, 0) << lm.err;
  EXPECT_THAT(lm.err, HasSubstr("qrnn language model"));
  const auto lm_eval = cli_run("evaluate --model " + run("lm") + " --data " + run("general-valid.txt") + " --json", dir_.path());
  ASSERT_EQ(lm_eval.code, 0) << lm_eval.err;
  EXPECT_LT(nlohmann::json::parse(lm_eval.out)["perplexity"].get<double>(), 40.0);  // better than uniform
  const auto adapted = cli_run("adapt --config " + cfg("tiny-adapt.yaml") + " --from " + run("lm") + " --out " + run("adapted"), dir_.path());
  ASSERT_EQ(adapted.code, 0) << adapted.err;
  const auto clf = cli_run("finetune --config " + cfg("tiny-classifier.yaml") + " --from " + run("adapted") + " --out " + run("clf"), dir_.path());
  ASSERT_EQ(clf.code, 0) << clf.err;
  EXPECT_THAT(util::read_file(dir_ / "clf/config.yaml"), HasSubstr("backbone: \"qrnn\""));
  const auto eval = cli_run("evaluate --model " + run("clf") + " --data " + run("labelled.csv") + " --json", dir_.path());
  ASSERT_EQ(eval.code, 0) << eval.err;
  EXPECT_EQ(nlohmann::json::parse(eval.out)["documents"], 40);
  const auto gen = cli_run("generate --model " + run("adapted") + " --prompt 'the film' --max-tokens 30 --seed 3", dir_.path());
  ASSERT_EQ(gen.code, 0) << gen.err;
  EXPECT_EQ(gen.out.rfind("the film", 0), 0u) << gen.out;
}

TEST_F(CliPipeline, SameSeedSameLosses) {
  // Precision pinned: `auto` measures, and a busy machine could tip the two runs apart.
  const std::string args = "pretrain --config " + cfg("tiny-lm.yaml") + " --set precision=fp32 --out ";
  ASSERT_EQ(cli_run(args + run("a"), dir_.path()).code, 0);
  ASSERT_EQ(cli_run(args + run("b"), dir_.path()).code, 0);
  auto losses = [](const std::string& metrics) {
    std::vector<double> out;
    std::istringstream in(metrics);
    for (std::string line; std::getline(in, line);) {
      const auto j = nlohmann::json::parse(line);
      if (j.contains("loss")) out.push_back(j["loss"]);
    }
    return out;
  };
  const auto a = losses(util::read_file(dir_ / "a/metrics.jsonl"));
  EXPECT_FALSE(a.empty());
  EXPECT_EQ(a, losses(util::read_file(dir_ / "b/metrics.jsonl")));
}

}  // namespace
}  // namespace ulmfit
