#include "ulmfit/nn/recurrent_encoder.h"

#include <string>

namespace ulmfit::nn {

RecurrentEncoderImpl::RecurrentEncoderImpl(RecurrentOptions opts, const char* name) : options(std::move(opts)) {
  TORCH_CHECK(options.vocab_size() > 0 && options.emb_size() > 0 && options.hidden_size() > 0, name,
              ": sizes must be positive");
  TORCH_CHECK(options.layers() >= 1, name, ": at least one layer");
  embedding = register_module(
      "embedding", torch::nn::Embedding(torch::nn::EmbeddingOptions(options.vocab_size(), options.emb_size())
                                            .padding_idx(options.pad_id())));
  {
    torch::NoGradGuard no_grad;
    embedding->weight.uniform_(-0.1, 0.1);
    embedding->weight[options.pad_id()].zero_();
  }
  input_dropout = register_module("input_dropout", RNNDropout(options.input_p()));
  for (int64_t l = 0; l + 1 < options.layers(); ++l) {
    hidden_dropouts.push_back(register_module("hidden_dropout" + std::to_string(l), RNNDropout(options.hidden_p())));
  }
}

torch::Tensor RecurrentEncoderImpl::embed(const torch::Tensor& tokens) {
  TORCH_CHECK(tokens.dim() == 2, "a recurrent encoder expects tokens [batch, time]");
  const auto weight = embedding_dropout(embedding->weight, options.embed_p(), is_training());
  return input_dropout->forward(torch::embedding(weight, tokens, options.pad_id()));
}

torch::Tensor RecurrentEncoderImpl::between_layers(std::size_t l, const torch::Tensor& out) {
  return l < hidden_dropouts.size() ? hidden_dropouts[l]->forward(out) : out;
}

}  // namespace ulmfit::nn
