#pragma once
/// AWD-LSTM's dropouts (Merity et al. 2017; fastai's names and semantics).
///
///   RNNDropout drop(RNNDropoutOptions(0.25));
///   auto y = drop(x);                      // one mask per sequence, shared over time
///   auto w = embedding_dropout(emb_weight, 0.02, is_training());  // whole rows
#include <torch/torch.h>

namespace ulmfit::nn {

/// Data-parallel training: this process holds the `shard`-th of `shards`
/// equal row blocks of each global batch. Dropouts whose masks differ by row
/// (RNNDropout, BatchDropout) then draw the global batch's mask, from
/// generators every rank keeps in step, and apply their own rows of it: the
/// ranks together drop exactly what one process would. (0, 1) by default.
void set_batch_shard(int shard, int shards);

/// A dropout mask for a tensor of `shape` whose first dimension is this
/// process's rows: 0 or 1/(1-p) per element, drawn for the global batch.
torch::Tensor batch_dropout_mask(std::vector<int64_t> shape, double p, const torch::TensorOptions& options);

/// Drops whole rows of an embedding matrix (a word vanishes from the whole
/// batch) and scales the survivors by 1/(1-p).
torch::Tensor embedding_dropout(const torch::Tensor& weight, double p, bool training);

struct RNNDropoutOptions {
  /* implicit */ RNNDropoutOptions(double p) : p_(p) {}
  TORCH_ARG(double, p);
};

/// Variational dropout on [batch, time, features]: one mask per sequence and
/// feature, shared over every time step.
class RNNDropoutImpl : public torch::nn::Cloneable<RNNDropoutImpl> {
 public:
  explicit RNNDropoutImpl(RNNDropoutOptions options) : options(options) { reset(); }
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);
  RNNDropoutOptions options;
};
TORCH_MODULE(RNNDropout);

/// Plain dropout (each element on its own) through batch_dropout_mask, for
/// [batch, ...] inputs; what the classifier head uses.
class BatchDropoutImpl : public torch::nn::Cloneable<BatchDropoutImpl> {
 public:
  explicit BatchDropoutImpl(double p) : p(p) { reset(); }
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);
  double p;
};
TORCH_MODULE(BatchDropout);

struct WeightDropLstmOptions {
  WeightDropLstmOptions(int64_t input_size, int64_t hidden_size)
      : input_size_(input_size), hidden_size_(hidden_size) {}
  TORCH_ARG(int64_t, input_size);
  TORCH_ARG(int64_t, hidden_size);
  /// DropConnect probability on the hidden-to-hidden matrix.
  TORCH_ARG(double, weight_p) = 0.0;
};

/// A one-layer, batch-first LSTM with DropConnect on its hidden-to-hidden
/// weight. The raw matrix stays the trainable parameter; each training forward
/// hands a freshly dropped copy to LibTorch's fused LSTM kernel, so there is no
/// per-time-step loop.
class WeightDropLstmImpl : public torch::nn::Cloneable<WeightDropLstmImpl> {
 public:
  explicit WeightDropLstmImpl(WeightDropLstmOptions options) : options(options) { reset(); }
  void reset() override;
  /// x [batch, time, input]; h, c [1, batch, hidden]. Returns (output, h, c).
  std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> forward(const torch::Tensor& x,
                                                                  const torch::Tensor& h,
                                                                  const torch::Tensor& c);
  /// The weight the kernel received in the last forward (for tests).
  const torch::Tensor& last_hh_weight() const { return last_hh_; }

  WeightDropLstmOptions options;
  torch::Tensor weight_ih, weight_hh_raw, bias_ih, bias_hh;

 private:
  torch::Tensor last_hh_;
};
TORCH_MODULE(WeightDropLstm);

}  // namespace ulmfit::nn
