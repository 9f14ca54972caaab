#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <iostream>

#include "../test_helpers.h"
#include "tiny_training.h"
#include "ulmfit/nn/awd_lstm.h"
#include "ulmfit/pipeline/run_dir.h"
#include "ulmfit/pipeline/stages.h"
#include "ulmfit/tasks/classification.h"
#include "ulmfit/tasks/language_modeling.h"
#include "ulmfit/train/learner.h"
#include "ulmfit/train/schedule.h"
#include "ulmfit/util/error.h"

namespace ulmfit {
namespace {

config::ScheduleConfig schedule(const std::string& name) {
  config::ScheduleConfig s;
  s.name = name;
  return s;
}

TEST(Schedules, StlrFollowsTheFormula) {
  // T = 1000, cut_frac 0.1, ratio 32: cut = 100.
  const train::Schedule s(schedule("stlr"), 1000);
  EXPECT_DOUBLE_EQ(s.lr_factor(0), 1.0 / 32);
  EXPECT_DOUBLE_EQ(s.lr_factor(50), (1 + 0.5 * 31) / 32);
  EXPECT_DOUBLE_EQ(s.lr_factor(100), 1.0);
  // p = 1 - (t - cut) / (cut * (1/cut_frac - 1)) = 1 - 450/900 at t = 550.
  EXPECT_DOUBLE_EQ(s.lr_factor(550), (1 + 0.5 * 31) / 32);
  EXPECT_NEAR(s.lr_factor(999), (1 + (1 - 899.0 / 900) * 31) / 32, 1e-12);
}

TEST(Schedules, OneCycleWarmsUpThenAnneals) {
  const train::Schedule s(schedule("one_cycle"), 400);  // pct_start 0.25: warm-up 100 steps
  EXPECT_NEAR(s.lr_factor(0), 1.0 / 25, 1e-12);
  EXPECT_NEAR(s.lr_factor(50), (1.0 / 25 + 1) / 2, 1e-12);  // cosine midpoint
  EXPECT_NEAR(s.lr_factor(100), 1.0, 1e-12);
  EXPECT_NEAR(s.lr_factor(250), (1 + 1.0 / 25 / 1e5) / 2, 1e-12);
  EXPECT_LT(s.lr_factor(399), 1e-3);
  // Momentum moves the other way: low at the peak LR.
  EXPECT_NEAR(s.beta1(0, 0.8), 0.8, 1e-12);
  EXPECT_NEAR(s.beta1(100, 0.8), 0.7, 1e-12);
  EXPECT_NEAR(s.beta1(399, 0.8), 0.8, 1e-4);
}

TEST(Schedules, ConstantAndCosineWithWarmup) {
  auto c = schedule("constant");
  c.warmup_steps = 9;
  const train::Schedule constant(c, 100);
  EXPECT_DOUBLE_EQ(constant.lr_factor(0), 0.1);
  EXPECT_DOUBLE_EQ(constant.lr_factor(9), 1.0);
  EXPECT_DOUBLE_EQ(constant.lr_factor(80), 1.0);
  const train::Schedule cosine(schedule("cosine"), 100);
  EXPECT_DOUBLE_EQ(cosine.lr_factor(0), 1.0);
  EXPECT_NEAR(cosine.lr_factor(50), 0.5, 1e-12);
  EXPECT_DOUBLE_EQ(cosine.beta1(30, 0.9), 0.9);
}

TEST(Schedules, DiscriminativeLrsDivideByTheFactorPerGroup) {
  const auto lrs = train::discriminative_lrs(0.01, 2.6, 4);
  ASSERT_EQ(lrs.size(), 4u);
  EXPECT_DOUBLE_EQ(lrs[3], 0.01);
  EXPECT_DOUBLE_EQ(lrs[2], 0.01 / 2.6);
  EXPECT_DOUBLE_EQ(lrs[0], 0.01 / (2.6 * 2.6 * 2.6));
}

TEST(Schedules, FreezePlans) {
  config::TrainConfig t;
  EXPECT_EQ(train::freeze_plan_from(t, 5), (std::vector<int>{0}));
  t.unfreeze = "gradual";
  EXPECT_EQ(train::freeze_plan_from(t, 5), (std::vector<int>{1, 2, 3, 4, 0}));
  t.freeze_to = {1, 0};
  EXPECT_EQ(train::freeze_plan_from(t, 5), (std::vector<int>{1, 0}));
}

TEST(Learner, FrozenGroupsStayBitIdentical) {
  torch::manual_seed(0);
  Tiny tiny;
  nn::SequenceClassifier clf(Tiny::backbone(), nn::SequenceClassifierOptions(2).bptt(4).dropouts({0, 0}));
  tasks::ClassificationTask task(clf, tiny.clf_corpus, nullptr, {4, 8, 0, 4, torch::kCPU});
  auto groups = clf->layer_groups();  // embedding, lstm0, lstm1, head
  std::vector<std::vector<torch::Tensor>> before;
  for (const auto& g : groups) {
    before.emplace_back();
    for (const auto& p : g) before.back().push_back(p.clone());
  }
  auto options = Tiny::fit(1, 1e-2);
  options.freeze_plan = {2};  // only lstm1 and the head train
  train::Learner(task, options).fit();
  for (std::size_t g = 0; g < groups.size(); ++g) {
    for (std::size_t i = 0; i < groups[g].size(); ++i) {
      const bool same = torch::equal(groups[g][i], before[g][i]);
      if (g < 2) {
        EXPECT_TRUE(same) << "group " << g << " changed while frozen";
      } else {
        EXPECT_FALSE(same) << "group " << g << " did not train";
      }
    }
  }
}

TEST(Learner, DiscriminativeLrsReachTheOptimizer) {
  Tiny tiny;
  nn::SequenceClassifier clf(Tiny::backbone(), nn::SequenceClassifierOptions(2).bptt(4));
  tasks::ClassificationTask task(clf, tiny.clf_corpus, nullptr, {4, 8, 0, 4, torch::kCPU});
  auto options = Tiny::fit(1, 0.01);
  options.discriminative_factor = 2.0;
  train::Learner learner(task, options);
  learner.set_lrs(0.01, 0.5, 0.9);
  const auto& groups = learner.optimizer().param_groups();
  ASSERT_EQ(groups.size(), 4u);
  for (std::size_t g = 0; g < 4; ++g) {
    EXPECT_DOUBLE_EQ(groups[g].options().get_lr(), 0.005 / std::pow(2.0, 3 - static_cast<double>(g)));
  }
}

TEST(Learner, WithoutDecayOnBiasesAndNormsTheyGetUndecayedGroupsAtTheirLayerGroupsLr) {
  Tiny tiny;
  nn::SequenceClassifier clf(Tiny::backbone(), nn::SequenceClassifierOptions(2).bptt(4));
  tasks::ClassificationTask task(clf, tiny.clf_corpus, nullptr, {4, 8, 0, 4, torch::kCPU});
  auto options = Tiny::fit(1, 0.01);
  options.discriminative_factor = 2.0;
  options.optimizer.weight_decay = 0.01;
  options.optimizer.decay_biases_and_norms = false;
  train::Learner learner(task, options);
  learner.set_lrs(0.01, 0.5, 0.9);
  const auto layer_groups = clf->layer_groups();  // embedding, lstm0, lstm1, head
  std::size_t params_seen = 0, params_total = 0;
  for (const auto& g : layer_groups) params_total += g.size();
  for (const auto& group : learner.optimizer().param_groups()) {
    const auto& adamw = static_cast<const torch::optim::AdamWOptions&>(group.options());
    ASSERT_FALSE(group.params().empty());
    const bool vectors = group.params().front().dim() < 2;
    EXPECT_DOUBLE_EQ(adamw.weight_decay(), vectors ? 0.0 : 0.01);
    for (const auto& p : group.params()) {
      EXPECT_EQ(p.dim() < 2, vectors) << "a matrix and a vector share an optimizer group";
      // Its LR is the one of the layer group it came from.
      for (std::size_t g = 0; g < layer_groups.size(); ++g) {
        for (const auto& q : layer_groups[g]) {
          if (!q.is_same(p)) continue;
          ++params_seen;
          EXPECT_DOUBLE_EQ(adamw.lr(), 0.005 / std::pow(2.0, 3 - static_cast<double>(g)));
        }
      }
    }
  }
  EXPECT_EQ(params_seen, params_total);
  // The head has biases (and BatchNorm), the embedding has none: more groups than layer groups.
  EXPECT_GT(learner.optimizer().param_groups().size(), layer_groups.size());
}

TEST(Learner, ClassifierOverfitsATinyBatch) {
  torch::manual_seed(1);
  Tiny tiny;
  nn::SequenceClassifier clf(Tiny::backbone(), nn::SequenceClassifierOptions(2).bptt(4).dropouts({0, 0}));
  tasks::ClassificationTask task(clf, tiny.clf_corpus, &tiny.clf_corpus, {8, 8, 0, 4, torch::kCPU});
  const auto summary = train::Learner(task, Tiny::fit(40, 1e-2)).fit();
  EXPECT_DOUBLE_EQ(summary.last.at("accuracy"), 1.0);
  EXPECT_LT(summary.last.at("train_loss"), 0.1);
}

TEST(Learner, BatchNormRefreshTakesTheStatisticsOfTheWeightsEvaluated) {
  struct Outcome {
    std::vector<torch::Tensor> parameters;
    torch::Tensor running_mean;  // the head's first BatchNorm after the last evaluation
    torch::Tensor pooled_mean;   // the mean of what that BatchNorm reads, with the final weights
  };
  auto run = [](int refresh, bool validate = true) {
    torch::manual_seed(5);
    Tiny tiny;  // 8 documents of 12 tokens: two full batches of 4 an epoch
    nn::SequenceClassifier clf(Tiny::backbone(), nn::SequenceClassifierOptions(2).bptt(4).dropouts({0, 0}));
    tasks::ClassificationOptions options{4, 8, 0, 4, torch::kCPU};
    options.batch_norm_refresh = refresh;
    tasks::ClassificationTask task(clf, tiny.clf_corpus, validate ? &tiny.clf_corpus : nullptr, options);
    train::Learner(task, Tiny::fit(3, 3e-2)).fit();
    Outcome out;
    for (const auto& p : clf->parameters()) out.parameters.push_back(p.clone());
    out.running_mean = clf->head->norms[0]->running_mean.clone();
    clf->eval();
    torch::NoGradGuard no_grad;
    text::ClassificationBatchOptions all;
    all.batch_size = 8;
    text::ClassificationBatches batches(tiny.clf_corpus, all);
    batches.start_epoch(0);
    const auto batch = batches.batch(0);
    const auto [outputs, mask] = clf->encode(batch.tokens, batch.mask);
    out.pooled_mean = nn::masked_concat_pool(outputs, mask).mean(0);
    return out;
  };
  const auto lagging = run(0);
  const auto refreshed = run(2);
  // The refresh covers both batches of the last epoch: every training document, once.
  EXPECT_TRUE(torch::allclose(refreshed.running_mean, refreshed.pooled_mean, 1e-4, 1e-5));
  // Without validation data too, so the weights saved at the end carry their own statistics.
  const auto unscored = run(2, false);
  EXPECT_TRUE(torch::allclose(unscored.running_mean, unscored.pooled_mean, 1e-4, 1e-5));
  // Without it the running average still holds older weights' features (and its initial zeros).
  EXPECT_GT((lagging.running_mean - lagging.pooled_mean).abs().max().item<double>(), 1e-2);
  // Training itself is the same run: the refresh changes no weight and draws no random number.
  ASSERT_EQ(lagging.parameters.size(), refreshed.parameters.size());
  for (std::size_t i = 0; i < lagging.parameters.size(); ++i) {
    EXPECT_TRUE(torch::equal(lagging.parameters[i], refreshed.parameters[i])) << "parameter " << i;
  }
}

TEST(Learner, LanguageModelLossFallsAndCarriedStateIsSeeded) {
  auto run = [] {
    torch::manual_seed(3);
    Tiny tiny;
    nn::LanguageModel lm(Tiny::backbone(), nn::LanguageModelOptions().output_p(0));
    tasks::LanguageModelingOptions o;
    o.train_stream = {2, 6, true, 5, true};
    o.eval_batch_size = 2;
    o.eval_bptt = 6;
    tasks::LanguageModelingTask task(lm, tiny.lm_corpus, &tiny.lm_corpus, o);
    std::vector<double> losses;
    train::FitCallbacks cb;
    cb.metrics = [&losses](const std::string& line) {
      const auto pos = line.find("\"loss\":");
      if (pos != std::string::npos) losses.push_back(std::stod(line.substr(pos + 7)));
    };
    auto options = Tiny::fit(30, 1e-2);
    options.log_every = 1;
    const auto summary = train::Learner(task, options, cb).fit();
    return std::make_pair(summary, losses);
  };
  const auto [summary, losses] = run();
  ASSERT_GT(losses.size(), 10u);
  EXPECT_GT(losses.front(), 2.5);  // about ln(20) = 3.0 at the start
  EXPECT_LT(summary.last.at("valid_loss"), 1.5);
  const auto [again, losses_again] = run();
  EXPECT_EQ(losses, losses_again);  // same seed, same losses
}

TEST(Checkpoints, SaveLoadGivesIdenticalLogits) {
  testing::TempDir dir;
  torch::manual_seed(4);
  nn::SequenceClassifier a(Tiny::backbone(), nn::SequenceClassifierOptions(2).bptt(4));
  a->eval();
  const auto tokens = torch::randint(5, 20, {3, 9});
  const auto mask = torch::ones({3, 9}, torch::kBool);
  const auto expected = a(tokens, mask);
  pipeline::save_module(*a, (dir / "model.pt").string());
  torch::manual_seed(99);
  nn::SequenceClassifier b(Tiny::backbone(), nn::SequenceClassifierOptions(2).bptt(4));
  b->eval();
  EXPECT_FALSE(torch::equal(b(tokens, mask), expected));
  pipeline::load_module(*b, (dir / "model.pt").string());
  EXPECT_TRUE(torch::equal(b(tokens, mask), expected));

  // A model of another shape, and a truncated file, are checkpoint errors.
  nn::SequenceClassifier wrong(std::make_shared<nn::AwdLstmImpl>(nn::AwdLstmOptions(20, 8, 24, 2)),
                               nn::SequenceClassifierOptions(2));
  EXPECT_THROW(pipeline::load_module(*wrong, (dir / "model.pt").string()), CheckpointError);
  const auto bytes = util::read_file(dir / "model.pt");
  testing::write_file(dir / "cut.pt", bytes.substr(0, bytes.size() / 2));
  EXPECT_THROW(pipeline::load_module(*b, (dir / "cut.pt").string()), CheckpointError);
}

TEST(Checkpoints, LanguageModelEncoderLoadsIntoAClassifier) {
  testing::TempDir dir;
  torch::manual_seed(5);
  nn::LanguageModel lm(Tiny::backbone(), nn::LanguageModelOptions());
  pipeline::save_module(*lm, (dir / "lm.pt").string());
  nn::SequenceClassifier clf(Tiny::backbone(), nn::SequenceClassifierOptions(2));
  pipeline::load_module(*clf->encoder, (dir / "lm.pt").string(), "encoder");
  EXPECT_TRUE(torch::equal(clf->encoder->embedding_weight(), lm->encoder->embedding_weight()));
}

TEST(Sampling, TemperatureTopKAndTopP) {
  const auto logits = torch::log(torch::tensor({0.5, 0.3, 0.15, 0.05}));
  auto p = pipeline::sampling_distribution(logits, 1.0, 0, 1.0);
  EXPECT_TRUE(torch::allclose(p, torch::tensor({0.5f, 0.3f, 0.15f, 0.05f}), 1e-5));
  p = pipeline::sampling_distribution(logits, 1.0, 2, 1.0);
  EXPECT_TRUE(torch::allclose(p, torch::tensor({0.625f, 0.375f, 0.0f, 0.0f}), 1e-5));
  // top_p 0.7: 0.5 alone is short of it, 0.5 + 0.3 reaches it.
  p = pipeline::sampling_distribution(logits, 1.0, 0, 0.7);
  EXPECT_TRUE(torch::allclose(p, torch::tensor({0.625f, 0.375f, 0.0f, 0.0f}), 1e-5));
  // A low temperature sharpens towards the likeliest token.
  EXPECT_GT(pipeline::sampling_distribution(logits, 0.1, 0, 1.0)[0].item<float>(), 0.99f);
  EXPECT_THROW(pipeline::sampling_distribution(logits, 0.0, 0, 1.0), UsageError);
}

TEST(Learner, MonitorDirection) {
  EXPECT_FALSE(train::higher_is_better("valid_loss"));
  EXPECT_FALSE(train::higher_is_better("perplexity"));
  EXPECT_TRUE(train::higher_is_better("macro_f1"));
}

/// Peak resident memory growth (kB) of a forward + backward pass of the BPT3C
/// classifier over one document of `length` tokens, measured in a child process.
long bpt3c_peak_kb(int length, int max_len) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    auto rss = [](const char* field) {
      std::ifstream status("/proc/self/status");
      for (std::string line; std::getline(status, line);) {
        if (line.rfind(field, 0) == 0) return std::stol(line.substr(std::strlen(field)));
      }
      return 0L;
    };
    at::set_num_threads(1);
    torch::manual_seed(0);
    auto enc = std::make_shared<nn::AwdLstmImpl>(nn::AwdLstmOptions(100, 64, 512, 3));
    nn::SequenceClassifier clf(enc, nn::SequenceClassifierOptions(2).bptt(50).max_len(max_len));
    clf->train();
    // Warm up allocator and kernels on a short document first.
    clf(torch::randint(5, 100, {8, 60}), torch::ones({8, 60}, torch::kBool)).sum().backward();
    const long base = rss("VmRSS:");
    const auto tokens = torch::randint(5, 100, {8, length});
    clf(tokens, torch::ones({8, length}, torch::kBool)).sum().backward();
    const long grown = rss("VmHWM:") - base;
    if (write(fds[1], &grown, sizeof grown) != sizeof grown) _exit(1);
    _exit(0);
  }
  close(fds[1]);
  long grown = -1;
  if (read(fds[0], &grown, sizeof grown) != sizeof grown) grown = -1;
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return grown;
}

TEST(Bpt3c, PeakMemoryDoesNotGrowWithDocumentLength) {
  const long short_doc = bpt3c_peak_kb(1000, 400);
  const long long_doc = bpt3c_peak_kb(4000, 400);
  ASSERT_GT(short_doc, 0);
  EXPECT_LT(static_cast<double>(long_doc), 1.5 * static_cast<double>(short_doc))
      << "1,000 tokens: " << short_doc << " kB, 4,000 tokens: " << long_doc << " kB";
  // Without the bound (every output kept) the same pass does grow: the
  // measurement can tell.
  const long unbounded = bpt3c_peak_kb(4000, 100000);
  std::cout << "BPT3C peak memory growth: 1,000 tokens " << short_doc << " kB, 4,000 tokens " << long_doc
            << " kB; 4,000 tokens with every output kept " << unbounded << " kB\n";
  EXPECT_GT(static_cast<double>(unbounded), 2.0 * static_cast<double>(short_doc));
}

}  // namespace
}  // namespace ulmfit
