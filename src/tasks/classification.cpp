#include "ulmfit/tasks/classification.h"

#include <algorithm>
#include <optional>

#include "ulmfit/dist/process_group.h"
#include "ulmfit/util/error.h"

namespace ulmfit::tasks {
namespace {

text::ClassificationBatchOptions batch_options(int batch_size, bool shuffle, std::uint64_t seed, int bptt) {
  text::ClassificationBatchOptions o;
  o.batch_size = batch_size;
  o.shuffle = shuffle;
  o.seed = seed;
  o.pad_first = true;
  o.pad_chunk = bptt;
  return o;
}

/// Training batches as fastai's text learner makes them: shuffled, sort-ish and
/// drop_last, so the head's BatchNorm never sees a batch of one document.
text::ClassificationBatchOptions training_batch_options(const ClassificationOptions& options) {
  auto o = batch_options(options.batch_size, true, options.seed, options.bptt);
  o.drop_last = true;
  o.chunk_batches = options.length_sort_window;
  o.shard = options.shard;
  o.shards = options.shards;
  return o;
}

}  // namespace

ClassificationTask::ClassificationTask(nn::SequenceClassifier model, const text::TokenizedCorpus& train,
                                       const text::TokenizedCorpus* valid, ClassificationOptions options)
    : model_(std::move(model)),
      batches_(train, training_batch_options(options)),
      valid_(valid),
      options_(options) {
  for (std::size_t i = 0; i < train.size(); ++i) {
    if (train.label(i) < 0) throw DataError("classifier training data has unlabelled documents");
  }
}

void ClassificationTask::start_epoch(int epoch) {
  batches_.start_epoch(epoch);
  next_ = 0;
}

train::StepResult ClassificationTask::train_step() {
  const auto batch = batches_.batch(next_++);
  const auto logits = model_->forward(batch.tokens.to(options_.device), batch.mask.to(options_.device));
  const auto loss = torch::nn::functional::cross_entropy(logits.to(torch::kFloat), batch.labels.to(options_.device));
  train::StepResult r;
  r.loss = loss;
  r.loss_value = loss.item<double>();
  r.items = static_cast<double>(batch.indices.size());
  r.weight = r.items;
  return r;
}

// The running averages BatchNorm keeps in training mix statistics of many
// past weights. A random encoder trained from scratch moves its pooled
// features further between steps than they differ between documents, so the
// averages lag behind the weights and evaluation shifts every document to
// one class. Recomputing them with the weights being evaluated ("precise
// BN", Wu & Johnson 2021, "Rethinking 'Batch' in BatchNorm") removes the lag.
// Only the norms run in training mode, so no dropout draws a random number
// and training continues exactly as it would have.
void ClassificationTask::refresh_batch_norm() {
  auto& norms = model_->head->norms;
  if (options_.batch_norm_refresh <= 0 || norms.empty() || next_ == 0) return;
  const std::size_t count = std::min<std::size_t>(next_, static_cast<std::size_t>(options_.batch_norm_refresh));
  std::vector<std::optional<double>> momenta;
  std::vector<bool> training;
  for (auto& norm : norms) {
    momenta.push_back(norm->options.momentum());
    training.push_back(norm->is_training());
    norm->options.momentum(std::nullopt);  // a plain average over the refresh batches
    norm->reset_running_stats();
    norm->train(true);
  }
  torch::NoGradGuard no_grad;
  for (std::size_t b = next_ - count; b < next_; ++b) {
    const auto batch = batches_.batch(b);
    model_->forward(batch.tokens.to(options_.device), batch.mask.to(options_.device));
  }
  for (std::size_t i = 0; i < norms.size(); ++i) {
    norms[i]->options.momentum(momenta[i]);
    norms[i]->train(training[i]);
  }
}

train::Metrics ClassificationTask::evaluate() {
  // Also without validation data: the weights saved at the end then carry
  // statistics of their own.
  refresh_batch_norm();
  if (valid_ == nullptr) return {};
  torch::Tensor probs;
  auto& group = dist::world();
  if (!group.distributed()) {
    probs = predict_probabilities(*model_, *valid_, options_.eval_batch_size, options_.bptt, options_.device);
  } else {
    // Each rank scores every N-th document; the sum puts every row in place.
    std::vector<std::size_t> mine;
    for (std::size_t i = static_cast<std::size_t>(group.rank()); i < valid_->size(); i += static_cast<std::size_t>(group.size())) {
      mine.push_back(i);
    }
    probs = torch::zeros({static_cast<std::int64_t>(valid_->size()), model_->options.classes()});
    if (!mine.empty()) {
      const auto part = predict_probabilities(*model_, valid_->subset(mine), options_.eval_batch_size, options_.bptt,
                                              options_.device);
      const auto rows = torch::tensor(std::vector<std::int64_t>(mine.begin(), mine.end()));
      probs.index_copy_(0, rows, part);
    }
    group.all_reduce_sum(probs);
  }
  std::vector<std::int64_t> truth, predicted;
  const auto argmax = probs.argmax(1);
  double nll = 0;
  for (std::size_t i = 0; i < valid_->size(); ++i) {
    truth.push_back(valid_->label(i));
    predicted.push_back(argmax[static_cast<std::int64_t>(i)].item<std::int64_t>());
    nll -= std::log(std::max(1e-12, probs[static_cast<std::int64_t>(i)][truth.back()].item<double>()));
  }
  const auto report = train::classification_report(truth, predicted, static_cast<int>(probs.size(1)));
  train::Metrics metrics = {{"accuracy", report.accuracy},
                            {"macro_f1", report.macro_f1},
                            {"valid_loss", nll / std::max<double>(1.0, static_cast<double>(truth.size()))}};
  // How many documents went to each class: a classifier that answers one class
  // whatever it reads shows here, whatever its accuracy on a skewed set.
  const auto& names = valid_->label_names();
  std::vector<double> counts(static_cast<std::size_t>(probs.size(1)), 0.0);
  for (const auto p : predicted) counts[static_cast<std::size_t>(p)] += 1;
  for (std::size_t c = 0; c < counts.size(); ++c) {
    metrics["predicted_" + (c < names.size() ? names[c] : std::to_string(c))] = counts[c];
  }
  return metrics;
}

torch::Tensor predict_probabilities(nn::SequenceClassifierImpl& model, const text::TokenizedCorpus& corpus,
                                    int batch_size, int bptt, const torch::Device& device,
                                    std::size_t batch_positions) {
  auto options = batch_options(batch_size, false, 0, bptt);
  options.batch_positions = batch_positions;
  options.width_cap = static_cast<std::size_t>(model.tokens_read());
  text::ClassificationBatches batches(corpus, options);
  batches.start_epoch(0);
  torch::Tensor out;
  for (std::size_t b = 0; b < batches.num_batches(); ++b) {
    const auto batch = batches.batch(b);
    const auto probs = torch::softmax(model.forward(batch.tokens.to(device), batch.mask.to(device)).to(torch::kFloat), 1)
                           .to(torch::kCPU);
    if (!out.defined()) out = torch::zeros({static_cast<std::int64_t>(corpus.size()), probs.size(1)});
    const auto rows = torch::tensor(std::vector<std::int64_t>(batch.indices.begin(), batch.indices.end()));
    out.index_copy_(0, rows, probs);
  }
  return out;
}

}  // namespace ulmfit::tasks
