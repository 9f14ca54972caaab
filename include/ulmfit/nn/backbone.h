#pragma once
/// What language-model and classifier heads need from an encoder, so every
/// backbone (AWD-LSTM, and later Transformers) plugs into the same heads,
/// Learner and stages.
#include <torch/torch.h>

#include <memory>
#include <vector>

namespace ulmfit::nn {

/// State a backbone carries from one window to the next (an LSTM's h and c
/// per layer). Empty means "start afresh". Every tensor has the batch at dim 1.
struct RecurrentState {
  std::vector<torch::Tensor> tensors;

  bool empty() const { return tensors.empty(); }
  void reset() { tensors.clear(); }
  /// Cuts the autograd history between windows (truncated BPTT).
  void detach_() {
    for (auto& t : tensors) t = t.detach();
  }
  /// Zeroes the state of rows where keep[b] is false.
  void keep_rows_(const torch::Tensor& keep) {
    for (auto& t : tensors) t = t * keep.view({1, -1, 1}).to(t.dtype());
  }
};

using ParameterGroup = std::vector<torch::Tensor>;

class BackboneImpl : public torch::nn::Module {
 public:
  /// tokens [batch, time] -> outputs [batch, time, output_size()], without
  /// output dropout (heads apply their own).
  virtual torch::Tensor forward(const torch::Tensor& tokens, RecurrentState& state) = 0;
  /// The token embedding matrix [vocab, emb]: the LM decoder is tied to it.
  virtual torch::Tensor embedding_weight() = 0;
  virtual int64_t output_size() const = 0;
  /// Parameters of the embedding, then of each block group, lowest first.
  virtual ParameterGroup embedding_group() = 0;
  virtual std::vector<ParameterGroup> block_groups() = 0;
};
using Backbone = std::shared_ptr<BackboneImpl>;

}  // namespace ulmfit::nn
