#include "ulmfit/nn/transformer.h"

#include <cmath>

#include "ulmfit/nn/dropout.h"

namespace ulmfit::nn {

torch::Tensor reference_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                  const torch::Tensor& allowed) {
  auto scores = torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(static_cast<double>(q.size(-1)));
  if (allowed.defined()) scores = scores.masked_fill(allowed.logical_not(), -std::numeric_limits<double>::infinity());
  return torch::matmul(torch::softmax(scores, -1), v);
}

SelfAttentionImpl::SelfAttentionImpl(SelfAttentionOptions opts) : options(opts) {
  TORCH_CHECK(options.heads() > 0 && options.width() % options.heads() == 0,
              "SelfAttention: width must be a multiple of heads");
  qkv = register_module("qkv", torch::nn::Linear(options.width(), 3 * options.width()));
  out = register_module("out", torch::nn::Linear(options.width(), options.width()));
}

std::array<torch::Tensor, 3> SelfAttentionImpl::project(const torch::Tensor& x) {
  const int64_t batch = x.size(0), time = x.size(1);
  // [B, T, 3W] -> three [B, heads, T, d_k]
  const auto parts = qkv->forward(x).view({batch, time, 3, options.heads(), -1}).permute({2, 0, 3, 1, 4});
  return {parts[0], parts[1], parts[2]};
}

torch::Tensor SelfAttentionImpl::merge_heads(const torch::Tensor& y) {
  return out->forward(y.transpose(1, 2).reshape({y.size(0), y.size(2), options.width()}));
}

std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> SelfAttentionImpl::forward(const torch::Tensor& x,
                                                                                   const torch::Tensor& allowed,
                                                                                   bool causal,
                                                                                   const torch::Tensor& past_k,
                                                                                   const torch::Tensor& past_v) {
  auto [q, k, v] = project(x);
  if (past_k.defined()) {
    k = torch::cat({past_k.to(k.dtype()), k}, 2);
    v = torch::cat({past_v.to(v.dtype()), v}, 2);
  }
  const double dropout = is_training() ? options.attention_p() : 0.0;
  // Without an explicit mask the kernel's own causal flag is the fast path; it
  // aligns the triangle top-left, which is right only when there is no cache.
  TORCH_CHECK(allowed.defined() || !causal || q.size(2) == k.size(2), "SelfAttention: a cache needs an explicit mask");
  const auto y = allowed.defined() ? at::scaled_dot_product_attention(q, k, v, allowed, dropout, false)
                                   : at::scaled_dot_product_attention(q, k, v, {}, dropout, causal);
  return {merge_heads(y), k, v};
}

torch::Tensor SelfAttentionImpl::forward_reference(const torch::Tensor& x, const torch::Tensor& allowed) {
  auto [q, k, v] = project(x);
  return merge_heads(reference_attention(q, k, v, allowed));
}

TransformerBlockImpl::TransformerBlockImpl(const TransformerOptions& o)
    : post_norm(o.post_norm()), tanh_gelu(o.tanh_gelu()) {
  const int64_t w = o.width();
  const int64_t ffn = o.ffn_size() > 0 ? o.ffn_size() : 4 * w;
  norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({w}).eps(o.norm_eps())));
  attention = register_module("attention", SelfAttention(SelfAttentionOptions(w, o.heads()).attention_p(o.attention_p())));
  norm2 = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({w}).eps(o.norm_eps())));
  up = register_module("up", torch::nn::Linear(w, ffn));
  down = register_module("down", torch::nn::Linear(ffn, w));
  residual_dropout = register_module("residual_dropout", torch::nn::Dropout(o.hidden_p()));
}

std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> TransformerBlockImpl::forward(const torch::Tensor& x,
                                                                                      const torch::Tensor& allowed,
                                                                                      bool causal,
                                                                                      const torch::Tensor& past_k,
                                                                                      const torch::Tensor& past_v) {
  const char* approximate = tanh_gelu ? "tanh" : "none";
  auto feed_forward = [&](const torch::Tensor& t) { return down->forward(torch::gelu(up->forward(t), approximate)); };
  if (post_norm) {
    auto [a, k, v] = attention->forward(x, allowed, causal, past_k, past_v);
    auto h = norm1->forward(x + residual_dropout->forward(a));
    h = norm2->forward(h + residual_dropout->forward(feed_forward(h)));
    return {h, k, v};
  }
  auto [a, k, v] = attention->forward(norm1->forward(x), allowed, causal, past_k, past_v);
  auto h = x + residual_dropout->forward(a);
  h = h + residual_dropout->forward(feed_forward(norm2->forward(h)));
  return {h, k, v};
}

TransformerImpl::TransformerImpl(TransformerOptions opts) : options(std::move(opts)) {
  TORCH_CHECK(options.vocab_size() > 0 && options.width() > 0 && options.layers() > 0 && options.max_len() > 0,
              "Transformer: sizes must be positive");
  token_embedding = register_module(
      "token_embedding",
      torch::nn::Embedding(torch::nn::EmbeddingOptions(options.vocab_size(), options.width()).padding_idx(options.pad_id())));
  position_embedding =
      register_module("position_embedding", torch::nn::Embedding(options.max_len(), options.width()));
  if (options.type_vocab_size() > 0) {
    token_type_embedding =
        register_module("token_type_embedding", torch::nn::Embedding(options.type_vocab_size(), options.width()));
  }
  const auto norm_options = torch::nn::LayerNormOptions({options.width()}).eps(options.norm_eps());
  if (options.post_norm()) embedding_norm = register_module("embedding_norm", torch::nn::LayerNorm(norm_options));
  input_dropout = register_module("input_dropout", torch::nn::Dropout(options.input_p()));
  for (int64_t l = 0; l < options.layers(); ++l) {
    blocks.push_back(register_module("block" + std::to_string(l), TransformerBlock(options)));
  }
  if (!options.post_norm()) final_norm = register_module("final_norm", torch::nn::LayerNorm(norm_options));

  // GPT-2's initialisation: N(0, 0.02) everywhere, the projections that feed
  // the residual stream scaled by 1/sqrt(2 * layers) so its variance does not
  // grow with depth.
  torch::NoGradGuard no_grad;
  const double residual_std = 0.02 / std::sqrt(2.0 * static_cast<double>(options.layers()));
  for (auto& block : blocks) {
    for (auto* linear : {&block->attention->qkv, &block->attention->out, &block->up, &block->down}) {
      (*linear)->weight.normal_(0, 0.02);
      (*linear)->bias.zero_();
    }
    block->attention->out->weight.normal_(0, residual_std);
    block->down->weight.normal_(0, residual_std);
  }
  token_embedding->weight.normal_(0, 0.02);
  token_embedding->weight[options.pad_id()].zero_();
  position_embedding->weight.normal_(0, 0.02);
  if (token_type_embedding) token_type_embedding->weight.normal_(0, 0.02);
}

torch::Tensor TransformerImpl::forward(const torch::Tensor& tokens, RecurrentState& state) {
  TORCH_CHECK(tokens.dim() == 2, "Transformer expects tokens [batch, time]");
  const int64_t batch = tokens.size(0), time = tokens.size(1);
  const bool cached = !state.empty();
  const auto valid = tokens != options.pad_id();
  const auto past_valid = cached ? state.tensors[0] : torch::zeros({batch, 0}, valid.options());
  TORCH_CHECK(past_valid.size(0) == batch, "Transformer: the cache holds a different batch size");
  const int64_t past = past_valid.size(1), total = past + time;
  TORCH_CHECK(total <= options.max_len(), "Transformer: ", total, " tokens exceed model.max_len ", options.max_len());

  // Positions count real tokens only, so padding does not shift a document
  // (pads before the first real token would get -1: they take 0). They stay
  // below max_len by the check above.
  const auto positions = (past_valid.sum(1, true) + valid.cumsum(1) - 1).clamp_min(0);
  const auto weight = embedding_dropout(token_embedding->weight, options.embed_p(), is_training());
  auto x = torch::embedding(weight, tokens, options.pad_id()) + position_embedding->forward(positions);
  if (token_type_embedding) x = x + token_type_embedding->weight[0];  // one segment: type 0
  if (embedding_norm) x = embedding_norm->forward(x);
  x = input_dropout->forward(x);

  const auto key_valid = torch::cat({past_valid, valid}, 1);
  torch::Tensor allowed;  // undefined: no padding, no cache -> the kernel's own causal flag
  if (cached || !valid.all().item<bool>()) {
    const auto query_index = torch::arange(past, total, tokens.options()).unsqueeze(1);  // [T, 1]
    const auto key_index = torch::arange(total, tokens.options()).unsqueeze(0);          // [1, S]
    allowed = key_valid.view({batch, 1, 1, total}).expand({batch, 1, time, total});
    if (options.causal()) allowed = allowed & (key_index <= query_index);
    // A pad query with no real key before it would get NaN from an empty
    // softmax; letting every position see itself avoids that and changes
    // nothing for real tokens, which may always see themselves.
    allowed = allowed | (key_index == query_index);
  }

  RecurrentState next;
  next.tensors.push_back(key_valid);
  for (std::size_t l = 0; l < blocks.size(); ++l) {
    const auto past_k = cached ? state.tensors[1 + 2 * l] : torch::Tensor();
    const auto past_v = cached ? state.tensors[2 + 2 * l] : torch::Tensor();
    auto [h, k, v] = blocks[l]->forward(x, allowed, options.causal(), past_k, past_v);
    x = h;
    next.tensors.push_back(k);
    next.tensors.push_back(v);
  }
  state = std::move(next);
  return final_norm ? final_norm->forward(x) : x;
}

ParameterGroup TransformerImpl::embedding_group() {
  ParameterGroup group{token_embedding->weight, position_embedding->weight};
  if (token_type_embedding) group.push_back(token_type_embedding->weight);
  if (embedding_norm) {
    for (const auto& p : embedding_norm->parameters()) group.push_back(p);
  }
  return group;
}

std::vector<ParameterGroup> TransformerImpl::block_groups() {
  const auto n = blocks.size();
  const std::size_t groups = std::min<std::size_t>(4, n);
  std::vector<ParameterGroup> out(groups);
  for (std::size_t b = 0; b < n; ++b) {
    auto& group = out[b * groups / n];
    for (const auto& p : blocks[b]->parameters()) group.push_back(p);
  }
  if (final_norm) {
    for (const auto& p : final_norm->parameters()) out.back().push_back(p);
  }
  return out;
}

}  // namespace ulmfit::nn
