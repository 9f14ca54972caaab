#include "ulmfit/nn/heads.h"

namespace ulmfit::nn {

LanguageModelImpl::LanguageModelImpl(Backbone backbone, LanguageModelOptions opts)
    : options(opts), encoder(std::move(backbone)) {
  register_module("encoder", encoder);
  output_dropout = register_module("output_dropout", RNNDropout(options.output_p()));
  decoder_bias = register_parameter("decoder_bias", torch::zeros({encoder->embedding_weight().size(0)}));
  if (!options.bias()) decoder_bias.set_requires_grad(false);
}

LanguageModelOutput LanguageModelImpl::forward(const torch::Tensor& tokens, RecurrentState& state) {
  LanguageModelOutput out;
  out.raw = encoder->forward(tokens, state);
  out.dropped = output_dropout->forward(out.raw);
  // The decoder's weight is the embedding matrix itself (weight tying).
  out.logits = torch::linear(out.dropped, encoder->embedding_weight(), decoder_bias);
  return out;
}

std::vector<ParameterGroup> LanguageModelImpl::layer_groups() {
  auto groups = encoder->block_groups();
  auto top = encoder->embedding_group();
  if (options.bias()) top.push_back(decoder_bias);
  groups.push_back(top);
  return groups;
}

namespace {

/// Mean over time of the positions where mask [B, T] (bool) is true: [B, F].
torch::Tensor masked_mean(const torch::Tensor& outputs, const torch::Tensor& mask) {
  const auto m3 = mask.unsqueeze(-1);
  const auto count = m3.sum(1).clamp_min(1).to(outputs.dtype());
  return outputs.masked_fill(~m3, 0).sum(1) / count;
}

}  // namespace

torch::Tensor masked_first_pool(const torch::Tensor& outputs, const torch::Tensor& mask) {
  TORCH_CHECK(outputs.dim() == 3 && mask.dim() == 2, "pooling expects [B, T, F] and [B, T]");
  const auto first_index = mask.to(torch::kLong).argmax(1);
  return outputs.index({torch::arange(outputs.size(0), first_index.options()), first_index});
}

torch::Tensor masked_last_pool(const torch::Tensor& outputs, const torch::Tensor& mask) {
  TORCH_CHECK(outputs.dim() == 3 && mask.dim() == 2, "pooling expects [B, T, F] and [B, T]");
  const auto positions = torch::arange(mask.size(1), mask.options().dtype(torch::kLong));
  const auto last_index = torch::where(mask.to(torch::kBool), positions, torch::full_like(positions, -1)).argmax(1);
  return outputs.index({torch::arange(outputs.size(0), last_index.options()), last_index});
}

torch::Tensor masked_concat_pool(const torch::Tensor& outputs, const torch::Tensor& mask) {
  const auto m = mask.to(torch::kBool);
  const auto last = masked_last_pool(outputs, m);  // checks the shapes
  const auto max = outputs.masked_fill(~m.unsqueeze(-1), -std::numeric_limits<float>::infinity()).amax(1);
  return torch::cat({last, max, masked_mean(outputs, m)}, 1);
}

torch::Tensor masked_first_mean_pool(const torch::Tensor& outputs, const torch::Tensor& mask) {
  const auto m = mask.to(torch::kBool);
  return torch::cat({masked_first_pool(outputs, m), masked_mean(outputs, m)}, 1);
}

namespace {
int64_t pooled_width(Pooling pooling, int64_t features) {
  switch (pooling) {
    case Pooling::kConcat:
      return 3 * features;
    case Pooling::kFirstMean:
      return 2 * features;
    default:
      return features;
  }
}
}  // namespace

PoolingClassifierImpl::PoolingClassifierImpl(PoolingClassifierOptions opts) : options(std::move(opts)) {
  TORCH_CHECK(options.dropouts().size() == options.hidden().size() + 1,
              "PoolingClassifier: one dropout per linear layer");
  int64_t in = pooled_width(options.pooling(), options.features());
  for (std::size_t i = 0; i <= options.hidden().size(); ++i) {
    const bool last = i == options.hidden().size();
    const int64_t out = last ? options.classes() : options.hidden()[i];
    const std::string n = std::to_string(i);
    if (options.batch_norm()) norms.push_back(register_module("norm" + n, torch::nn::BatchNorm1d(in)));
    dropouts.push_back(register_module("dropout" + n, BatchDropout(options.dropouts()[i])));
    linears.push_back(register_module(
        "linear" + n, torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(!last || options.final_bias()))));
    in = out;
  }
}

namespace {

/// BatchNorm1d's training step with the mean and variance of the rows of every
/// process, and its running statistics updated from them.
torch::Tensor batch_norm_over_processes(const torch::Tensor& x, torch::nn::BatchNorm1dImpl& norm,
                                        const CrossProcessSum& sum) {
  const auto rows = torch::full({1}, static_cast<double>(x.size(0)), x.options());
  const auto first = sum(torch::cat({x.sum(0), rows}));
  const auto count = first.slice(0, -1);
  const auto mean = first.slice(0, 0, -1) / count;
  // Centred second pass: sum(x^2) - n mean^2 would cancel badly in fp32.
  const auto centred = x - mean;
  const auto variance = sum(centred.pow(2).sum(0)) / count;
  auto y = centred * torch::rsqrt(variance + norm.options.eps());
  if (norm.options.affine()) y = y * norm.weight + norm.bias;
  if (norm.options.track_running_stats()) {
    torch::NoGradGuard no_grad;
    const double n = count.item<double>();
    norm.num_batches_tracked.add_(1);
    // No momentum: a plain average over every batch since the last reset, as BatchNorm1d keeps it.
    const auto set_momentum = norm.options.momentum();
    const double momentum = set_momentum ? *set_momentum : 1.0 / norm.num_batches_tracked.item<double>();
    norm.running_mean.mul_(1 - momentum).add_(mean.detach(), momentum);
    norm.running_var.mul_(1 - momentum).add_(variance.detach() * (n / std::max(n - 1, 1.0)), momentum);
  }
  return y;
}

}  // namespace

torch::Tensor PoolingClassifierImpl::forward(const torch::Tensor& outputs, const torch::Tensor& mask) {
  // Pool and classify in fp32: the head is tiny and BatchNorm wants the range.
  const auto features = outputs.to(torch::kFloat);
  torch::Tensor x;
  switch (options.pooling()) {
    case Pooling::kConcat:
      x = masked_concat_pool(features, mask);
      break;
    case Pooling::kFirstMean:
      x = masked_first_mean_pool(features, mask);
      break;
    case Pooling::kFirst:
      x = masked_first_pool(features, mask);
      break;
    case Pooling::kMean:
      x = masked_mean(features, mask.to(torch::kBool));
      break;
    case Pooling::kSum:
      x = features.masked_fill(~mask.to(torch::kBool).unsqueeze(-1), 0).sum(1);
      break;
    case Pooling::kLast:
      x = masked_last_pool(features, mask);
      break;
  }
  for (std::size_t i = 0; i < linears.size(); ++i) {
    if (!norms.empty()) {
      // Per norm, not per head: the classifier's statistics refresh runs only the norms in training mode.
      const bool synchronised = cross_process_sum_ && norms[i]->is_training();
      x = synchronised ? batch_norm_over_processes(x, *norms[i], cross_process_sum_) : norms[i]->forward(x);
    }
    x = linears[i]->forward(dropouts[i]->forward(x));
    if (i + 1 < linears.size()) x = options.tanh() ? torch::tanh(x) : torch::relu(x);
  }
  return x;
}

SequenceClassifierImpl::SequenceClassifierImpl(Backbone backbone, SequenceClassifierOptions opts)
    : options(std::move(opts)), encoder(std::move(backbone)) {
  TORCH_CHECK(options.bptt() > 0 && options.max_len() > 0, "SequenceClassifier: bptt and max_len must be positive");
  register_module("encoder", encoder);
  head = register_module(
      "head", PoolingClassifier(PoolingClassifierOptions(encoder->output_size(), options.classes())
                                    .hidden(options.hidden())
                                    .dropouts(options.dropouts())
                                    .pooling(options.pooling())
                                    .batch_norm(options.batch_norm())
                                    .tanh(options.tanh())
                                    .final_bias(options.final_bias())));
}

std::pair<torch::Tensor, torch::Tensor> SequenceClassifierImpl::encode(const torch::Tensor& tokens,
                                                                       const torch::Tensor& mask) {
  if (!encoder->carries_state()) return encode_leading_tokens(tokens, mask);
  return encode_bpt3c(tokens, mask);
}

std::pair<torch::Tensor, torch::Tensor> SequenceClassifierImpl::encode_leading_tokens(const torch::Tensor& tokens,
                                                                                      const torch::Tensor& mask) {
  const int64_t batch = tokens.size(0), length = tokens.size(1);
  const int64_t context = encoder->max_context() > 0 ? encoder->max_context() : length;
  const auto m = mask.to(torch::kBool);
  // Each row's real tokens are contiguous (padding before and after them):
  // gather the first `keep` of them to the left, padded on the right.
  const auto real = m.sum(1);
  const auto first = m.to(torch::kLong).argmax(1);
  const int64_t wanted = options.chunk_long_documents() ? options.max_len() : context;
  const int64_t longest = real.max().item<int64_t>();
  int64_t keep = std::max<int64_t>(1, std::min(wanted, longest));
  // Longer than one context: the fewest chunks that fit, of equal width (600
  // tokens are two chunks of 300, not 512 + 88 padded to 1,024), the last
  // one padded at its end.
  const int64_t chunks = (keep + context - 1) / context;
  const int64_t width = (keep + chunks - 1) / chunks;
  keep = chunks * width;
  const auto offsets = torch::arange(keep, first.options()).unsqueeze(0);
  const auto index = (first.unsqueeze(1) + offsets).clamp_max(length - 1);
  const auto kept_mask = offsets < real.clamp_max(wanted).unsqueeze(1);
  const auto kept = tokens.gather(1, index).masked_fill(kept_mask.logical_not(), options.pad_id());
  // Chunks are independent sequences: fold them into the batch.
  RecurrentState fresh;
  const auto out = encoder->forward(kept.reshape({batch * chunks, width}), fresh);
  return {out.reshape({batch, chunks * width, out.size(-1)}), kept_mask};
}

std::pair<torch::Tensor, torch::Tensor> SequenceClassifierImpl::encode_bpt3c(const torch::Tensor& tokens,
                                                                             const torch::Tensor& mask) {
  const int64_t length = tokens.size(1);
  // Each row pools over its own last max_len tokens, wherever the batch's
  // padding put them (fastai keeps the batch's last max_len positions, so a
  // document's prediction shifted with the documents batched beside it).
  const auto positions = torch::arange(length, mask.options().dtype(torch::kLong));
  const auto row_end = torch::where(mask.to(torch::kBool), positions + 1, torch::zeros_like(positions)).amax(1);
  const auto window_start = (row_end - options.max_len()).clamp_min(0);
  const int64_t keep_from = window_start.min().item<int64_t>();
  RecurrentState state;
  std::vector<torch::Tensor> outputs, masks;
  for (int64_t start = 0; start < length; start += options.bptt()) {
    const int64_t end = std::min(length, start + options.bptt());
    const auto chunk = tokens.slice(1, start, end);
    const auto chunk_mask = mask.slice(1, start, end);
    // Chunks before the kept tail only pass their state on: no graph, no memory.
    const bool keep = end > keep_from;
    torch::Tensor out;
    {
      std::optional<torch::NoGradGuard> no_grad;
      if (!keep) no_grad.emplace();
      out = encoder->forward(chunk, state);
    }
    // Rows still in their leading padding start from a zero state.
    state.keep_rows_(chunk_mask.any(1));
    state.detach_();
    if (keep) {
      outputs.push_back(out);
      masks.push_back(chunk_mask);
    }
  }
  const auto kept = torch::cat(masks, 1).to(torch::kBool);
  const auto kept_positions = positions.slice(0, length - kept.size(1)).unsqueeze(0);
  return {torch::cat(outputs, 1), kept & (kept_positions >= window_start.unsqueeze(1))};
}

int64_t SequenceClassifierImpl::tokens_read() const {
  if (encoder->carries_state()) return options.max_len();
  return options.chunk_long_documents() ? options.max_len() : encoder->max_context();
}

torch::Tensor SequenceClassifierImpl::forward(const torch::Tensor& tokens, const torch::Tensor& mask) {
  auto [outputs, kept_mask] = encode(tokens, mask);
  return head->forward(outputs, kept_mask);
}

std::vector<ParameterGroup> SequenceClassifierImpl::layer_groups() {
  std::vector<ParameterGroup> groups{encoder->embedding_group()};
  for (auto& g : encoder->block_groups()) groups.push_back(g);
  groups.push_back(head->parameters());
  return groups;
}

}  // namespace ulmfit::nn
