#pragma once
/// Transformer encoders for the same heads and stages as AWD-LSTM: a GPT-style
/// causal stack (next-token LM, `model.backbone: transformer`) and a BERT-style
/// bidirectional one (masked LM, `bert`). Pre-LayerNorm blocks (Radford et al.
/// 2019's placement), learned positions, a final LayerNorm; the LM decoder ties
/// to the token embedding like AWD-LSTM's.
///
///   auto gpt = std::make_shared<TransformerImpl>(TransformerOptions(16000, 256, 4, 4).max_len(256));
///   RecurrentState cache;                   // empty: a plain forward pass
///   auto out = gpt->forward(tokens, cache); // [batch, time, 256]; cache now holds keys/values
///   out = gpt->forward(next_token, cache);  // one incremental step (generation)
///
/// <pad> tokens are masked out as keys and do not advance positions, so a
/// document's outputs do not depend on the padding around it.
///
/// Options cover the Hugging Face layouts too: BERT's post-LayerNorm blocks
/// (a LayerNorm after the embeddings, none at the end), token-type
/// embeddings, erf or tanh GELU, the feed-forward width and LayerNorm eps.
#include "ulmfit/nn/backbone.h"

namespace ulmfit::nn {

/// softmax(Q K^T / sqrt(d_k)) V written out, for tests against the fused kernel.
/// q [.., T, d], k and v [.., S, d]; allowed [.., T, S] bool (true = may attend), or undefined.
torch::Tensor reference_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                  const torch::Tensor& allowed);

struct SelfAttentionOptions {
  SelfAttentionOptions(int64_t width, int64_t heads) : width_(width), heads_(heads) {}
  TORCH_ARG(int64_t, width);
  TORCH_ARG(int64_t, heads);
  TORCH_ARG(double, attention_p) = 0.0;  // dropout on the attention probabilities
};

/// Multi-head self-attention on LibTorch's fused scaled_dot_product_attention
/// (flash / memory-efficient kernels where the device has them).
class SelfAttentionImpl : public torch::nn::Module {
 public:
  explicit SelfAttentionImpl(SelfAttentionOptions options);
  /// x [B, T, width]; allowed [B, 1, T, S] bool or undefined (then `causal`
  /// decides); past_k / past_v [B, heads, S - T, d_k] or undefined. Returns the
  /// output and this call's full keys and values (past + new) for a cache.
  std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> forward(const torch::Tensor& x, const torch::Tensor& allowed,
                                                                  bool causal, const torch::Tensor& past_k,
                                                                  const torch::Tensor& past_v);
  /// The same attention through reference_attention (tests only).
  torch::Tensor forward_reference(const torch::Tensor& x, const torch::Tensor& allowed);

  SelfAttentionOptions options;
  torch::nn::Linear qkv{nullptr}, out{nullptr};

 private:
  std::array<torch::Tensor, 3> project(const torch::Tensor& x);
  torch::Tensor merge_heads(const torch::Tensor& y);
};
TORCH_MODULE(SelfAttention);

struct TransformerOptions {
  TransformerOptions(int64_t vocab_size, int64_t width, int64_t layers, int64_t heads)
      : vocab_size_(vocab_size), width_(width), layers_(layers), heads_(heads) {}
  TORCH_ARG(int64_t, vocab_size);
  TORCH_ARG(int64_t, width);     // model.emb_size
  TORCH_ARG(int64_t, layers);
  TORCH_ARG(int64_t, heads);
  TORCH_ARG(int64_t, max_len) = 512;   // learned positions
  TORCH_ARG(bool, causal) = true;      // GPT style; false = BERT style
  TORCH_ARG(double, embed_p) = 0.0;    // whole embedding rows
  TORCH_ARG(double, input_p) = 0.1;    // after token + position embedding
  TORCH_ARG(double, hidden_p) = 0.1;   // on each residual branch
  TORCH_ARG(double, attention_p) = 0.1;
  TORCH_ARG(int64_t, pad_id) = 0;
  TORCH_ARG(int64_t, ffn_size) = 0;         // feed-forward width; 0 = 4 x width
  TORCH_ARG(bool, post_norm) = false;       // BERT: LN(x + f(x)); else x + f(LN(x))
  TORCH_ARG(bool, tanh_gelu) = false;       // GPT-2's tanh approximation; else erf
  TORCH_ARG(double, norm_eps) = 1e-5;
  TORCH_ARG(int64_t, type_vocab_size) = 0;  // BERT's token types; every token gets type 0
};

/// One block: pre-LN x + attn(LN(x)), then x + FF(LN(x)), FF = GELU MLP;
/// or post-LN (BERT) LN(x + attn(x)), then LN(h + FF(h)).
class TransformerBlockImpl : public torch::nn::Module {
 public:
  explicit TransformerBlockImpl(const TransformerOptions& options);
  std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> forward(const torch::Tensor& x, const torch::Tensor& allowed,
                                                                  bool causal, const torch::Tensor& past_k,
                                                                  const torch::Tensor& past_v);

  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  SelfAttention attention{nullptr};
  torch::nn::Linear up{nullptr}, down{nullptr};
  torch::nn::Dropout residual_dropout{nullptr};
  bool post_norm = false;
  bool tanh_gelu = false;
};
TORCH_MODULE(TransformerBlock);

class TransformerImpl : public BackboneImpl {
 public:
  explicit TransformerImpl(TransformerOptions options);

  /// With a non-empty `state` (a key/value cache from earlier calls) the new
  /// tokens attend to the cached ones and continue their positions; the cache
  /// is extended either way. State layout: [key_valid [B, S]; k, v per block].
  torch::Tensor forward(const torch::Tensor& tokens, RecurrentState& state) override;
  torch::Tensor embedding_weight() override { return token_embedding->weight; }
  int64_t output_size() const override { return options.width(); }
  /// Token, position (and token-type) embeddings, with their LayerNorm when post-LN.
  ParameterGroup embedding_group() override;
  /// The blocks in at most four contiguous groups; a pre-LN stack's final
  /// LayerNorm goes with the top group.
  std::vector<ParameterGroup> block_groups() override;
  bool carries_state() const override { return false; }
  int64_t max_context() const override { return options.max_len(); }

  TransformerOptions options;
  torch::nn::Embedding token_embedding{nullptr}, position_embedding{nullptr};
  torch::nn::Embedding token_type_embedding{nullptr};  // type_vocab_size > 0 only
  torch::nn::LayerNorm embedding_norm{nullptr};        // post_norm only
  torch::nn::Dropout input_dropout{nullptr};
  std::vector<TransformerBlock> blocks;
  torch::nn::LayerNorm final_norm{nullptr};  // pre-LN only
};

}  // namespace ulmfit::nn
