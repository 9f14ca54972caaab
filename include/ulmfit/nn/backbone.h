#pragma once
/// What language-model and classifier heads need from an encoder, so every
/// backbone (AWD-LSTM, and later Transformers) plugs into the same heads,
/// Learner and stages.
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <vector>

namespace ulmfit::nn {

/// State a backbone carries from one call to the next: an LSTM's h and c per
/// layer (batch at dim 1), or a Transformer's key/value cache (batch at dim 0).
/// Empty means "start afresh".
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
  /// True for recurrent encoders, whose state should flow from one training
  /// window (or BPT3C chunk) to the next. A Transformer's state is only a
  /// generation cache: every window is encoded on its own.
  virtual bool carries_state() const { return true; }
  /// The longest sequence (cached tokens included) the backbone can read; 0 = any.
  virtual int64_t max_context() const { return 0; }
  /// Statistics taken from the training documents before a classifier trains
  /// from scratch (the n-grams bag's document frequencies). `document(i)` is
  /// document i's token ids (1-D, any integer type,
  /// valid until the next call); most backbones take none and never call it.
  virtual void fit_to_documents(std::size_t /*count*/,
                                const std::function<torch::Tensor(std::size_t)>& /*document*/) {}
};
using Backbone = std::shared_ptr<BackboneImpl>;

}  // namespace ulmfit::nn
