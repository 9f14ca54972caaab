#include "ulmfit/tasks/language_modeling.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "ulmfit/tasks/masked_lm.h"

namespace ulmfit::tasks {
namespace {

/// Seed of the masks a masked LM is evaluated on: fixed, so evaluations compare.
constexpr std::uint64_t kEvaluationMaskSeed = 0x6d61736bULL;

/// Sum of cross-entropy over real targets, and their count.
std::pair<double, double> summed_loss(nn::LanguageModelImpl& model, text::LmStream& stream,
                                      const torch::Device& device, const LmObjective& objective) {
  nn::RecurrentState state;
  double total = 0, count = 0;
  const bool carry = model.encoder->carries_state();
  const int64_t vocab = model.encoder->embedding_weight().size(0);
  auto generator = at::make_generator<at::CPUGeneratorImpl>(kEvaluationMaskSeed);
  stream.start_epoch(0);
  while (auto batch = stream.next()) {
    torch::Tensor input = batch->input, target = batch->target;
    if (objective.masked) {
      auto masked = mask_tokens(input, vocab, objective.mask_prob, generator);
      input = masked.input;
      target = masked.target;
    }
    if (!carry) state.reset();
    const auto targets = target.to(device);
    const auto out = model.forward(input.to(device), state);
    const auto loss = torch::nn::functional::cross_entropy(
        out.logits.to(torch::kFloat).reshape({-1, out.logits.size(-1)}), targets.reshape(-1),
        torch::nn::functional::CrossEntropyFuncOptions().ignore_index(text::kIgnoreIndex).reduction(torch::kSum));
    total += loss.item<double>();
    count += static_cast<double>((targets != text::kIgnoreIndex).sum().item<std::int64_t>());
  }
  return {total, count};
}

}  // namespace

torch::Tensor lm_loss(const torch::Tensor& logits, const torch::Tensor& targets) {
  // A masked-LM window can have no chosen position: its loss is zero, not the
  // mean of nothing (NaN).
  if (!(targets != text::kIgnoreIndex).any().item<bool>()) return logits.to(torch::kFloat).sum() * 0.0;
  return torch::nn::functional::cross_entropy(
      logits.to(torch::kFloat).reshape({-1, logits.size(-1)}), targets.reshape(-1),
      torch::nn::functional::CrossEntropyFuncOptions().ignore_index(text::kIgnoreIndex));
}

LanguageModelingTask::LanguageModelingTask(nn::LanguageModel model, const text::TokenizedCorpus& train,
                                           const text::TokenizedCorpus* valid, LanguageModelingOptions options)
    : model_(std::move(model)), train_stream_(train, options.train_stream), options_(options) {
  if (valid != nullptr) {
    valid_stream_.emplace(*valid, text::LmStreamOptions{options.eval_batch_size, options.eval_bptt, false, 0, false});
  }
}

void LanguageModelingTask::start_epoch(int epoch) {
  train_stream_.start_epoch(epoch);
  state_.reset();  // the hidden state starts afresh each epoch
}

void LanguageModelingTask::restore_carried_state(std::vector<torch::Tensor> state) {
  for (auto& t : state) t = t.to(options_.device);
  state_.tensors = std::move(state);
}

train::StepResult LanguageModelingTask::train_step() {
  auto batch = train_stream_.next();
  TORCH_CHECK(batch.has_value(), "language-model stream ran out of batches");
  torch::Tensor input = batch->input, target = batch->target;
  if (options_.masked) {
    auto masked = mask_tokens(input, model_->encoder->embedding_weight().size(0), options_.mask_prob);
    input = masked.input;
    target = masked.target;
  }
  // A Transformer's state would be a cache of this window: never carried.
  if (!model_->encoder->carries_state()) state_.reset();
  const auto targets = target.to(options_.device);
  const auto out = model_->forward(input.to(options_.device), state_);
  if (model_->encoder->carries_state()) {
    state_.detach_();
  } else {
    state_.reset();
  }
  const auto ce = lm_loss(out.logits, targets);
  auto loss = ce;
  // AR and TAR (Merity et al. 2017) in fp32, on the last layer's outputs.
  if (options_.ar > 0) loss = loss + options_.ar * out.dropped.to(torch::kFloat).pow(2).mean();
  if (options_.tar > 0 && out.raw.size(1) > 1) {
    const auto raw = out.raw.to(torch::kFloat);
    loss = loss + options_.tar * (raw.slice(1, 1) - raw.slice(1, 0, -1)).pow(2).mean();
  }
  train::StepResult result;
  result.loss = loss;
  result.loss_value = ce.item<double>();
  result.items = static_cast<double>(batch->input.numel());
  result.lr_scale = static_cast<double>(batch->seq_len) / options_.train_stream.bptt;
  return result;
}

train::Metrics LanguageModelingTask::evaluate() {
  if (!valid_stream_) return {};
  const auto [total, count] =
      summed_loss(*model_, *valid_stream_, options_.device, {options_.masked, options_.mask_prob});
  const double loss = total / std::max(count, 1.0);
  return {{"valid_loss", loss}, {"perplexity", std::exp(loss)}};
}

train::Metrics evaluate_language_model(nn::LanguageModelImpl& model, const text::TokenizedCorpus& corpus,
                                       int batch_size, int bptt, const torch::Device& device,
                                       LmObjective objective) {
  text::LmStream stream(corpus, {batch_size, bptt, false, 0, false});
  const auto [total, count] = summed_loss(model, stream, device, objective);
  const double loss = total / std::max(count, 1.0);
  return {{"loss", loss}, {"perplexity", std::exp(loss)}, {"tokens", count}};
}

}  // namespace ulmfit::tasks
