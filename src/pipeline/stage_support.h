#pragma once
// Pieces the stages share: device and seeding, tokenizer and corpora, fit
// options from the config, and a run directory's model. Internal to pipeline.
#include <torch/torch.h>

#include <optional>
#include <string>

#include "ulmfit/config/config.h"
#include "ulmfit/nn/heads.h"
#include "ulmfit/pipeline/run_dir.h"
#include "ulmfit/pipeline/stages.h"
#include "ulmfit/tasks/classification.h"
#include "ulmfit/tasks/language_modeling.h"
#include "ulmfit/text/token_cache.h"
#include "ulmfit/text/tokenizer.h"
#include "ulmfit/train/learner.h"
#include "ulmfit/util/system_info.h"

namespace ulmfit::pipeline::detail {

/// Seeds LibTorch and returns the device to use.
torch::Device prepare_runtime(const config::Config& cfg, const util::RuntimeInfo& runtime);

text::TokenCacheOptions cache_options(const config::Config& cfg, const util::RuntimeInfo& runtime);

/// The config's tokenizer.path, else one trained on data.train.
text::Tokenizer obtain_tokenizer(const config::Config& cfg, const util::RuntimeInfo& runtime);

struct Corpora {
  std::optional<text::TokenizedCorpus> train;
  std::optional<text::TokenizedCorpus> valid;
};

/// data.train and data.valid (or a data.valid_split share held out of train).
Corpora load_corpora(const config::Config& cfg, const text::Tokenizer& tokenizer,
                     const util::RuntimeInfo& runtime, const std::vector<std::string>& fixed_labels = {});

/// Hands a from-scratch classifier's backbone the training documents for the
/// statistics it keeps (the n-grams bag's idf); a pretrained one brings its own.
void fit_backbone_to_documents(nn::BackboneImpl& backbone, const text::TokenizedCorpus& train);

train::FitOptions fit_options(const config::Config& cfg, const util::RuntimeInfo& runtime,
                              const torch::Device& device, const std::string& stage, std::size_t groups);

/// Task options from the config's train section, for every stage that builds
/// a language-modelling or classification task.
tasks::LanguageModelingOptions lm_task_options(const config::Config& cfg, const torch::Device& device);
tasks::ClassificationOptions classification_task_options(const config::Config& cfg, const torch::Device& device);

/// Runs the Learner, keeping the best weights as model.pt (the last ones when
/// nothing was evaluated) and checkpoints in state/checkpoint.pt; with
/// `resume`, continues from that checkpoint. An interrupt's message ends with
/// the command that resumes.
train::FitSummary fit_into_run(train::Task& task, const train::FitOptions& options, RunDir& run, bool resume);

/// The parent's architecture, unless the config sets a size explicitly to a
/// different value (then CheckpointError naming the key).
config::ModelConfig inherit_architecture(const config::Config& cfg, const config::Config& parent,
                                         const std::string& parent_dir);

/// Where a classifier (or LR test) starts: an LM run's tokenizer, encoder and
/// architecture when `from` is given, else a tokenizer trained on data.train.
struct StartPoint {
  config::Config cfg;
  std::optional<RunDir> parent;
  text::Tokenizer tokenizer;
};
/// Where a stage will write. Claimed (checked) before the stage reads or
/// trains anything, opened only once its inputs have been read, so bad data
/// never leaves a half-made run directory nor costs an --overwrite'd old run.
struct OutputClaim {
  std::string dir;  // runs/<stage>-<YYYYmmdd-HHMMSS> when --out is empty
  bool overwrite = false;
  bool resume = false;
};
/// Refuses a non-empty --out without --overwrite, and --out equal to --from.
OutputClaim claim_output(const StageOptions& options, const std::string& stage);
/// Creates (or empties) the claimed folder; with `resume`, opens the existing
/// run and removes stale temporary files.
RunDir open_output(const OutputClaim& claim);

/// The fine-tuning recipe for a pretrained Transformer (an imported Hugging
/// Face model), for every train / dropout key `cfg` does not set itself.
void apply_pretrained_finetune_recipe(config::Config& cfg);

/// The recipe for a classifier trained from scratch (no --from): every layer
/// group from the start at one LR, for every key `cfg` does not set itself.
void apply_from_scratch_recipe(config::Config& cfg);

/// `resumed`, when given, is the run being resumed: its own tokenizer is kept.
/// A parent with a Hugging Face tokenizer (an imported model) gets
/// apply_pretrained_finetune_recipe(); no parent, apply_from_scratch_recipe().
StartPoint start_point(const config::Config& given, const std::string& from, const std::string& purpose,
                       const util::RuntimeInfo& runtime, const OutputClaim* resumed = nullptr);

/// A resumed run's own tokenizer when it has one, else obtain_tokenizer().
text::Tokenizer run_or_new_tokenizer(const config::Config& cfg, const util::RuntimeInfo& runtime,
                                     const OutputClaim& claim);

/// runs/<stage>-<YYYYmmdd-HHMMSS> when `out` is empty.
std::string output_dir(const std::string& out, const std::string& stage);

RunMeta make_meta(const std::string& stage, const std::string& task, const std::string& parent,
                  const config::Config& cfg, std::int64_t vocab_size, std::vector<std::string> labels);

/// A run's config, checked to hold a model of the given task.
RunDir open_run(const std::string& path, const std::string& expected_task, const std::string& purpose);

}  // namespace ulmfit::pipeline::detail
