#pragma once
/// Learning-rate (and momentum) schedules as pure functions of progress, so
/// tests can check them against the formulas and resume can recompute them.
///
///   Schedule s(cfg.train.schedule, /*total_steps=*/1000);
///   double lr = base_lr * s.lr_factor(step);   double beta1 = s.beta1(step, 0.9);
#include <cstdint>
#include <vector>

#include "ulmfit/config/config.h"

namespace ulmfit::train {

class Schedule {
 public:
  Schedule(const config::ScheduleConfig& config, std::int64_t total_steps);

  /// Multiplier of the peak LR at `step` (0-based) of total_steps.
  double lr_factor(std::int64_t step) const;
  /// Adam's beta1 at `step`: one-cycle moves it against the LR, from
  /// `base_beta1` down to `base_beta1 - 0.1` at the peak LR and back (fastai's
  /// text recipe: 0.8 -> 0.7 -> 0.8); other schedules keep `base_beta1`.
  double beta1(std::int64_t step, double base_beta1) const;
  std::int64_t total_steps() const { return total_; }

 private:
  config::ScheduleConfig config_;
  std::int64_t total_;
};

/// Per-group LRs for discriminative fine-tuning: the top group gets `lr`,
/// each group below it the one above divided by `factor`.
std::vector<double> discriminative_lrs(double lr, double factor, std::size_t groups);

/// fastai's cosine annealing from `start` to `end` as `pct` goes 0 -> 1.
double cosine_anneal(double start, double end, double pct);

}  // namespace ulmfit::train
