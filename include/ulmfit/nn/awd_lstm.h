#pragma once
/// AWD-LSTM encoder (Merity et al. 2017) as fastai v2 builds it: an embedding
/// initialised in ±0.1 with whole-row dropout, variational input dropout, then
/// `layers` weight-dropped LSTMs with variational dropout between them; the
/// last LSTM's width is the embedding size so a decoder can tie to it.
///
///   auto enc = std::make_shared<AwdLstmImpl>(AwdLstmOptions(16000, 400, 1152, 3).weight_p(0.2));
///   RecurrentState state;                 // carried across BPTT windows
///   auto out = enc->forward(tokens, state);   // [batch, time, 400]
///   state.detach_();
#include "ulmfit/nn/backbone.h"
#include "ulmfit/nn/dropout.h"

namespace ulmfit::nn {

struct AwdLstmOptions {
  AwdLstmOptions(int64_t vocab_size, int64_t emb_size, int64_t hidden_size, int64_t layers)
      : vocab_size_(vocab_size), emb_size_(emb_size), hidden_size_(hidden_size), layers_(layers) {}
  TORCH_ARG(int64_t, vocab_size);
  TORCH_ARG(int64_t, emb_size);
  TORCH_ARG(int64_t, hidden_size);
  TORCH_ARG(int64_t, layers);
  TORCH_ARG(double, embed_p) = 0.02;
  TORCH_ARG(double, input_p) = 0.25;
  TORCH_ARG(double, weight_p) = 0.2;
  TORCH_ARG(double, hidden_p) = 0.15;
  TORCH_ARG(int64_t, pad_id) = 0;
};

class AwdLstmImpl : public BackboneImpl {
 public:
  explicit AwdLstmImpl(AwdLstmOptions options);

  torch::Tensor forward(const torch::Tensor& tokens, RecurrentState& state) override;
  torch::Tensor embedding_weight() override { return embedding->weight; }
  int64_t output_size() const override { return options.emb_size(); }
  ParameterGroup embedding_group() override { return {embedding->weight}; }
  std::vector<ParameterGroup> block_groups() override;

  AwdLstmOptions options;
  torch::nn::Embedding embedding{nullptr};
  RNNDropout input_dropout{nullptr};
  std::vector<WeightDropLstm> lstms;
  std::vector<RNNDropout> hidden_dropouts;
};

}  // namespace ulmfit::nn
