#pragma once
/// QRNN encoder (Bradbury et al. 2017) as MultiFiT uses it (Eisenschlos et al.
/// 2019): AWD-LSTM's embedding, dropouts and weight tying, with each LSTM
/// replaced by a quasi-recurrent layer. A layer computes its gates for every
/// time step in one matrix product over a causal window of inputs (two
/// tokens on the first layer, one above), then the cheap elementwise
/// recurrence, fo_pool (fo_pool.h):
///   z, f, o = tanh, sigmoid, sigmoid of W [x_{t-1}, x_t] + b
///   c_t = f_t z_t + (1 - f_t) c_{t-1};  h_t = o_t c_t
/// DropConnect (weight_p) drops entries of W, as AWD-LSTM's does its
/// hidden-to-hidden matrix.
///
///   auto enc = std::make_shared<QrnnImpl>(QrnnOptions(16000, 400, 1552, 4));
///   RecurrentState state;                     // c per layer, and the first layer's last input
///   auto out = enc->forward(tokens, state);   // [batch, time, 400]
#include "ulmfit/nn/recurrent_encoder.h"

namespace ulmfit::nn {

struct QrnnLayerOptions {
  QrnnLayerOptions(int64_t input_size, int64_t hidden_size) : input_size_(input_size), hidden_size_(hidden_size) {}
  TORCH_ARG(int64_t, input_size);
  TORCH_ARG(int64_t, hidden_size);
  TORCH_ARG(int64_t, window) = 1;  // 1 or 2 input steps per gate
  TORCH_ARG(double, weight_p) = 0.0;
};

class QrnnLayerImpl : public torch::nn::Cloneable<QrnnLayerImpl> {
 public:
  explicit QrnnLayerImpl(QrnnLayerOptions options) : options(options) { reset(); }
  void reset() override;
  /// x [batch, time, input]; c0 [1, batch, hidden]; previous [1, batch, input]
  /// (the input before x[:, 0], for window 2; ignored otherwise). Returns
  /// (output, last c, last input).
  std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> forward(const torch::Tensor& x, const torch::Tensor& c0,
                                                                  const torch::Tensor& previous);
  QrnnLayerOptions options;
  torch::Tensor weight, bias;  // [3 hidden, window x input], [3 hidden]: z, f, o
};
TORCH_MODULE(QrnnLayer);

using QrnnOptions = RecurrentOptions;

class QrnnImpl : public RecurrentEncoderImpl {
 public:
  explicit QrnnImpl(QrnnOptions options);

  torch::Tensor forward(const torch::Tensor& tokens, RecurrentState& state) override;
  std::vector<ParameterGroup> block_groups() override;

  std::vector<QrnnLayer> qrnns;
};

}  // namespace ulmfit::nn
