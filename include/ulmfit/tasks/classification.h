#pragma once
/// Document classification for the Learner: sort-ish bucketed batches, BPT3C
/// classifier, cross-entropy; evaluation reports accuracy, macro-F1 and loss.
#include "ulmfit/nn/heads.h"
#include "ulmfit/text/classification_batches.h"
#include "ulmfit/train/metrics.h"
#include "ulmfit/train/task.h"

namespace ulmfit::tasks {

struct ClassificationOptions {
  int batch_size = 32;
  int eval_batch_size = 64;
  std::uint64_t seed = 0;
  int bptt = 72;  // the classifier's chunk length: padding aligns to it
  torch::Device device = torch::kCPU;
  int length_sort_window = 50;  // training: batches per window sorted by length; 1 = random lengths
  /// Before each evaluation, the head's BatchNorm statistics are recomputed
  /// with the current weights over the last this many training batches; 0
  /// keeps the running averages that training left.
  int batch_norm_refresh = 0;
  int shard = 0;                // data-parallel: this rank's share of each training batch
  int shards = 1;
};

class ClassificationTask : public train::Task {
 public:
  ClassificationTask(nn::SequenceClassifier model, const text::TokenizedCorpus& train,
                     const text::TokenizedCorpus* valid, ClassificationOptions options);

  std::shared_ptr<torch::nn::Module> model() override { return model_.ptr(); }
  std::vector<nn::ParameterGroup> layer_groups() override { return model_->layer_groups(); }
  void start_epoch(int epoch) override;
  std::size_t num_batches() const override { return batches_.num_batches(); }
  void seek(std::size_t index) override { next_ = index; }
  train::StepResult train_step() override;
  /// With batch_norm_refresh, first recomputes the head's BatchNorm statistics.
  train::Metrics evaluate() override;
  std::string monitor() const override { return "accuracy"; }
  bool higher_is_better() const override { return true; }
  std::string item_name() const override { return "docs"; }

 private:
  nn::SequenceClassifier model_;
  text::ClassificationBatches batches_;
  const text::TokenizedCorpus* valid_;
  ClassificationOptions options_;
  std::size_t next_ = 0;

  void refresh_batch_norm();
};

/// Class probabilities [documents, classes] in the corpus's order (batched by
/// length internally), with the model in eval mode and no gradients. With
/// batch_positions, batches hold at most that many (padded) token positions
/// as well as at most batch_size documents.
torch::Tensor predict_probabilities(nn::SequenceClassifierImpl& model, const text::TokenizedCorpus& corpus,
                                    int batch_size, int bptt, const torch::Device& device,
                                    std::size_t batch_positions = 0);

}  // namespace ulmfit::tasks
