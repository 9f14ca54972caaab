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
#include "ulmfit/nn/recurrent_encoder.h"

namespace ulmfit::nn {

using AwdLstmOptions = RecurrentOptions;

class AwdLstmImpl : public RecurrentEncoderImpl {
 public:
  explicit AwdLstmImpl(AwdLstmOptions options);

  torch::Tensor forward(const torch::Tensor& tokens, RecurrentState& state) override;
  std::vector<ParameterGroup> block_groups() override;

  std::vector<WeightDropLstm> lstms;
};

}  // namespace ulmfit::nn
