// Checkpoints, exact resume, interrupts and non-finite losses at the Learner
// level (the CLI tests repeat the resume with a real kill -9).
#include <torch/torch.h>

#include <algorithm>
#include <csignal>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "../test_helpers.h"
#include "tiny_training.h"
#include "ulmfit/nn/heads.h"
#include "ulmfit/tasks/classification.h"
#include "ulmfit/tasks/language_modeling.h"
#include "ulmfit/train/learner.h"
#include "ulmfit/train/precision.h"
#include "ulmfit/util/error.h"
#include "ulmfit/util/interrupt.h"

namespace ulmfit {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;

/// Passes everything to a real task, letting a test tamper with steps and
/// evaluations (inject NaN, raise an interrupt).
class TamperedTask : public train::Task {
 public:
  explicit TamperedTask(std::unique_ptr<train::Task> inner) : inner_(std::move(inner)) {}
  std::function<void(train::StepResult&, int call)> on_step;
  std::function<void()> on_evaluate;

  std::shared_ptr<torch::nn::Module> model() override { return inner_->model(); }
  std::vector<nn::ParameterGroup> layer_groups() override { return inner_->layer_groups(); }
  void start_epoch(int epoch) override { inner_->start_epoch(epoch); }
  std::size_t num_batches() const override { return inner_->num_batches(); }
  void seek(std::size_t index) override { inner_->seek(index); }
  std::vector<torch::Tensor> carried_state() const override { return inner_->carried_state(); }
  void restore_carried_state(std::vector<torch::Tensor> s) override { inner_->restore_carried_state(std::move(s)); }
  train::StepResult train_step() override {
    auto r = inner_->train_step();
    if (on_step) on_step(r, ++calls_);
    return r;
  }
  train::Metrics evaluate() override {
    if (on_evaluate) on_evaluate();
    return inner_->evaluate();
  }
  std::string monitor() const override { return inner_->monitor(); }
  bool higher_is_better() const override { return inner_->higher_is_better(); }
  std::string item_name() const override { return inner_->item_name(); }

 private:
  std::unique_ptr<train::Task> inner_;
  int calls_ = 0;
};

struct Trainable {
  std::shared_ptr<torch::nn::Module> model;
  std::unique_ptr<TamperedTask> task;
};

/// Builds a fresh model and task; weights come from `seed`, so a resumed run
/// starts from different weights unless the checkpoint restores them.
Trainable tiny_lm(const Tiny& tiny, std::uint64_t seed) {
  torch::manual_seed(seed);
  nn::LanguageModel lm(Tiny::dropout_backbone(), nn::LanguageModelOptions().output_p(0.1));
  tasks::LanguageModelingOptions o;
  o.train_stream = {2, 6, /*variable_bptt=*/true, 5, true};
  o.eval_batch_size = 2;
  o.eval_bptt = 6;
  return {lm.ptr(), std::make_unique<TamperedTask>(
                        std::make_unique<tasks::LanguageModelingTask>(lm, tiny.lm_corpus, &tiny.lm_corpus, o))};
}

Trainable tiny_classifier(const Tiny& tiny, std::uint64_t seed) {
  torch::manual_seed(seed);
  nn::SequenceClassifier clf(Tiny::dropout_backbone(), nn::SequenceClassifierOptions(2).bptt(4));
  return {clf.ptr(), std::make_unique<TamperedTask>(std::make_unique<tasks::ClassificationTask>(
                         clf, tiny.clf_corpus, &tiny.clf_corpus, tasks::ClassificationOptions{4, 8, 3, 4, torch::kCPU}))};
}

/// A save_checkpoint callback that adds the weights (as the run directory
/// does) and keeps the checkpoint's bytes in `store`; it reports `name`.
std::function<std::string(torch::serialize::OutputArchive&)> keep_in_memory(std::shared_ptr<torch::nn::Module> model,
                                                                             std::vector<std::string>& store,
                                                                             std::string name) {
  return [model, &store, name](torch::serialize::OutputArchive& state) {
    torch::serialize::OutputArchive weights;
    model->save(weights);
    state.write("model", weights);
    std::ostringstream bytes;
    state.save_to(bytes);
    store.push_back(bytes.str());
    return name;
  };
}

struct Recorded {
  std::map<std::int64_t, double> losses;  // global step -> loss
  std::vector<std::string> checkpoints;   // the files' bytes, in order
  std::vector<torch::Tensor> final_weights;
  train::FitSummary summary;
};

/// Trains `t` to the end, keeping every checkpoint in memory, optionally
/// starting from a checkpoint's bytes.
Recorded train_recording(Trainable& t, const train::FitOptions& options, const std::string* resume_from = nullptr) {
  Recorded r;
  train::FitCallbacks cb;
  cb.metrics = [&r](const std::string& line) {
    const auto j = json::parse(line);
    if (j.contains("loss") && !j.contains("eval")) r.losses[j.at("global_step").get<std::int64_t>()] = j.at("loss");
  };
  auto model = t.model;
  cb.save_checkpoint = keep_in_memory(model, r.checkpoints, "checkpoint");
  train::Learner learner(*t.task, options, cb);
  if (resume_from != nullptr) {
    std::istringstream in(*resume_from);
    torch::serialize::InputArchive archive;
    archive.load_from(in);
    torch::serialize::InputArchive weights;
    archive.read("model", weights);
    model->load(weights);
    learner.restore(archive, "checkpoint");
  }
  r.summary = learner.fit();
  for (const auto& p : model->parameters()) r.final_weights.push_back(p.detach().clone());
  return r;
}

train::LoopPosition position_of(const std::string& checkpoint) {
  std::istringstream in(checkpoint);
  torch::serialize::InputArchive archive;
  archive.load_from(in);
  c10::IValue position;
  archive.read("position", position);
  return train::position_from_json(position.toStringRef());
}

/// Resumes from the first mid-epoch checkpoint and from the first epoch-end
/// one, with differently seeded fresh weights, and expects the rest of the
/// uninterrupted run exactly.
void expect_exact_resume(const std::function<Trainable(std::uint64_t)>& build, const train::FitOptions& options) {
  auto original = build(1);
  const Recorded full = train_recording(original, options);
  int mid = -1, end = -1;
  for (std::size_t i = 0; i < full.checkpoints.size(); ++i) {
    const auto p = position_of(full.checkpoints[i]);
    if (p.step_in_epoch > 0 && p.epoch > 0 && mid < 0) mid = static_cast<int>(i);
    if (p.step_in_epoch == 0 && p.epoch == 1 && end < 0) end = static_cast<int>(i);
  }
  ASSERT_GE(mid, 0) << "no mid-epoch checkpoint after the first epoch";
  ASSERT_GE(end, 0) << "no checkpoint at the end of the first epoch";
  for (const int k : {mid, end}) {
    SCOPED_TRACE("resuming from checkpoint " + std::to_string(k));
    const auto at = position_of(full.checkpoints[static_cast<std::size_t>(k)]);
    auto fresh = build(99);
    const Recorded resumed = train_recording(fresh, options, &full.checkpoints[static_cast<std::size_t>(k)]);
    ASSERT_FALSE(resumed.losses.empty());
    EXPECT_EQ(resumed.losses.begin()->first, at.global_step + 1);
    EXPECT_EQ(resumed.losses.rbegin()->first, full.losses.rbegin()->first);
    for (const auto& [step, loss] : resumed.losses) {
      ASSERT_TRUE(full.losses.count(step)) << step;
      EXPECT_NEAR(loss, full.losses.at(step), 1e-6 * std::abs(full.losses.at(step))) << "global step " << step;
    }
    ASSERT_EQ(resumed.final_weights.size(), full.final_weights.size());
    for (std::size_t i = 0; i < full.final_weights.size(); ++i) {
      EXPECT_TRUE(torch::allclose(resumed.final_weights[i], full.final_weights[i], 1e-6, 0)) << "parameter " << i;
    }
    EXPECT_EQ(resumed.summary.best_epoch, full.summary.best_epoch);
    EXPECT_EQ(resumed.summary.steps, full.summary.steps);
  }
}

TEST(Resume, LanguageModelContinuesExactlyFromMidEpochAndEpochEnd) {
  Tiny tiny;
  auto options = Tiny::fit(4, 1e-2);
  options.schedule.name = "one_cycle";
  options.freeze_plan = {1, 0};  // two unfreezing stages with their own schedules
  options.log_every = 1;
  options.checkpoint_every = 4;
  expect_exact_resume([&tiny](std::uint64_t seed) { return tiny_lm(tiny, seed); }, options);
}

TEST(Resume, ClassifierWithGradualUnfreezingContinuesExactly) {
  Tiny tiny;
  auto options = Tiny::fit(4, 1e-2);
  options.schedule.name = "stlr";
  options.freeze_plan = {1, 2, 0};
  options.log_every = 1;
  options.checkpoint_every = 1;
  expect_exact_resume([&tiny](std::uint64_t seed) { return tiny_classifier(tiny, seed); }, options);
}

TEST(Resume, DamagedTrainingStateIsACheckpointError) {
  Tiny tiny;
  auto t = tiny_lm(tiny, 1);
  train::Learner learner(*t.task, Tiny::fit(1, 1e-2));
  torch::serialize::InputArchive empty;
  try {
    learner.restore(empty, "some/checkpoint.pt");
    FAIL() << "restored from an empty archive";
  } catch (const CheckpointError& e) {
    EXPECT_THAT(e.what(), HasSubstr("some/checkpoint.pt: holds no training state"));
  }
}

TEST(Interrupts, SignalWritesACheckpointStopsAndResumesExactly) {
  Tiny tiny;
  auto options = Tiny::fit(2, 1e-2);
  options.log_every = 1;
  auto original = tiny_lm(tiny, 1);
  const Recorded full = train_recording(original, options);

  auto interrupted = tiny_lm(tiny, 1);
  interrupted.task->on_step = [](train::StepResult&, int call) {
    if (call == 6) util::request_interrupt(SIGINT);  // as if Ctrl-C arrived during step 6
  };
  std::vector<std::string> checkpoints;
  train::FitCallbacks cb;
  cb.save_checkpoint = keep_in_memory(interrupted.model, checkpoints, "ckpt.pt");
  train::Learner learner(*interrupted.task, options, cb);
  try {
    learner.fit();
    FAIL() << "the interrupt did not stop training";
  } catch (const Interrupted& e) {
    EXPECT_THAT(e.what(), HasSubstr("interrupted at epoch 1 step 6"));
    EXPECT_THAT(e.what(), HasSubstr("checkpoint written: ckpt.pt"));
    EXPECT_EQ(e.exit_code(), ExitCode::kInterrupted);
  }
  ASSERT_EQ(checkpoints.size(), 1u);  // the step finished, then exactly one checkpoint
  EXPECT_EQ(position_of(checkpoints[0]).global_step, 6);

  auto fresh = tiny_lm(tiny, 99);
  const Recorded resumed = train_recording(fresh, options, &checkpoints[0]);
  EXPECT_EQ(resumed.losses.begin()->first, 7);
  for (const auto& [step, loss] : resumed.losses) EXPECT_NEAR(loss, full.losses.at(step), 1e-6 * std::abs(loss));
  for (std::size_t i = 0; i < full.final_weights.size(); ++i) {
    EXPECT_TRUE(torch::allclose(resumed.final_weights[i], full.final_weights[i], 1e-6, 0));
  }
}

TEST(NonFinite, NanLossStopsNamingStepLrAndLastGoodCheckpoint) {
  Tiny tiny;
  auto t = tiny_lm(tiny, 1);
  t.task->on_step = [](train::StepResult& r, int call) {
    if (call == 7) {
      r.loss = r.loss * std::numeric_limits<double>::quiet_NaN();
      r.loss_value = std::numeric_limits<double>::quiet_NaN();
    }
  };
  auto options = Tiny::fit(3, 1e-2);
  options.checkpoint_every = 5;
  std::vector<torch::Tensor> saved;
  train::FitCallbacks cb;
  auto model = t.model;
  cb.save_checkpoint = [&saved, model](torch::serialize::OutputArchive&) {
    for (const auto& p : model->parameters()) saved.push_back(p.detach().clone());
    return std::string("run/state/checkpoint.pt");
  };
  train::Learner learner(*t.task, options, cb);
  try {
    learner.fit();
    FAIL() << "a NaN loss did not stop training";
  } catch (const RuntimeFailure& e) {
    EXPECT_THAT(e.what(), HasSubstr("the loss became nan at epoch 1 step 7 (lr 0.01)"));
    EXPECT_THAT(e.what(), HasSubstr("last good checkpoint: run/state/checkpoint.pt (epoch 1 step 5)"));
    EXPECT_THAT(e.what(), HasSubstr("train.on_nonfinite: skip"));
  }
  for (const auto& p : model->parameters()) EXPECT_TRUE(torch::isfinite(p).all().item<bool>());
  for (const auto& p : saved) EXPECT_TRUE(torch::isfinite(p).all().item<bool>());
}

TEST(NonFinite, InfiniteGradientIsCaughtBeforeTheWeightsChange) {
  Tiny tiny;
  auto t = tiny_lm(tiny, 1);
  auto model = t.model;
  std::vector<torch::Tensor> before;
  t.task->on_step = [model, &before](train::StepResult& r, int call) {
    if (call != 3) return;
    // A finite loss whose gradient overflows: the weights must not move.
    for (const auto& p : model->parameters()) before.push_back(p.detach().clone());
    r.loss = r.loss + model->parameters()[0].sum() * std::numeric_limits<float>::infinity();
  };
  train::Learner learner(*t.task, Tiny::fit(1, 1e-2));
  try {
    learner.fit();
    FAIL() << "an infinite gradient did not stop training";
  } catch (const RuntimeFailure& e) {
    EXPECT_THAT(e.what(), HasSubstr("the gradient norm became"));
    EXPECT_THAT(e.what(), HasSubstr("epoch 1 step 3"));
    EXPECT_THAT(e.what(), HasSubstr("last good checkpoint: none yet"));
  }
  const auto after = model->parameters();
  ASSERT_EQ(after.size(), before.size());
  for (std::size_t i = 0; i < after.size(); ++i) EXPECT_TRUE(torch::equal(after[i], before[i])) << i;
}

TEST(NonFinite, SkipPolicyCountsSkippedBatchesAndFinishes) {
  Tiny tiny;
  auto t = tiny_lm(tiny, 1);
  t.task->on_step = [](train::StepResult& r, int call) {
    if (call == 2 || call == 5) {
      r.loss = r.loss * std::numeric_limits<double>::infinity();
      r.loss_value = std::numeric_limits<double>::infinity();
    }
  };
  auto options = Tiny::fit(2, 1e-2);
  options.skip_nonfinite = true;
  options.log_every = 1;
  int skipped_lines = 0;
  json eval_line;
  train::FitCallbacks cb;
  cb.metrics = [&](const std::string& line) {
    const auto j = json::parse(line);
    if (j.value("skipped", false)) ++skipped_lines;
    if (j.contains("eval")) eval_line = j;
  };
  const auto summary = train::Learner(*t.task, options, cb).fit();
  EXPECT_EQ(summary.skipped_batches, 2);
  EXPECT_EQ(skipped_lines, 2);
  EXPECT_EQ(eval_line.value("skipped_batches", 0), 2);
  EXPECT_TRUE(std::isfinite(summary.last.at("valid_loss")));
  for (const auto& p : t.model->parameters()) EXPECT_TRUE(torch::isfinite(p).all().item<bool>());
}

/// Trains the tiny LM with loss spikes reported at the given step calls and records
/// one weight tensor as each step found it, and the Learner's position.
struct SpikeRun {
  std::map<int, torch::Tensor> weights_at_call;  // before the call's step
  train::LoopPosition position;
  train::FitSummary summary;
  json eval_line;
};

SpikeRun train_with_spikes(double threshold, std::vector<int> spikes) {
  Tiny tiny;
  auto t = tiny_lm(tiny, 3);
  const auto watched = t.model->parameters().front();
  SpikeRun run;
  t.task->on_step = [&](train::StepResult& r, int call) {
    run.weights_at_call[call] = watched.detach().clone();
    // What the Learner judges; the gradient stays sane.
    if (std::find(spikes.begin(), spikes.end(), call) != spikes.end()) r.loss_value += 100;
  };
  auto options = Tiny::fit(8, 1e-2);
  options.spike_threshold = threshold;
  options.spike_interval = 5;
  train::FitCallbacks cb;
  cb.metrics = [&](const std::string& line) {
    const auto j = json::parse(line);
    if (j.contains("eval")) run.eval_line = j;
  };
  train::Learner learner(*t.task, options, cb);
  run.summary = learner.fit();
  run.position = learner.position();
  return run;
}

TEST(SpikeRollback, GoesBackToTheOlderSnapshotAndKeepsTheLr) {
  const auto run = train_with_spikes(5.0, {40});
  ASSERT_GT(run.summary.steps, 45) << "the tiny LM needs more steps per epoch for this test";
  EXPECT_EQ(run.summary.rollbacks, 1);
  EXPECT_EQ(run.eval_line.value("rollbacks", 0), 1);
  EXPECT_DOUBLE_EQ(run.position.spike_lr_scale, 1.0);
  // Calls 1-39 applied 39 steps; snapshots after applied steps 30 and 35.
  // The spike at call 40 restores the older, the weights call 31 saw.
  EXPECT_TRUE(torch::equal(run.weights_at_call.at(41), run.weights_at_call.at(31)));
  EXPECT_FALSE(torch::equal(run.weights_at_call.at(41), run.weights_at_call.at(40)));
  EXPECT_EQ(run.summary.skipped_batches, 0);
}

TEST(SpikeRollback, ASecondSpikeInTheStageHalvesItsLr) {
  const auto run = train_with_spikes(5.0, {40, 50});
  ASSERT_GT(run.summary.steps, 55) << "the tiny LM needs more steps per epoch for this test";
  EXPECT_EQ(run.summary.rollbacks, 2);
  EXPECT_DOUBLE_EQ(run.position.spike_lr_scale, 0.5);
  // After the first rollback the steps count again from 30: calls 41-49
  // reach 39, with snapshots at 30 (the restored one) and 35, so the second
  // spike goes back to 30 as well.
  EXPECT_TRUE(torch::equal(run.weights_at_call.at(51), run.weights_at_call.at(31)));
}

TEST(SpikeRollback, OffOrUnderTheThresholdChangesNothing) {
  for (const double threshold : {0.0, 200.0}) {
    const auto run = train_with_spikes(threshold, {40});
    EXPECT_EQ(run.summary.rollbacks, 0) << threshold;
    EXPECT_DOUBLE_EQ(run.position.spike_lr_scale, 1.0) << threshold;
    EXPECT_FALSE(torch::equal(run.weights_at_call.at(41), run.weights_at_call.at(31))) << threshold;
  }
}

TEST(NonFinite, NanWeightsAreNeverSavedAsBestOrCheckpoint) {
  Tiny tiny;
  auto t = tiny_lm(tiny, 1);
  auto model = t.model;
  int evaluations = 0;
  t.task->on_evaluate = [model, &evaluations] {
    // Corrupt the weights after the second epoch's training, before it is scored.
    if (++evaluations == 2) {
      torch::NoGradGuard no_grad;
      model->parameters()[0].fill_(std::numeric_limits<float>::quiet_NaN());
    }
  };
  int best_saves = 0, checkpoints = 0;
  train::FitCallbacks cb;
  cb.save_best = [&best_saves] { ++best_saves; };
  cb.save_checkpoint = [&checkpoints](torch::serialize::OutputArchive&) {
    ++checkpoints;
    return std::string("ckpt");
  };
  auto options = Tiny::fit(3, 1e-2);
  try {
    train::Learner(*t.task, options, cb).fit();
    FAIL() << "NaN weights went unnoticed";
  } catch (const RuntimeFailure& e) {
    EXPECT_THAT(e.what(), HasSubstr("NaN or infinite"));
  }
  EXPECT_EQ(best_saves, 1);   // epoch 1 only
  EXPECT_EQ(checkpoints, 1);  // epoch 1 only
}

TEST(Learner, EvaluatesEveryNStepsAndKeepsTheBestOfThem) {
  Tiny tiny;
  auto t = tiny_lm(tiny, 1);
  std::size_t steps_per_epoch = 0;
  t.task->on_step = [&](train::StepResult&, int) { steps_per_epoch = t.task->num_batches(); };
  auto options = Tiny::fit(2, 1e-2);
  options.eval_every = 3;
  std::vector<json> evals;
  int best_saves = 0;
  train::FitCallbacks cb;
  cb.metrics = [&evals](const std::string& line) {
    const auto j = json::parse(line);
    if (j.contains("eval")) evals.push_back(j);
  };
  cb.save_best = [&best_saves] { ++best_saves; };
  const auto summary = train::Learner(*t.task, options, cb).fit();
  ASSERT_GT(evals.size(), 2u);
  std::size_t mid_epoch = 0;
  for (const auto& e : evals) {
    if (e.contains("global_step")) {
      ++mid_epoch;
      EXPECT_EQ(e.at("global_step").get<int>() % 3, 0);
      EXPECT_FALSE(e.contains("train_loss"));
    } else {
      EXPECT_TRUE(e.contains("train_loss"));  // the epoch-end evaluation
    }
  }
  EXPECT_GE(mid_epoch, 2 * ((steps_per_epoch - 1) / 3) - 1);
  EXPECT_EQ(evals.size() - mid_epoch, 2u);
  EXPECT_GE(best_saves, 2);
  // The best of every evaluation, mid-epoch ones included, is kept.
  double lowest = INFINITY;
  for (const auto& e : evals) lowest = std::min(lowest, e.at("valid_loss").get<double>());
  EXPECT_DOUBLE_EQ(summary.best.at("valid_loss"), lowest);
}

TEST(Learner, KeepLastKeepsEveryEvaluationAndTheMonitorStillStopsEarly) {
  Tiny tiny;
  auto t = tiny_lm(tiny, 1);
  // At LR 0 every evaluation scores the same, so the monitor improves only at
  // the first: keeping the best would save once and report epoch 1.
  auto options = Tiny::fit(5, 0.0);
  options.keep_last = true;
  options.patience = 2;
  int saves = 0;
  std::vector<json> evals;
  train::FitCallbacks cb;
  cb.metrics = [&evals](const std::string& line) {
    const auto j = json::parse(line);
    if (j.contains("eval")) evals.push_back(j);
  };
  cb.save_best = [&saves] { ++saves; };
  const auto summary = train::Learner(*t.task, options, cb).fit();
  EXPECT_EQ(summary.epochs_run, 3);  // epochs 2 and 3 did not improve valid_loss: patience ran out
  EXPECT_EQ(saves, 3);
  EXPECT_EQ(summary.best_epoch, 2);
  ASSERT_EQ(evals.size(), 3u);
  EXPECT_DOUBLE_EQ(summary.best.at("train_loss"), evals.back().at("train_loss").get<double>());

  options.keep_last = false;
  saves = 0;
  evals.clear();
  auto again = tiny_lm(tiny, 1);
  const auto best = train::Learner(*again.task, options, cb).fit();
  EXPECT_EQ(saves, 1);
  EXPECT_EQ(best.best_epoch, 0);
}

TEST(Precision, Bf16RunsMatrixProductsAndTheLstmInBf16WithFp32MasterWeights) {
  Tiny tiny;
  auto t = tiny_lm(tiny, 1);
  auto lm = std::dynamic_pointer_cast<nn::LanguageModelImpl>(t.model);
  ASSERT_TRUE(lm);
  const auto tokens = torch::randint(5, 20, {2, 6});
  for (const std::string precision : {"bf16", "fp32"}) {
    SCOPED_TRACE(precision);
    const auto want = precision == "bf16" ? torch::kBFloat16 : torch::kFloat;
    train::AutocastScope autocast(precision, torch::kCPU);
    EXPECT_EQ(torch::mm(torch::rand({4, 4}), torch::rand({4, 4})).scalar_type(), want);
    nn::RecurrentState state;
    const auto out = lm->forward(tokens, state);
    EXPECT_EQ(out.raw.scalar_type(), want);     // the LSTM's own output
    EXPECT_EQ(out.logits.scalar_type(), want);  // the decoder's product
  }
  // A bf16 training step leaves the weights (and Adam's state) in fp32.
  auto options = Tiny::fit(1, 1e-2);
  options.precision = "bf16";
  train::Learner(*t.task, options).fit();
  for (const auto& p : t.model->parameters()) EXPECT_EQ(p.scalar_type(), torch::kFloat);
}

}  // namespace
}  // namespace ulmfit
