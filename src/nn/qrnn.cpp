#include "ulmfit/nn/qrnn.h"

#include <cmath>

#include "ulmfit/nn/fo_pool.h"

namespace ulmfit::nn {

void QrnnLayerImpl::reset() {
  const int64_t in = options.input_size(), hid = options.hidden_size();
  TORCH_CHECK(in > 0 && hid > 0, "QrnnLayer: sizes must be positive");
  TORCH_CHECK(options.window() == 1 || options.window() == 2, "QrnnLayer: window must be 1 or 2");
  TORCH_CHECK(options.weight_p() >= 0.0 && options.weight_p() < 1.0, "QrnnLayer: weight_p must be in [0, 1)");
  // A linear layer's initialisation (what fastai's QRNN gets from nn.Linear).
  const double bound = 1.0 / std::sqrt(static_cast<double>(options.window() * in));
  weight = register_parameter("weight", torch::empty({3 * hid, options.window() * in}).uniform_(-bound, bound));
  bias = register_parameter("bias", torch::empty({3 * hid}).uniform_(-bound, bound));
}

std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> QrnnLayerImpl::forward(const torch::Tensor& x,
                                                                               const torch::Tensor& c0,
                                                                               const torch::Tensor& previous) {
  torch::Tensor source = x;
  if (options.window() == 2) {
    // [x_{t-1}, x_t] for every t: the input shifted right by one, the carried
    // last input (zeros at the start) in front.
    const auto before = previous.defined() ? previous.transpose(0, 1).to(x.dtype()) : torch::zeros_like(x.narrow(1, 0, 1));
    source = torch::cat({torch::cat({before, x.narrow(1, 0, x.size(1) - 1)}, 1), x}, 2);
  }
  const auto w = is_training() && options.weight_p() > 0.0 ? torch::dropout(weight, options.weight_p(), true) : weight;
  const auto gates = torch::nn::functional::linear(source, w, bias);
  const auto [out, c_last] = fo_pool(gates, c0.defined() ? c0.squeeze(0) : torch::Tensor());
  return {out, c_last.unsqueeze(0), x.narrow(1, x.size(1) - 1, 1).transpose(0, 1)};
}

QrnnImpl::QrnnImpl(QrnnOptions opts) : RecurrentEncoderImpl(std::move(opts), "Qrnn") {
  for (int64_t l = 0; l < options.layers(); ++l) {
    // MultiFiT: a window of two tokens on the first layer, one above it.
    qrnns.push_back(register_module("qrnn" + std::to_string(l),
                                    QrnnLayer(QrnnLayerOptions(layer_input(l), layer_output(l))
                                                  .window(l == 0 ? 2 : 1)
                                                  .weight_p(options.weight_p()))));
  }
}

torch::Tensor QrnnImpl::forward(const torch::Tensor& tokens, RecurrentState& state) {
  auto x = embed(tokens);
  const int64_t batch = tokens.size(0);
  // The state: each layer's last c, then the first layer's last input (its
  // window reaches one step back), all [1, batch, width] like an LSTM's.
  if (state.empty() || state.tensors[0].size(1) != batch) {
    state.tensors.clear();
    for (const auto& layer : qrnns) {
      state.tensors.push_back(torch::zeros({1, batch, layer->options.hidden_size()}, x.options().dtype(torch::kFloat)));
    }
    state.tensors.push_back(torch::zeros({1, batch, options.emb_size()}, x.options().dtype(torch::kFloat)));
  }
  const std::size_t last_input = qrnns.size();
  for (std::size_t l = 0; l < qrnns.size(); ++l) {
    auto [out, c, input] = qrnns[l]->forward(x, state.tensors[l], l == 0 ? state.tensors[last_input] : torch::Tensor());
    state.tensors[l] = c;
    if (l == 0) state.tensors[last_input] = input.to(torch::kFloat);
    x = between_layers(l, out);
  }
  return x;
}

std::vector<ParameterGroup> QrnnImpl::block_groups() {
  std::vector<ParameterGroup> groups;
  for (const auto& layer : qrnns) groups.push_back(layer->parameters());
  return groups;
}

}  // namespace ulmfit::nn
