#include "ulmfit/train/learner.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <csignal>
#include <limits>
#include <sstream>

#include "ulmfit/dist/process_group.h"
#include "ulmfit/train/precision.h"
#include "ulmfit/train/progress.h"
#include "ulmfit/train/schedule.h"
#include "ulmfit/util/error.h"
#include "ulmfit/util/interrupt.h"
#include "ulmfit/util/log.h"

namespace ulmfit::train {
namespace {

using Clock = std::chrono::steady_clock;

/// Under on_nonfinite: skip, this many non-finite batches in a row mean the
/// weights or the LR are broken beyond skipping.
constexpr int kMaxConsecutiveSkips = 100;

/// Optimizer groups per layer group: one, or two when biases and norm scales
/// (the one-dimensional parameters) go without weight decay. `layer_group`
/// says which layer group each optimizer group belongs to, for its LR.
template <class Optimizer, class Options>
std::unique_ptr<torch::optim::Optimizer> build_optimizer(const std::vector<nn::ParameterGroup>& groups,
                                                         const config::OptimizerConfig& cfg,
                                                         std::vector<std::size_t>& layer_group) {
  const auto options = Options(1e-3)
                           .betas(std::make_tuple(cfg.betas.at(0), cfg.betas.at(1)))
                           .eps(cfg.eps)
                           .weight_decay(cfg.weight_decay);
  std::vector<torch::optim::OptimizerParamGroup> param_groups;
  layer_group.clear();
  const auto add = [&](const std::vector<torch::Tensor>& params, std::size_t g, double weight_decay) {
    param_groups.emplace_back(params, std::make_unique<Options>(Options(options).weight_decay(weight_decay)));
    layer_group.push_back(g);
  };
  for (std::size_t g = 0; g < groups.size(); ++g) {
    if (cfg.decay_biases_and_norms) {
      add(groups[g], g, cfg.weight_decay);
      continue;
    }
    std::vector<torch::Tensor> matrices, vectors;
    for (const auto& p : groups[g]) (p.dim() >= 2 ? matrices : vectors).push_back(p);
    if (!matrices.empty()) add(matrices, g, cfg.weight_decay);
    if (!vectors.empty()) add(vectors, g, 0.0);
  }
  return std::make_unique<Optimizer>(param_groups, options);
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const std::vector<nn::ParameterGroup>& groups,
                                                        const config::OptimizerConfig& cfg,
                                                        std::vector<std::size_t>& layer_group) {
  if (cfg.name == "adamw") {
    return build_optimizer<torch::optim::AdamW, torch::optim::AdamWOptions>(groups, cfg, layer_group);
  }
  return build_optimizer<torch::optim::Adam, torch::optim::AdamOptions>(groups, cfg, layer_group);
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

std::vector<torch::Tensor> all_parameters(const std::vector<nn::ParameterGroup>& groups) {
  std::vector<torch::Tensor> out;
  for (const auto& g : groups) out.insert(out.end(), g.begin(), g.end());
  return out;
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
    : task_(task),
      options_(std::move(options)),
      callbacks_(std::move(callbacks)),
      groups_(task.layer_groups()),
      spikes_(options_.spike_threshold, options_.spike_interval) {
  optimizer_ = make_optimizer(groups_, options_.optimizer, layer_group_of_optimizer_group_);
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
  for (std::size_t g = 0; g < param_groups.size(); ++g) {
    set_group_options(param_groups[g], lrs[layer_group_of_optimizer_group_[g]] * factor, beta1);
  }
}

Learner::StageSpan Learner::stage_span(int epoch) const {
  auto plan_at = [&](int e) {
    return options_.freeze_plan.at(std::min<std::size_t>(static_cast<std::size_t>(e), options_.freeze_plan.size() - 1));
  };
  StageSpan span{0, 0, 0, plan_at(0)};
  for (int e = 1; e <= epoch; ++e) {
    if (plan_at(e) != span.trainable) {
      span = {e, 0, span.index + 1, plan_at(e)};
    }
  }
  span.end_epoch = epoch + 1;
  while (span.end_epoch < options_.epochs && plan_at(span.end_epoch) == span.trainable) ++span.end_epoch;
  return span;
}

std::string Learner::where_now() const {
  return "epoch " + std::to_string(pos_.epoch + 1) + " step " + std::to_string(pos_.step_in_epoch);
}

bool Learner::weights_finite() const {
  for (const auto& g : groups_) {
    for (const auto& p : g) {
      if (!torch::isfinite(p).all().item<bool>()) return false;
    }
  }
  return true;
}

std::vector<RankState> Learner::gather_rank_states() const {
  // The hidden state only continues within an epoch; each epoch starts afresh.
  const auto carried = pos_.step_in_epoch > 0 ? task_.carried_state() : std::vector<torch::Tensor>{};
  const RankState mine = current_rank_state(carried, options_.device);
  auto& group = dist::world();
  if (!group.distributed()) return {mine};
  std::vector<RankState> all(static_cast<std::size_t>(group.size()));
  const auto rngs = group.all_gather(mine.rng);
  for (std::size_t r = 0; r < all.size(); ++r) all[r].rng = rngs[r];
  for (const auto& t : mine.carried) {
    const auto parts = group.all_gather(t);
    for (std::size_t r = 0; r < all.size(); ++r) all[r].carried.push_back(parts[r]);
  }
  return all;
}

void Learner::write_checkpoint() {
  // Ranks other than 0 write nothing, but their share goes into rank 0's file.
  const bool writes = static_cast<bool>(callbacks_.save_checkpoint);
  if (!writes && !dist::world().distributed()) return;
  if (!weights_finite()) {
    throw RuntimeFailure(options_.stage + ": the weights hold NaN or infinite values at " + where_now() +
                         "; no checkpoint written, the last good one is " +
                         (last_checkpoint_.empty() ? std::string("none") : last_checkpoint_));
  }
  const auto ranks = gather_rank_states();
  const std::string when = pos_.step_in_epoch > 0 ? where_now() : "end of epoch " + std::to_string(pos_.epoch);
  if (!writes) {
    last_checkpoint_ = "rank 0's (" + when + ")";
    return;
  }
  torch::serialize::OutputArchive archive;
  save_training_state(archive, pos_, *optimizer_, ranks);
  last_checkpoint_ = callbacks_.save_checkpoint(archive) + " (" + when + ")";
}

void Learner::restore(torch::serialize::InputArchive& checkpoint, const std::string& source) {
  const ResumingRank resuming{dist::world().rank(), dist::world().size(), options_.allow_world_size_change};
  auto restored = restore_training_state(checkpoint, *optimizer_, options_.device, source, resuming);
  pos_ = restored.position;
  restored_carried_ = std::move(restored.carried);
  last_checkpoint_ = source;
}

bool Learner::train_batch(const Schedule& schedule, double peak_lr) {
  optimizer_->zero_grad();
  StepResult step;
  {
    AutocastScope autocast(options_.precision, options_.device);
    step = task_.train_step();
  }
  const double factor = schedule.lr_factor(pos_.stage_step);
  std::string fault;
  const bool loss_finite = std::isfinite(step.loss_value);
  if (loss_finite) step.loss.backward();
  const auto params = trainable(groups_);
  // With several ranks: every rank's gradients averaged into each, and the
  // step's figures for the whole global batch. One process: unchanged.
  const auto totals = dist::average_gradients(params, step.weight, step.loss_value, step.items, loss_finite,
                                              util::interrupt_requested());
  stop_after_step_ = totals.interrupt;
  if (!loss_finite) {
    fault = "the loss became " + std::to_string(step.loss_value);
  } else if (!totals.finite) {
    fault = "another rank's loss became non-finite";
  } else {
    const double norm =
        options_.clip_grad > 0
            ? torch::nn::utils::clip_grad_norm_(params, options_.clip_grad)
            : torch::nn::utils::clip_grad_norm_(params, std::numeric_limits<double>::infinity());
    if (!std::isfinite(norm)) fault = "the gradient norm became " + std::to_string(norm);
  }
  if (!fault.empty()) {
    std::ostringstream where;
    where << options_.stage << ": " << fault << " at epoch " << pos_.epoch + 1 << " step " << pos_.step_in_epoch + 1
          << " (lr " << peak_lr * factor << ")";
    if (!options_.skip_nonfinite) {
      throw RuntimeFailure(where.str() + "; the weights were not updated; last good checkpoint: " +
                           (last_checkpoint_.empty() ? std::string("none yet") : last_checkpoint_) +
                           ". Lower train.lr, or set train.on_nonfinite: skip");
    }
    optimizer_->zero_grad();
    ++pos_.skipped_batches;
    if (++consecutive_skips_ >= kMaxConsecutiveSkips) {
      throw RuntimeFailure(where.str() + ": " + std::to_string(kMaxConsecutiveSkips) +
                           " batches in a row were non-finite; stopping (last good checkpoint: " +
                           (last_checkpoint_.empty() ? std::string("none yet") : last_checkpoint_) + ")");
    }
    log::warn(where.str() + "; batch skipped (" + std::to_string(pos_.skipped_batches) + " so far)");
    return false;
  }
  consecutive_skips_ = 0;
  if (spikes_.is_spike(totals.loss)) {
    roll_back_spike(totals.loss, peak_lr * factor * pos_.spike_lr_scale);
    return false;
  }
  set_lrs(peak_lr, factor * step.lr_scale * pos_.spike_lr_scale,
          schedule.beta1(pos_.stage_step, options_.optimizer.betas.at(0)));
  optimizer_->step();
  if (spikes_.enabled()) spikes_.after_step(totals.loss, all_parameters(groups_), *optimizer_);
  pos_.epoch_loss += totals.loss;
  pos_.epoch_items += totals.items;
  ++pos_.epoch_batches;
  last_loss_ = totals.loss;
  last_items_ = totals.items;
  return true;
}

bool Learner::evaluate_and_keep_best(ProgressLine* progress, const std::string& monitor, bool higher) {
  auto model = task_.model();
  model->eval();
  Metrics metrics;
  {
    torch::NoGradGuard no_grad;
    AutocastScope autocast(options_.precision, options_.device);
    metrics = task_.evaluate();
  }
  const bool epoch_end = progress != nullptr;
  if (epoch_end) {
    metrics["train_loss"] = pos_.epoch_loss / static_cast<double>(std::max<std::int64_t>(1, pos_.epoch_batches));
    pos_.last_metrics = metrics;
    ++pos_.epochs_run;
    progress->finish_epoch(metrics_text(metrics));
  } else {
    log::info(options_.stage + ": " + where_now() + ": " + metrics_text(metrics));
  }
  if (callbacks_.metrics) {
    nlohmann::json line{{"stage", options_.stage}, {"epoch", pos_.epoch + 1}, {"eval", true}};
    if (!epoch_end) {
      line["step"] = pos_.step_in_epoch;
      line["global_step"] = pos_.global_step;
    }
    for (const auto& [k, v] : metrics) line[k] = v;
    if (pos_.skipped_batches > 0) line["skipped_batches"] = pos_.skipped_batches;
    if (pos_.rollbacks > 0) line["rollbacks"] = pos_.rollbacks;
    callbacks_.metrics(line.dump());
  }
  const auto it = metrics.find(monitor);
  // Nothing (or train_loss alone) means there was no validation data to monitor.
  const bool has_validation = !metrics.empty() && !(metrics.size() == 1 && metrics.count("train_loss"));
  if (it == metrics.end() && has_validation) {
    throw ConfigError("train.monitor: the " + options_.stage + " stage reports no metric '" + monitor +
                      "' (it reports: " + metrics_text(metrics) + ")");
  }
  const double value = it == metrics.end() ? NAN : it->second;
  const bool improved = std::isfinite(value) && (!pos_.has_best || improves(value, pos_.best, higher));
  // best_metrics and best_epoch describe the weights kept, which under
  // keep_last are the latest evaluation's whether or not the monitor improved.
  const bool keep = options_.keep_last ? (has_validation || epoch_end) : improved;
  if (keep) {
    if (!weights_finite()) {
      throw RuntimeFailure(options_.stage + ": the weights hold NaN or infinite values at " + where_now() +
                           "; the weights kept so far stay");
    }
    pos_.best_metrics = metrics;
    pos_.best_epoch = pos_.epoch;
    if (callbacks_.save_best) callbacks_.save_best();
  }
  if (improved) {
    pos_.best = value;
    pos_.has_best = true;
    pos_.stale_epochs = 0;
  } else if (has_validation || epoch_end) {
    ++pos_.stale_epochs;
  }
  model->train();
  if (options_.patience > 0 && pos_.stale_epochs >= options_.patience) {
    log::info(options_.stage + ": no improvement of " + monitor + " in " + std::to_string(options_.patience) +
              " evaluations; stopping early");
    return true;
  }
  return false;
}

void Learner::roll_back_spike(double loss, double lr) {
  optimizer_->zero_grad();
  const double mean = spikes_.running_mean();
  const auto undone = spikes_.roll_back(all_parameters(groups_), *optimizer_);
  task_.restore_carried_state({});  // the hidden state came from the weights being undone
  // The first spike of a stage may be the draw's bad luck: PaLM's remedy,
  // going back and skipping the batches, is enough. A second one says the
  // LR is too high for these weights.
  if (spikes_.rollbacks() > 1) pos_.spike_lr_scale *= options_.spike_lr_backoff;
  ++pos_.rollbacks;
  std::ostringstream what;
  what.precision(4);
  what << options_.stage << ": loss spike at epoch " << pos_.epoch + 1 << " step " << pos_.step_in_epoch + 1
       << " (loss " << loss << ", running mean " << mean << ", lr " << lr << "): back " << undone
       << " steps to the guard's snapshot, on with the next batches at " << pos_.spike_lr_scale
       << " x the schedule's LR (rollback " << spikes_.rollbacks() << " of at most " << SpikeGuard::kMaxRollbacks
       << " this stage)";
  log::warn(what.str());
}

FitSummary Learner::fit() {
  const auto process_start = Clock::now();
  const double seconds_before = pos_.seconds;
  util::InterruptScope interrupts;
  auto model = task_.model();
  ProgressLine progress(options_.stage, task_.item_name());
  const std::string monitor = options_.monitor.empty() ? task_.monitor() : options_.monitor;
  const bool higher = options_.monitor.empty() ? task_.higher_is_better() : higher_is_better(monitor);
  auto elapsed = [&] {
    return seconds_before + std::chrono::duration<double>(Clock::now() - process_start).count();
  };
  auto stop_for_interrupt = [&] {
    pos_.seconds = elapsed();
    write_checkpoint();
    const int sig = util::interrupt_signal();
    throw Interrupted(options_.stage + ": " + (sig == SIGTERM ? "terminated" : "interrupted") + " at " +
                      where_now() + "; checkpoint written: " + last_checkpoint_);
  };
  if (pos_.global_step > 0 || pos_.epoch > 0) {
    log::info(options_.stage + ": resuming at " + where_now() + " (" + std::to_string(pos_.global_step) +
              " steps done)");
  }

  while (pos_.epoch < options_.epochs) {
    const StageSpan span = stage_span(pos_.epoch);
    freeze_to(span.trainable);
    task_.start_epoch(pos_.epoch);
    const double peak_lr =
        options_.stage_lrs.empty()
            ? options_.lr
            : options_.stage_lrs.at(std::min<std::size_t>(static_cast<std::size_t>(span.index), options_.stage_lrs.size() - 1));
    if (pos_.stage_steps == 0) {
      pos_.stage_steps = static_cast<std::int64_t>(task_.num_batches()) * (span.end_epoch - span.first_epoch);
      pos_.stage_step = 0;
      pos_.spike_lr_scale = 1;
      spikes_.start_stage();
      const int n = static_cast<int>(groups_.size());
      const std::string which = span.trainable == 0 || span.trainable >= n
                                    ? "all " + std::to_string(n) + " layer groups"
                                    : "the top " + std::to_string(span.trainable) + " of " + std::to_string(n) +
                                          " layer groups";
      log::info(options_.stage + ": epochs " + std::to_string(span.first_epoch + 1) + "-" +
                std::to_string(span.end_epoch) + " train " + which + ", peak lr " + std::to_string(peak_lr));
    }
    if (pos_.step_in_epoch > 0) {
      task_.seek(static_cast<std::size_t>(pos_.step_in_epoch));
      if (!restored_carried_.empty()) task_.restore_carried_state(std::move(restored_carried_));
    }
    restored_carried_.clear();
    const Schedule schedule(options_.schedule, pos_.stage_steps);

    const auto steps = static_cast<std::int64_t>(task_.num_batches());
    const int log_every = options_.log_every > 0 ? options_.log_every : std::max<int>(1, static_cast<int>(steps / 20));
    progress.start_epoch(pos_.epoch, options_.epochs, static_cast<std::size_t>(steps));
    model->train();
    bool stopped_mid_epoch = false;
    const auto epoch_start = Clock::now();
    double items_this_process = 0;
    while (pos_.step_in_epoch < steps) {
      const bool applied = train_batch(schedule, peak_lr);
      const double top_lr = peak_lr * schedule.lr_factor(pos_.stage_step) * pos_.spike_lr_scale;
      ++pos_.step_in_epoch;
      ++pos_.stage_step;
      ++pos_.global_step;
      if (applied) {
        items_this_process += last_items_;
        progress.update(static_cast<std::size_t>(pos_.step_in_epoch), last_loss_, last_items_, top_lr);
      }
      if (callbacks_.metrics && (pos_.step_in_epoch % log_every == 0 || pos_.step_in_epoch == steps)) {
        const double seconds = std::chrono::duration<double>(Clock::now() - epoch_start).count();
        nlohmann::json line{{"stage", options_.stage},
                            {"epoch", pos_.epoch + 1},
                            {"step", pos_.step_in_epoch},
                            {"global_step", pos_.global_step},
                            {"lr", top_lr},
                            {task_.item_name() + "_per_s", items_this_process / std::max(seconds, 1e-9)}};
        if (applied) {
          line["loss"] = last_loss_;
        } else {
          line["skipped"] = true;
        }
        callbacks_.metrics(line.dump());
      }
      if (options_.eval_every > 0 && pos_.global_step % options_.eval_every == 0 && pos_.step_in_epoch < steps &&
          evaluate_and_keep_best(nullptr, monitor, higher)) {
        stopped_mid_epoch = true;
        break;
      }
      if (stop_after_step_) stop_for_interrupt();
      if (options_.checkpoint_every > 0 && pos_.global_step % options_.checkpoint_every == 0 &&
          pos_.step_in_epoch < steps) {
        pos_.seconds = elapsed();
        write_checkpoint();
      }
    }
    const bool stop_early = stopped_mid_epoch || evaluate_and_keep_best(&progress, monitor, higher);
    ++pos_.epoch;
    pos_.step_in_epoch = 0;
    pos_.epoch_loss = 0;
    pos_.epoch_items = 0;
    pos_.epoch_batches = 0;
    if (pos_.epoch >= span.end_epoch) pos_.stage_steps = 0;  // the next epoch begins a new stage
    if (stop_early) pos_.epoch = options_.epochs;             // a resumed run stays stopped
    pos_.seconds = elapsed();
    write_checkpoint();
    if (dist::any_rank(util::interrupt_requested()) && pos_.epoch < options_.epochs) {
      throw Interrupted(options_.stage + ": interrupted after epoch " + std::to_string(pos_.epoch) +
                        "; checkpoint written: " + last_checkpoint_);
    }
  }
  FitSummary summary;
  summary.last = pos_.last_metrics;
  summary.best = pos_.best_metrics;
  summary.best_epoch = pos_.best_epoch;
  summary.epochs_run = pos_.epochs_run;
  summary.steps = pos_.global_step;
  summary.skipped_batches = pos_.skipped_batches;
  summary.rollbacks = pos_.rollbacks;
  summary.seconds = elapsed();
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
