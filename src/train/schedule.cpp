#include "ulmfit/train/schedule.h"

#include <algorithm>
#include <cmath>

namespace ulmfit::train {

double cosine_anneal(double start, double end, double pct) {
  return end + (start - end) / 2.0 * (std::cos(M_PI * pct) + 1.0);
}

Schedule::Schedule(const config::ScheduleConfig& config, std::int64_t total_steps)
    : config_(config), total_(std::max<std::int64_t>(1, total_steps)) {}

double Schedule::lr_factor(std::int64_t step) const {
  const double t = static_cast<double>(std::clamp<std::int64_t>(step, 0, total_ - 1));
  const double T = static_cast<double>(total_);
  if (config_.name == "stlr") {
    // Howard & Ruder 2018, eq. 3.
    const double cut = std::max(1.0, std::floor(T * config_.cut_frac));
    const double p = t < cut ? t / cut : 1.0 - (t - cut) / (cut * (1.0 / config_.cut_frac - 1.0));
    return (1.0 + std::max(p, 0.0) * (config_.ratio - 1.0)) / config_.ratio;
  }
  if (config_.name == "one_cycle") {
    // fastai fit_one_cycle: cosine from lr/25 up to lr over pct_start, then
    // cosine down to lr/(25*1e4) = lr/2.5e5 (div=25, div_final=1e5).
    const double warm = std::floor(T * config_.pct_start);
    if (t < warm) return cosine_anneal(1.0 / 25.0, 1.0, t / warm);
    const double rest = std::max(1.0, T - warm);
    return cosine_anneal(1.0, 1.0 / 25.0 / 1e5, (t - warm) / rest);
  }
  const double warmup = static_cast<double>(config_.warmup_steps);
  if (t < warmup) return (t + 1.0) / (warmup + 1.0);
  if (config_.name == "cosine") {
    const double rest = std::max(1.0, T - warmup);
    return cosine_anneal(1.0, 0.0, (t - warmup) / rest);
  }
  return 1.0;  // constant
}

double Schedule::beta1(std::int64_t step, double base_beta1) const {
  if (config_.name != "one_cycle") return base_beta1;
  const double t = static_cast<double>(std::clamp<std::int64_t>(step, 0, total_ - 1));
  const double T = static_cast<double>(total_);
  const double high = base_beta1, low = base_beta1 - 0.1;
  const double warm = std::floor(T * config_.pct_start);
  if (t < warm) return cosine_anneal(high, low, t / warm);
  return cosine_anneal(low, high, (t - warm) / std::max(1.0, T - warm));
}

std::vector<double> discriminative_lrs(double lr, double factor, std::size_t groups) {
  std::vector<double> lrs(groups);
  double current = lr;
  for (std::size_t i = groups; i-- > 0;) {
    lrs[i] = current;
    current /= factor;
  }
  return lrs;
}

}  // namespace ulmfit::train
