#pragma once
/// The one training loop every stage uses. A stage differs only in its Task,
/// its FitOptions and where the weights start.
///
///   Learner learner(task, options, callbacks);
///   FitSummary summary = learner.fit();
#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

#include "ulmfit/config/config.h"
#include "ulmfit/train/progress.h"
#include "ulmfit/train/schedule.h"
#include "ulmfit/train/spike_guard.h"
#include "ulmfit/train/task.h"
#include "ulmfit/train/training_state.h"

namespace ulmfit::train {

struct FitOptions {
  std::string stage = "train";          // names the stage in logs and metrics
  int epochs = 1;
  double lr = 1e-3;
  std::vector<double> stage_lrs;        // peak LR per unfreezing stage; empty = lr
  double discriminative_factor = 1.0;
  config::ScheduleConfig schedule;
  config::OptimizerConfig optimizer;
  double clip_grad = 0.0;
  /// Per epoch, how many top layer groups train (0 = all); the last entry
  /// holds for the remaining epochs. Consecutive equal entries form a stage,
  /// and each stage runs its own schedule.
  std::vector<int> freeze_plan = {0};
  int patience = 0;                     // evaluations without improvement before stopping; 0 = never
  int eval_every = 0;                   // steps between evaluations within an epoch; 0 = epoch ends only
  std::string monitor;                  // metric that picks the best weights; empty = the task's
  /// Keep every evaluation's weights (the last one wins) rather than the
  /// best monitored one's; the monitor still drives patience.
  bool keep_last = false;
  std::string precision = "fp32";
  torch::Device device = torch::kCPU;
  int log_every = 0;                    // steps between metric lines; 0 = about 20 per epoch
  int checkpoint_every = 0;             // steps between checkpoints; 0 = epoch ends only
  bool skip_nonfinite = false;          // skip a batch with a NaN / infinite loss or gradient instead of stopping
  /// Loss spikes (train/spike_guard.h): a batch loss this far above the
  /// running mean goes back to a snapshot; 0 = off.
  double spike_threshold = 0;
  int spike_interval = 25;              // applied steps between the guard's snapshots
  double spike_lr_backoff = 0.5;        // the stage's LR is multiplied by this at each rollback after its first
  bool allow_world_size_change = false; // resume a checkpoint written by another number of ranks
};

struct FitCallbacks {
  /// One JSON object per logged step or evaluation (metrics.jsonl).
  std::function<void(const std::string&)> metrics;
  /// The monitored metric improved (or, with keep_last, an evaluation ran):
  /// keep these weights.
  std::function<void()> save_best;
  /// A checkpoint is due (every checkpoint_every steps, each epoch end, and
  /// on an interrupt): `training_state` holds the Learner's part; add the
  /// model's weights, write it atomically and return where it went.
  std::function<std::string(torch::serialize::OutputArchive& training_state)> save_checkpoint;
};

struct FitSummary {
  Metrics last;
  Metrics best;
  int best_epoch = -1;
  int epochs_run = 0;
  std::int64_t steps = 0;
  std::int64_t skipped_batches = 0;
  std::int64_t rollbacks = 0;
  double seconds = 0;
};

/// Turns config into a freeze plan: `freeze_to` when given, else `unfreeze`
/// (none: all groups from the start; gradual: the top group, then one more per
/// epoch until all train).
std::vector<int> freeze_plan_from(const config::TrainConfig& train, std::size_t groups);

/// A SIGINT / SIGTERM or a fault stops fit() with one of the errors in
/// util/error.h: Interrupted (after writing a checkpoint) or RuntimeFailure (a
/// non-finite loss or gradient under on_nonfinite: stop, naming the step, the
/// LR and the last good checkpoint). Weights holding NaN are never saved.
class Learner {
 public:
  Learner(Task& task, FitOptions options, FitCallbacks callbacks = {});
  FitSummary fit();
  /// Continues where a checkpoint written through save_checkpoint left off
  /// (the model's weights must already be loaded). `source` names it in errors.
  void restore(torch::serialize::InputArchive& checkpoint, const std::string& source);
  const LoopPosition& position() const { return pos_; }

  /// Makes only the top `trainable` groups require gradients (0 = all).
  void freeze_to(int trainable);
  torch::optim::Optimizer& optimizer() { return *optimizer_; }
  /// Sets every group's LR from the stage's peak LR and a schedule factor.
  void set_lrs(double peak_lr, double factor, double beta1);

 private:
  /// Consecutive epochs with the same trainable groups share one schedule.
  struct StageSpan {
    int first_epoch, end_epoch, index, trainable;
  };
  StageSpan stage_span(int epoch) const;
  /// One batch: forward, backward, checks, optimizer step. False when the
  /// batch was skipped as non-finite or undone as a loss spike.
  bool train_batch(const Schedule& schedule, double peak_lr);
  /// A loss spike: back to the guard's snapshot; from the stage's second on,
  /// a lower LR for the rest of it.
  void roll_back_spike(double loss, double lr);
  /// Evaluates, keeps the best weights, and says whether patience ran out.
  /// `progress` is given at an epoch's end (train_loss joins the metrics),
  /// null for an evaluation every eval_every steps.
  bool evaluate_and_keep_best(ProgressLine* progress, const std::string& monitor, bool higher);
  void write_checkpoint();
  /// Every rank's generator and carried state, for rank 0's checkpoint.
  std::vector<RankState> gather_rank_states() const;
  bool weights_finite() const;
  std::string where_now() const;

  Task& task_;
  FitOptions options_;
  FitCallbacks callbacks_;
  std::vector<nn::ParameterGroup> groups_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::vector<std::size_t> layer_group_of_optimizer_group_;  // each optimizer group's index in groups_
  LoopPosition pos_;
  std::vector<torch::Tensor> restored_carried_;  // applied once the epoch is positioned
  std::string last_checkpoint_;                 // for messages: where and when
  SpikeGuard spikes_;
  int consecutive_skips_ = 0;
  bool stop_after_step_ = false;  // a signal reached this rank or another one during the last step
  double last_loss_ = 0, last_items_ = 0;  // of the last applied batch
};

/// fastai's LR finder: raises the LR exponentially from start_lr to end_lr
/// over `steps` steps, records the exponentially smoothed loss, and stops
/// when it exceeds 4x the best. Returns (lr, smoothed loss) pairs.
std::vector<std::pair<double, double>> lr_range_test(Task& task, const FitOptions& options,
                                                     double start_lr, double end_lr, int steps);

/// Whether a larger value of `metric` is better (losses and perplexity: no).
bool higher_is_better(const std::string& metric);

/// A tenth of the LR at the lowest smoothed loss (fastai's lr_min / 10).
double suggest_lr(const std::vector<std::pair<double, double>>& curve);

}  // namespace ulmfit::train
