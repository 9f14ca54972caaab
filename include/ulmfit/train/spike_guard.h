#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace ulmfit::train {

/// Loss spikes. An AWD-LSTM LM trained at fastai's one-cycle LR can blow up
/// in one step near the peak LR and then sit at about the unigram loss for
/// the rest of the run; which runs do depends on the random draw, in fastai's
/// loop as in ours (bench/RESULTS.md, 2026-11-28). Skipping the offending
/// batches does not help: once the weights are in the exploding region every
/// batch is a spike. So the guard keeps two in-memory snapshots of the
/// weights and the optimizer state, taken `interval` applied steps apart,
/// and on a spike the Learner goes back to the older one (interval to
/// 2 x interval steps back, from before the weights turned) and carries on
/// with the next batches without replaying the ones in between, as PaLM's
/// training did after its spikes (Chowdhery et al. 2022, section 5.1). From
/// the stage's second rollback on, the Learner also scales its LR down.
///
/// A spike: an applied batch's loss more than `threshold` above the running
/// mean of the losses before it (an exponential average, judged only once
/// it has seen `kWarmup` batches since the stage, or this process, began).
/// The snapshots live in memory only: a resumed run starts the guard afresh,
/// so it matches an uninterrupted run exactly unless a spike comes within
/// 2 x interval + kWarmup steps of the resume point.
class SpikeGuard {
 public:
  static constexpr int kWarmup = 20;
  static constexpr int kMaxRollbacks = 8;  // per stage; past that the guard stands down

  /// threshold <= 0: the guard is off and costs nothing.
  SpikeGuard(double threshold, int interval);

  bool enabled() const { return threshold_ > 0; }
  /// Forgets the snapshots and the running mean: a new stage trains other
  /// parameters with a new schedule.
  void start_stage();
  /// True when `loss` (of the batch about to be applied) is a spike and a
  /// snapshot to go back to exists.
  bool is_spike(double loss) const;
  /// After an applied step of an enabled guard: the running mean, and a
  /// snapshot when one is due.
  void after_step(double loss, const std::vector<torch::Tensor>& params, torch::optim::Optimizer& optimizer);
  /// Puts the older snapshot's weights and optimizer state back; returns how
  /// many applied steps that undid.
  std::int64_t roll_back(const std::vector<torch::Tensor>& params, torch::optim::Optimizer& optimizer);
  double running_mean() const { return mean_; }
  int rollbacks() const { return rollbacks_; }

 private:
  struct Snapshot {
    std::vector<torch::Tensor> weights;
    std::string optimizer;  // the optimizer's serialized state
    std::int64_t applied = -1;  // applied steps of the stage when taken; -1 = none
    double mean = 0;
    int seen = 0;
  };
  void take(Snapshot& into, const std::vector<torch::Tensor>& params, torch::optim::Optimizer& optimizer) const;

  double threshold_;
  int interval_;
  double mean_ = 0;
  int seen_ = 0;               // batches in the running mean
  std::int64_t applied_ = 0;   // applied steps since the stage began
  int rollbacks_ = 0;
  Snapshot older_, newer_;
};

}  // namespace ulmfit::train
