#include "ulmfit/tasks/language_modeling.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "ulmfit/dist/process_group.h"
#include "ulmfit/tasks/masked_lm.h"

namespace ulmfit::tasks {
namespace {

/// Seed of the masks a masked LM is evaluated on: fixed, so evaluations compare.
constexpr std::uint64_t kEvaluationMaskSeed = 0x6d61736bULL;

/// Sum of cross-entropy (in fp32) over the targets that are not kIgnoreIndex.
torch::Tensor summed_cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets) {
  return torch::nn::functional::cross_entropy(
      logits.to(torch::kFloat).reshape({-1, logits.size(-1)}), targets.reshape(-1),
      torch::nn::functional::CrossEntropyFuncOptions().ignore_index(text::kIgnoreIndex).reduction(torch::kSum));
}

/// The input a model reads and the targets it is scored on: the stream's own
/// (next token), or BERT's corruption of the input and the chosen positions.
std::pair<torch::Tensor, torch::Tensor> objective_window(const text::LmBatch& batch, const LmObjective& objective,
                                                         int64_t vocab_size,
                                                         std::optional<at::Generator> generator = std::nullopt) {
  if (!objective.masked) return {batch.input, batch.target};
  auto masked = mask_tokens(batch.input, vocab_size, objective.mask_prob, std::move(generator));
  return {masked.input, masked.target};
}

/// Sum of cross-entropy over real targets, and their count.
std::pair<double, double> summed_loss(nn::LanguageModelImpl& model, text::LmStream& stream,
                                      const torch::Device& device, const LmObjective& objective) {
  nn::RecurrentState carried;
  double total = 0, count = 0;
  const int64_t vocab = model.encoder->embedding_weight().size(0);
  auto generator = at::make_generator<at::CPUGeneratorImpl>(kEvaluationMaskSeed);
  stream.start_epoch(0);
  while (auto batch = stream.next()) {
    const auto [input, target] = objective_window(*batch, objective, vocab, generator);
    const auto targets = target.to(device);
    nn::RecurrentState window;  // a Transformer reads each window on its own
    auto& state = model.encoder->carries_state() ? carried : window;
    const auto out = model.forward(input.to(device), state);
    total += summed_cross_entropy(out.logits, targets).item<double>();
    count += static_cast<double>((targets != text::kIgnoreIndex).sum().item<std::int64_t>());
  }
  return {total, count};
}

}  // namespace

torch::Tensor lm_loss(const torch::Tensor& logits, const torch::Tensor& targets) {
  // The sum over the count, not cross_entropy's mean: the same value, and a
  // window without targets gives zero rather than NaN, with no host sync.
  return summed_cross_entropy(logits, targets) / (targets != text::kIgnoreIndex).sum().clamp_min(1);
}

LanguageModelingTask::LanguageModelingTask(nn::LanguageModel model, const text::TokenizedCorpus& train,
                                           const text::TokenizedCorpus* valid, LanguageModelingOptions options)
    : model_(std::move(model)), train_stream_(train, options.train_stream), options_(options) {
  if (valid != nullptr) {
    // Data-parallel ranks score their rows of the validation stream (the
    // stages make the batch divide among them) and sum the results.
    const auto& train_stream = options.train_stream;
    const bool shard = options.eval_batch_size % train_stream.shards == 0;
    valid_stream_.emplace(*valid, text::LmStreamOptions{options.eval_batch_size, options.eval_bptt, false, 0, false,
                                                        shard ? train_stream.shard : 0, shard ? train_stream.shards : 1});
    valid_sharded_ = shard && train_stream.shards > 1;
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
  const auto [input, target] =
      objective_window(*batch, options_.objective, model_->encoder->embedding_weight().size(0));
  const auto targets = target.to(options_.device);
  nn::RecurrentState window;  // a Transformer reads each window on its own; its cache dies here
  auto& state = model_->encoder->carries_state() ? state_ : window;
  const auto out = model_->forward(input.to(options_.device), state);
  state.detach_();
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
  result.weight = static_cast<double>((target != text::kIgnoreIndex).sum().item<std::int64_t>());
  result.lr_scale = static_cast<double>(batch->seq_len) / options_.train_stream.bptt;
  return result;
}

train::Metrics LanguageModelingTask::evaluate() {
  if (!valid_stream_) return {};
  auto [total, count] = summed_loss(*model_, *valid_stream_, options_.device, options_.objective);
  if (valid_sharded_) {
    auto sums = torch::tensor({total, count}, torch::kFloat64);
    dist::world().all_reduce_sum(sums);
    total = sums[0].item<double>();
    count = sums[1].item<double>();
  }
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
