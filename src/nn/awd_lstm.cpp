#include "ulmfit/nn/awd_lstm.h"

#include <mutex>

namespace ulmfit::nn {
namespace {

/// cuDNN wants an LSTM's weights in one flat buffer and warns, at every call,
/// when they are not. DropConnect hands it a freshly dropped hidden-to-hidden
/// matrix each step by design (fastai's AWD-LSTM does the same and silences
/// the same warning), so cuDNN's copy into a flat buffer is the price, and the
/// warning is noise: on an H200 it printed once per layer per step. Every
/// other warning goes on to the handler that was there before.
class QuietAboutFreshLstmWeights : public c10::WarningHandler {
 public:
  explicit QuietAboutFreshLstmWeights(c10::WarningHandler* next) : next_(next) {}
  void process(const c10::Warning& warning) override {
    if (warning.msg().find("not part of single contiguous chunk of memory") != std::string::npos) return;
    next_->process(warning);
  }

 private:
  c10::WarningHandler* next_;
};

void quiet_cudnn_weight_warning() {
  static std::once_flag once;
  std::call_once(once, [] {
    static QuietAboutFreshLstmWeights handler(c10::WarningUtils::get_warning_handler());
    c10::WarningUtils::set_warning_handler(&handler);
  });
}

}  // namespace

AwdLstmImpl::AwdLstmImpl(AwdLstmOptions opts) : RecurrentEncoderImpl(std::move(opts), "AwdLstm") {
  quiet_cudnn_weight_warning();
  for (int64_t l = 0; l < options.layers(); ++l) {
    lstms.push_back(register_module(
        "lstm" + std::to_string(l),
        WeightDropLstm(WeightDropLstmOptions(layer_input(l), layer_output(l)).weight_p(options.weight_p()))));
  }
}

torch::Tensor AwdLstmImpl::forward(const torch::Tensor& tokens, RecurrentState& state) {
  auto x = embed(tokens);
  const int64_t batch = tokens.size(0);
  if (state.empty() || state.tensors[0].size(1) != batch) {
    state.tensors.clear();
    for (const auto& lstm : lstms) {
      const auto zeros = torch::zeros({1, batch, lstm->options.hidden_size()}, x.options());
      state.tensors.push_back(zeros);
      state.tensors.push_back(zeros);
    }
  }
  for (std::size_t l = 0; l < lstms.size(); ++l) {
    auto [out, h, c] = lstms[l]->forward(x, state.tensors[2 * l].to(x.dtype()),
                                         state.tensors[2 * l + 1].to(x.dtype()));
    state.tensors[2 * l] = h;
    state.tensors[2 * l + 1] = c;
    x = between_layers(l, out);
  }
  return x;
}

std::vector<ParameterGroup> AwdLstmImpl::block_groups() {
  std::vector<ParameterGroup> groups;
  for (const auto& lstm : lstms) groups.push_back(lstm->parameters());
  return groups;
}

}  // namespace ulmfit::nn
