#pragma once
/// A run directory loaded once for inference: its model in eval mode, its
/// tokenizer and config. evaluate, predict, generate and the HTTP server all
/// go through it, so a served answer is predict's answer.
///
///   pipeline::LoadedModel model("runs/clf", runtime);
///   auto probs = model.classify({"a fine film", "dull"});  // [2, labels]
///
/// One thread uses an instance at a time (the server gives each model its own
/// worker thread): no-grad and autocast are thread-local, set per call.
#include <memory>
#include <string>
#include <vector>

#include "ulmfit/nn/heads.h"
#include "ulmfit/pipeline/run_dir.h"
#include "ulmfit/pipeline/stages.h"
#include "ulmfit/text/token_cache.h"
#include "ulmfit/text/tokenizer.h"

namespace ulmfit::pipeline {

class LoadedModel {
 public:
  /// CheckpointError when the run is missing, corrupt, or its tokenizer does
  /// not match its model.
  LoadedModel(const std::string& run_dir, const util::RuntimeInfo& runtime);
  ~LoadedModel();
  LoadedModel(LoadedModel&&) noexcept;
  LoadedModel& operator=(LoadedModel&&) noexcept;

  const RunDir& run() const;
  const RunMeta& meta() const { return run().meta(); }
  const config::Config& config() const;
  const text::Tokenizer& tokenizer() const;
  const torch::Device& device() const;
  /// Only a left-to-right language model generates (not a masked LM).
  bool can_generate() const;

  /// Class probabilities [texts, labels], fp32 on the CPU, in input order.
  /// Texts as `predict` reads them (text::normalize_document). batch_size 0 =
  /// the backbone's inference default. `mixed_lengths`: a few texts of any
  /// lengths (a server's batch of strangers' requests) rather than many to
  /// sort, so a Transformer's batches are also bounded in padded positions.
  torch::Tensor classify(const std::vector<std::string>& texts, int batch_size = 0, bool mixed_lengths = false) const;
  /// The same for documents already tokenized (evaluate's corpora).
  torch::Tensor classify(const text::TokenizedCorpus& corpus, int batch_size = 0, bool mixed_lengths = false) const;
  struct Generation {
    std::string text;           // the prompt followed by sampled text
    std::size_t new_tokens = 0;  // how many tokens were sampled
  };
  /// Samples after the prompt (see sample_tokens).
  Generation generate(const GenerateOptions& options) const;
  /// Loss and perplexity of a language model on a corpus.
  train::Metrics evaluate_language_model(const text::TokenizedCorpus& corpus) const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace ulmfit::pipeline
