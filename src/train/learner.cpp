#include "ulmfit/train/learner.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <sstream>

#include "ulmfit/train/precision.h"
#include "ulmfit/train/progress.h"
#include "ulmfit/train/schedule.h"
#include "ulmfit/util/error.h"
#include "ulmfit/util/log.h"

namespace ulmfit::train {
namespace {

using Clock = std::chrono::steady_clock;

template <class Optimizer, class Options>
std::unique_ptr<torch::optim::Optimizer> build_optimizer(const std::vector<nn::ParameterGroup>& groups,
                                                         const config::OptimizerConfig& cfg) {
  const auto options = Options(1e-3)
                           .betas(std::make_tuple(cfg.betas.at(0), cfg.betas.at(1)))
                           .eps(cfg.eps)
                           .weight_decay(cfg.weight_decay);
  std::vector<torch::optim::OptimizerParamGroup> param_groups;
  for (const auto& g : groups) param_groups.emplace_back(g, std::make_unique<Options>(options));
  return std::make_unique<Optimizer>(param_groups, options);
}

/// One parameter group per layer group, so each can get its own LR.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const std::vector<nn::ParameterGroup>& groups,
                                                        const config::OptimizerConfig& cfg) {
  if (cfg.name == "adamw") return build_optimizer<torch::optim::AdamW, torch::optim::AdamWOptions>(groups, cfg);
  return build_optimizer<torch::optim::Adam, torch::optim::AdamOptions>(groups, cfg);
}

void set_group_options(torch::optim::OptimizerParamGroup& group, double lr, double beta1) {
  auto& options = group.options();
  if (auto* adamw = dynamic_cast<torch::optim::AdamWOptions*>(&options)) {
    adamw->lr(lr);
    adamw->betas(std::make_tuple(beta1, std::get<1>(adamw->betas())));
  } else if (auto* adam = dynamic_cast<torch::optim::AdamOptions*>(&options)) {
    adam->lr(lr);
    adam->betas(std::make_tuple(beta1, std::get<1>(adam->betas())));
  }
}

std::string metrics_text(const Metrics& m) {
  std::ostringstream out;
  out.precision(4);
  for (const auto& [k, v] : m) out << (out.tellp() > 0 ? " " : "") << k << " " << v;
  return out.str();
}

bool improves(double value, double best, bool higher_is_better) {
  return higher_is_better ? value > best : value < best;
}

std::vector<torch::Tensor> trainable(const std::vector<nn::ParameterGroup>& groups) {
  std::vector<torch::Tensor> out;
  for (const auto& g : groups) {
    for (const auto& p : g) {
      if (p.requires_grad()) out.push_back(p);
    }
  }
  return out;
}

}  // namespace

std::vector<int> freeze_plan_from(const config::TrainConfig& train, std::size_t groups) {
  if (!train.freeze_to.empty()) return train.freeze_to;
  if (train.unfreeze == "gradual") {
    std::vector<int> plan;
    for (std::size_t k = 1; k < groups; ++k) plan.push_back(static_cast<int>(k));
    plan.push_back(0);
    return plan;
  }
  return {0};
}

Learner::Learner(Task& task, FitOptions options, FitCallbacks callbacks)
    : task_(task), options_(std::move(options)), callbacks_(std::move(callbacks)), groups_(task.layer_groups()) {
  optimizer_ = make_optimizer(groups_, options_.optimizer);
}

void Learner::freeze_to(int trainable_groups) {
  const int n = static_cast<int>(groups_.size());
  const int first_trainable = trainable_groups <= 0 ? 0 : std::max(0, n - trainable_groups);
  for (int g = 0; g < n; ++g) {
    for (auto& p : groups_[static_cast<std::size_t>(g)]) p.set_requires_grad(g >= first_trainable);
  }
}

void Learner::set_lrs(double peak_lr, double factor, double beta1) {
  const auto lrs = discriminative_lrs(peak_lr, options_.discriminative_factor, groups_.size());
  auto& param_groups = optimizer_->param_groups();
  for (std::size_t g = 0; g < param_groups.size(); ++g) set_group_options(param_groups[g], lrs[g] * factor, beta1);
}

FitSummary Learner::fit() {
  FitSummary summary;
  const auto fit_start = Clock::now();
  auto model = task_.model();
  ProgressLine progress(options_.stage, task_.item_name());
  const std::string monitor = options_.monitor.empty() ? task_.monitor() : options_.monitor;
  const bool higher = options_.monitor.empty() ? task_.higher_is_better() : higher_is_better(monitor);
  double best = higher ? -INFINITY : INFINITY;
  int stale_epochs = 0;
  std::int64_t global_step = 0;
  const double beta1 = options_.optimizer.betas.at(0);

  int epoch = 0;
  int stage_index = 0;
  while (epoch < options_.epochs) {
    // A stage: consecutive epochs with the same trainable groups.
    auto plan_at = [&](int e) {
      return options_.freeze_plan.at(std::min<std::size_t>(static_cast<std::size_t>(e), options_.freeze_plan.size() - 1));
    };
    const int trainable_groups = plan_at(epoch);
    int stage_end = epoch + 1;
    while (stage_end < options_.epochs && plan_at(stage_end) == trainable_groups) ++stage_end;
    freeze_to(trainable_groups);
    const double peak_lr =
        options_.stage_lrs.empty()
            ? options_.lr
            : options_.stage_lrs.at(std::min<std::size_t>(static_cast<std::size_t>(stage_index), options_.stage_lrs.size() - 1));
    task_.start_epoch(epoch);
    const auto per_epoch = static_cast<std::int64_t>(task_.num_batches());
    const Schedule schedule(options_.schedule, per_epoch * (stage_end - epoch));
    const std::string which = trainable_groups == 0 || trainable_groups >= static_cast<int>(groups_.size())
                                  ? "all " + std::to_string(groups_.size()) + " layer groups"
                                  : "the top " + std::to_string(trainable_groups) + " of " +
                                        std::to_string(groups_.size()) + " layer groups";
    log::info(options_.stage + ": epochs " + std::to_string(epoch + 1) + "-" + std::to_string(stage_end) + " train " +
              which + ", peak lr " + std::to_string(peak_lr));
    std::int64_t stage_step = 0;

    for (; epoch < stage_end; ++epoch) {
      if (stage_step > 0) task_.start_epoch(epoch);
      const std::size_t steps = task_.num_batches();
      const int log_every = options_.log_every > 0 ? options_.log_every : std::max<int>(1, static_cast<int>(steps / 20));
      progress.start_epoch(epoch, options_.epochs, steps);
      model->train();
      double epoch_loss = 0, epoch_items = 0;
      const auto epoch_start = Clock::now();
      for (std::size_t i = 0; i < steps; ++i, ++stage_step, ++global_step) {
        optimizer_->zero_grad();
        StepResult step;
        {
          AutocastScope autocast(options_.precision, options_.device);
          step = task_.train_step();
        }
        if (!std::isfinite(step.loss_value)) {
          throw RuntimeFailure(options_.stage + ": the loss became " + std::to_string(step.loss_value) +
                               " at epoch " + std::to_string(epoch + 1) + " step " + std::to_string(i + 1) +
                               "; lower the learning rate (train.lr)");
        }
        step.loss.backward();
        if (options_.clip_grad > 0) torch::nn::utils::clip_grad_norm_(trainable(groups_), options_.clip_grad);
        const double factor = schedule.lr_factor(stage_step);
        set_lrs(peak_lr, factor * step.lr_scale, schedule.beta1(stage_step, beta1));
        optimizer_->step();
        epoch_loss += step.loss_value;
        epoch_items += step.items;
        const double top_lr = peak_lr * factor;
        progress.update(i + 1, step.loss_value, step.items, top_lr);
        if (callbacks_.metrics && ((i + 1) % static_cast<std::size_t>(log_every) == 0 || i + 1 == steps)) {
          const double seconds = std::chrono::duration<double>(Clock::now() - epoch_start).count();
          callbacks_.metrics(nlohmann::json{{"stage", options_.stage},
                                            {"epoch", epoch + 1},
                                            {"step", i + 1},
                                            {"global_step", global_step + 1},
                                            {"loss", step.loss_value},
                                            {"lr", top_lr},
                                            {task_.item_name() + "_per_s", epoch_items / std::max(seconds, 1e-9)}}
                                 .dump());
        }
      }
      model->eval();
      Metrics metrics;
      {
        torch::NoGradGuard no_grad;
        AutocastScope autocast(options_.precision, options_.device);
        metrics = task_.evaluate();
      }
      metrics["train_loss"] = epoch_loss / std::max<double>(1.0, static_cast<double>(steps));
      summary.last = metrics;
      ++summary.epochs_run;
      progress.finish_epoch(metrics_text(metrics));
      if (callbacks_.metrics) {
        nlohmann::json line{{"stage", options_.stage}, {"epoch", epoch + 1}, {"eval", true}};
        for (const auto& [k, v] : metrics) line[k] = v;
        callbacks_.metrics(line.dump());
      }
      const auto it = metrics.find(monitor);
      // train_loss alone means there was no validation data to monitor.
      if (it == metrics.end() && metrics.size() > 1) {
        throw ConfigError("train.monitor: the " + options_.stage + " stage reports no metric '" + monitor +
                          "' (it reports: " + metrics_text(metrics) + ")");
      }
      const double value = it == metrics.end() ? NAN : it->second;
      if (std::isfinite(value) && improves(value, best, higher)) {
        best = value;
        summary.best = metrics;
        summary.best_epoch = epoch;
        stale_epochs = 0;
        if (callbacks_.save_best) callbacks_.save_best();
      } else {
        ++stale_epochs;
      }
      if (callbacks_.save_state) callbacks_.save_state(epoch, *optimizer_);
      if (options_.patience > 0 && stale_epochs >= options_.patience) {
        log::info(options_.stage + ": no improvement of " + monitor + " in " +
                  std::to_string(options_.patience) + " epochs; stopping early");
        epoch = options_.epochs;
        break;
      }
    }
    ++stage_index;
  }
  summary.steps = global_step;
  summary.seconds = std::chrono::duration<double>(Clock::now() - fit_start).count();
  return summary;
}

std::vector<std::pair<double, double>> lr_range_test(Task& task, const FitOptions& options, double start_lr,
                                                     double end_lr, int steps) {
  FitOptions opts = options;
  opts.discriminative_factor = 1.0;
  Learner learner(task, opts);
  learner.freeze_to(0);
  auto model = task.model();
  model->train();
  std::vector<std::pair<double, double>> curve;
  double smoothed = 0, best = INFINITY;
  int epoch = 0;
  task.start_epoch(epoch);
  std::size_t in_epoch = 0;
  for (int i = 0; i < steps; ++i, ++in_epoch) {
    if (in_epoch >= task.num_batches()) {
      task.start_epoch(++epoch);
      in_epoch = 0;
    }
    const double lr = start_lr * std::pow(end_lr / start_lr, static_cast<double>(i) / std::max(1, steps - 1));
    learner.set_lrs(lr, 1.0, opts.optimizer.betas.at(0));
    learner.optimizer().zero_grad();
    StepResult step;
    {
      AutocastScope autocast(opts.precision, opts.device);
      step = task.train_step();
    }
    if (!std::isfinite(step.loss_value)) break;
    step.loss.backward();
    if (opts.clip_grad > 0) torch::nn::utils::clip_grad_norm_(model->parameters(), opts.clip_grad);
    learner.optimizer().step();
    smoothed = 0.98 * smoothed + 0.02 * step.loss_value;
    const double debiased = smoothed / (1 - std::pow(0.98, i + 1));
    curve.emplace_back(lr, debiased);
    best = std::min(best, debiased);
    if (i > 10 && debiased > 4 * best) break;
  }
  return curve;
}

bool higher_is_better(const std::string& metric) {
  return metric.find("loss") == std::string::npos && metric != "perplexity";
}

double suggest_lr(const std::vector<std::pair<double, double>>& curve) {
  if (curve.empty()) return 0.0;
  // fastai's "minimum / 10": a tenth of the LR where the smoothed loss is
  // lowest, which stays robust on the flat, noisy start a pretrained model shows.
  const auto lowest = std::min_element(curve.begin(), curve.end(),
                                       [](const auto& a, const auto& b) { return a.second < b.second; });
  return lowest->first / 10.0;
}

}  // namespace ulmfit::train
