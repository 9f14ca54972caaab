#include "ulmfit/nn/dropout.h"

#include <ATen/autocast_mode.h>

#include <cmath>

namespace ulmfit::nn {
namespace {

int g_shard = 0;
int g_shards = 1;

}  // namespace

void set_batch_shard(int shard, int shards) {
  TORCH_CHECK(shards >= 1 && shard >= 0 && shard < shards, "set_batch_shard: shard out of range");
  g_shard = shard;
  g_shards = shards;
}

torch::Tensor batch_dropout_mask(std::vector<int64_t> shape, double p, const torch::TensorOptions& options) {
  const int64_t rows = shape.at(0);
  shape[0] = rows * g_shards;
  auto mask = torch::empty(shape, options).bernoulli_(1.0 - p).div_(1.0 - p);
  return g_shards == 1 ? mask : mask.narrow(0, rows * g_shard, rows);
}

void BatchDropoutImpl::reset() { TORCH_CHECK(p >= 0.0 && p < 1.0, "BatchDropout: p must be in [0, 1)"); }

torch::Tensor BatchDropoutImpl::forward(const torch::Tensor& x) {
  if (!is_training() || p == 0.0) return x;
  return x * batch_dropout_mask(x.sizes().vec(), p, x.options());
}

torch::Tensor embedding_dropout(const torch::Tensor& weight, double p, bool training) {
  if (!training || p == 0.0) return weight;
  const auto mask =
      torch::empty({weight.size(0), 1}, weight.options()).bernoulli_(1.0 - p).div_(1.0 - p);
  return weight * mask;
}

void RNNDropoutImpl::reset() {
  TORCH_CHECK(options.p() >= 0.0 && options.p() < 1.0, "RNNDropout: p must be in [0, 1)");
}

torch::Tensor RNNDropoutImpl::forward(const torch::Tensor& x) {
  if (!is_training() || options.p() == 0.0) return x;
  TORCH_CHECK(x.dim() == 3, "RNNDropout expects [batch, time, features]");
  return x * batch_dropout_mask({x.size(0), 1, x.size(2)}, options.p(), x.options());
}

void WeightDropLstmImpl::reset() {
  const int64_t in = options.input_size(), hid = options.hidden_size();
  TORCH_CHECK(in > 0 && hid > 0, "WeightDropLstm: sizes must be positive");
  TORCH_CHECK(options.weight_p() >= 0.0 && options.weight_p() < 1.0,
              "WeightDropLstm: weight_p must be in [0, 1)");
  // PyTorch's LSTM initialisation: U(-1/sqrt(hidden), 1/sqrt(hidden)).
  const double bound = 1.0 / std::sqrt(static_cast<double>(hid));
  auto init = [&](std::vector<int64_t> shape) { return torch::empty(shape).uniform_(-bound, bound); };
  weight_ih = register_parameter("weight_ih", init({4 * hid, in}));
  weight_hh_raw = register_parameter("weight_hh_raw", init({4 * hid, hid}));
  bias_ih = register_parameter("bias_ih", init({4 * hid}));
  bias_hh = register_parameter("bias_hh", init({4 * hid}));
}

std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> WeightDropLstmImpl::forward(
    const torch::Tensor& x, const torch::Tensor& h, const torch::Tensor& c) {
  last_hh_ = is_training() && options.weight_p() > 0.0
                 ? torch::dropout(weight_hh_raw, options.weight_p(), /*train=*/true)
                 : weight_hh_raw;
  // LibTorch's autocast leaves the fused LSTM in fp32; under mixed precision
  // run it in the autocast dtype ourselves. The casts are differentiable, so
  // gradients still reach the fp32 master weights.
  const auto device = x.device().type();
  const auto dtype = at::autocast::is_autocast_enabled(device) ? at::autocast::get_autocast_dtype(device)
                                                               : weight_ih.scalar_type();
  auto [out, h_n, c_n] =
      at::lstm(x.to(dtype), {h.to(dtype), c.to(dtype)},
               {weight_ih.to(dtype), last_hh_.to(dtype), bias_ih.to(dtype), bias_hh.to(dtype)},
               /*has_biases=*/true, /*num_layers=*/1, /*dropout=*/0.0, is_training(), /*bidirectional=*/false,
               /*batch_first=*/true);
  return {out, h_n, c_n};
}

}  // namespace ulmfit::nn
