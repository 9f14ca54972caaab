#pragma once
/// What the one Learner needs from a task (language modelling, classification):
/// batches, a loss per step, an evaluation, and the model's layer groups.
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "ulmfit/nn/backbone.h"

namespace ulmfit::train {

struct StepResult {
  torch::Tensor loss;      // what backward() runs on (regularisation included)
  double loss_value = 0;   // the task loss alone, for logs
  double items = 0;        // tokens or documents in the step (throughput)
  /// What `loss` is a mean over (targets, documents): data-parallel ranks
  /// weight their gradients by it, so together they follow the mean over
  /// the whole global batch.
  double weight = 1.0;
  double lr_scale = 1.0;   // AWD-LSTM scales the LR by window length / bptt
};

using Metrics = std::map<std::string, double>;

class Task {
 public:
  virtual ~Task() = default;
  virtual std::shared_ptr<torch::nn::Module> model() = 0;
  /// Lowest first; gradual unfreezing opens them from the top.
  virtual std::vector<nn::ParameterGroup> layer_groups() = 0;
  virtual void start_epoch(int epoch) = 0;
  virtual std::size_t num_batches() const = 0;
  /// Skips to batch `index` of the epoch begun by start_epoch (resuming).
  virtual void seek(std::size_t index) = 0;
  /// State carried from one batch to the next (an LM's hidden state), saved
  /// in checkpoints so a resumed run continues exactly; empty when none.
  virtual std::vector<torch::Tensor> carried_state() const { return {}; }
  virtual void restore_carried_state(std::vector<torch::Tensor> state) {}
  /// Forward pass and loss of the epoch's next training batch (model in train mode).
  virtual StepResult train_step() = 0;
  /// Scores the validation data (model in eval mode, no gradients).
  virtual Metrics evaluate() = 0;
  /// The metric that picks the best weights, and whether higher is better.
  virtual std::string monitor() const = 0;
  virtual bool higher_is_better() const = 0;
  /// "tokens" or "docs", for the throughput in logs.
  virtual std::string item_name() const = 0;
};

}  // namespace ulmfit::train
