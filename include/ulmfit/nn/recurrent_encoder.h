#pragma once
/// What AWD-LSTM and QRNN encoders share (fastai's AWD_LSTM and MultiFiT's
/// AWD_QRNN): an embedding initialised in ±0.1 with whole-row dropout,
/// variational input dropout, `layers` recurrent layers with variational
/// dropout between them, the last one as wide as the embedding so a decoder
/// can tie to it. Each encoder adds its own layers.
#include "ulmfit/nn/backbone.h"
#include "ulmfit/nn/dropout.h"

namespace ulmfit::nn {

struct RecurrentOptions {
  RecurrentOptions(int64_t vocab_size, int64_t emb_size, int64_t hidden_size, int64_t layers)
      : vocab_size_(vocab_size), emb_size_(emb_size), hidden_size_(hidden_size), layers_(layers) {}
  TORCH_ARG(int64_t, vocab_size);
  TORCH_ARG(int64_t, emb_size);
  TORCH_ARG(int64_t, hidden_size);
  TORCH_ARG(int64_t, layers);
  TORCH_ARG(double, embed_p) = 0.02;
  TORCH_ARG(double, input_p) = 0.25;
  TORCH_ARG(double, weight_p) = 0.2;  // DropConnect on each layer's recurrent (LSTM) or gate (QRNN) weights
  TORCH_ARG(double, hidden_p) = 0.15;
  TORCH_ARG(int64_t, pad_id) = 0;
};

class RecurrentEncoderImpl : public BackboneImpl {
 public:
  torch::Tensor embedding_weight() override { return embedding->weight; }
  int64_t output_size() const override { return options.emb_size(); }
  ParameterGroup embedding_group() override { return {embedding->weight}; }

  RecurrentOptions options;
  torch::nn::Embedding embedding{nullptr};
  RNNDropout input_dropout{nullptr};
  std::vector<RNNDropout> hidden_dropouts;  // after every layer but the last

 protected:
  /// Registers the embedding and dropouts; `name` names the encoder in errors.
  RecurrentEncoderImpl(RecurrentOptions options, const char* name);
  /// Layer l's input and output widths.
  int64_t layer_input(int64_t l) const { return l == 0 ? options.emb_size() : options.hidden_size(); }
  int64_t layer_output(int64_t l) const { return l + 1 == options.layers() ? options.emb_size() : options.hidden_size(); }
  /// tokens [batch, time] -> dropped embeddings [batch, time, emb].
  torch::Tensor embed(const torch::Tensor& tokens);
  /// Layer l's output as the next layer reads it (hidden dropout between layers).
  torch::Tensor between_layers(std::size_t l, const torch::Tensor& out);
};

}  // namespace ulmfit::nn
