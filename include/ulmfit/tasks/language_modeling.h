#pragma once
/// Language modelling for the Learner: LM streams in, cross-entropy plus
/// AWD-LSTM's activation regularisation (AR) and temporal AR out. A recurrent
/// backbone's hidden state is carried across windows and detached; a
/// Transformer reads each window on its own. The objective is next-token
/// prediction, or BERT's masked LM (the stream's windows are then the packed
/// fixed-length sequences, corrupted by mask_tokens).
#include "ulmfit/nn/heads.h"
#include "ulmfit/text/lm_stream.h"
#include "ulmfit/train/task.h"

namespace ulmfit::tasks {

/// What a language model learns to predict.
struct LmObjective {
  bool masked = false;       // masked LM instead of next-token prediction
  double mask_prob = 0.15;   // masked LM: share of positions predicted
};

struct LanguageModelingOptions {
  text::LmStreamOptions train_stream;
  int eval_batch_size = 32;
  int eval_bptt = 72;
  double ar = 2.0;
  double tar = 1.0;
  LmObjective objective;
  torch::Device device = torch::kCPU;
};

/// Mean cross-entropy over positions whose target is not kIgnoreIndex,
/// computed in fp32; zero when there is none (a masked-LM window may choose
/// no position).
torch::Tensor lm_loss(const torch::Tensor& logits, const torch::Tensor& targets);

class LanguageModelingTask : public train::Task {
 public:
  /// `valid` may be null: evaluation then reports nothing.
  LanguageModelingTask(nn::LanguageModel model, const text::TokenizedCorpus& train,
                       const text::TokenizedCorpus* valid, LanguageModelingOptions options);

  std::shared_ptr<torch::nn::Module> model() override { return model_.ptr(); }
  std::vector<nn::ParameterGroup> layer_groups() override { return model_->layer_groups(); }
  void start_epoch(int epoch) override;
  std::size_t num_batches() const override { return train_stream_.num_batches(); }
  void seek(std::size_t index) override { train_stream_.seek(index); }
  std::vector<torch::Tensor> carried_state() const override { return state_.tensors; }
  void restore_carried_state(std::vector<torch::Tensor> state) override;
  train::StepResult train_step() override;
  train::Metrics evaluate() override;
  std::string monitor() const override { return "valid_loss"; }
  bool higher_is_better() const override { return false; }
  std::string item_name() const override { return "tokens"; }

 private:
  nn::LanguageModel model_;
  text::LmStream train_stream_;
  std::optional<text::LmStream> valid_stream_;
  bool valid_sharded_ = false;  // each data-parallel rank scores its rows
  LanguageModelingOptions options_;
  nn::RecurrentState state_;
};

/// Loss and perplexity of a language model over a corpus (eval mode, no grad).
/// A masked LM is scored on masks drawn from a fixed seed, the same every call.
train::Metrics evaluate_language_model(nn::LanguageModelImpl& model, const text::TokenizedCorpus& corpus,
                                       int batch_size, int bptt, const torch::Device& device,
                                       LmObjective objective = {});

}  // namespace ulmfit::tasks
