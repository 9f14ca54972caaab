#pragma once
/// The pipeline's stages. pretrain, adapt and finetune share the one Learner;
/// they differ in config, task and where their weights start.
///
///   auto runtime = util::resolve_runtime(cfg.device, cfg.precision, cfg.threads);
///   pretrain(cfg, runtime, {.out = "runs/wt2"});
///   adapt(cfg2, runtime, {.from = "runs/wt2", .out = "runs/imdb-lm"});
#include <optional>
#include <string>
#include <vector>

#include "ulmfit/config/config.h"
#include "ulmfit/nn/heads.h"
#include "ulmfit/pipeline/generate_options.h"
#include "ulmfit/train/learner.h"
#include "ulmfit/train/metrics.h"
#include "ulmfit/util/system_info.h"

namespace ulmfit::pipeline {

struct StageOptions {
  std::string from;        // parent run directory (adapt, finetune)
  std::string out;         // run directory to write; empty = runs/<stage>-<time>
  bool overwrite = false;  // replace a non-empty run directory
  bool resume = false;     // continue the run in `out` from its checkpoint
  bool allow_world_size_change = false;  // resume with another number of data-parallel ranks
};

/// What `ulmfit STAGE --resume RUN` runs: RUN's own resolved config, its
/// parent as `from` and RUN itself as `out`. UsageError when RUN belongs to
/// another stage; CheckpointError when it is not a run directory.
struct Resumption {
  config::Config cfg;
  StageOptions options;
};
Resumption prepare_resume(const std::string& run_dir, const std::string& stage);

struct StageResult {
  std::string run_dir;
  train::FitSummary fit;
};

StageResult pretrain(const config::Config& cfg, const util::RuntimeInfo& runtime, const StageOptions& options);
StageResult adapt(const config::Config& cfg, const util::RuntimeInfo& runtime, const StageOptions& options);
StageResult finetune(const config::Config& cfg, const util::RuntimeInfo& runtime, const StageOptions& options);

/// Where evaluate / predict read documents from.
struct DataSpec {
  std::string path;
  std::string format;        // empty = the run's training format, else text
  std::string text_column;   // empty = the run's
  std::string label_column;  // empty = the run's
  std::int64_t limit = 0;    // random subset of this many documents (seed 0); 0 = all
  bool balanced = false;     // with limit: as many documents of each label
};

struct Evaluation {
  std::string task;  // lm | classifier
  std::size_t documents = 0;
  train::Metrics metrics;  // lm: loss, perplexity; classifier: accuracy, macro_f1
  std::vector<std::string> labels;
  train::ClassificationReport report;  // classifier only
  std::string to_json() const;
  std::string to_table() const;
};

Evaluation evaluate(const std::string& run_dir, const DataSpec& data, const util::RuntimeInfo& runtime);

/// Writes one JSON object per input document (label and class probabilities),
/// in input order. `input`/`output` may be "-" for stdin/stdout.
std::size_t predict(const std::string& run_dir, const std::string& input, const std::string& output,
                    const DataSpec& format, int batch_size, const util::RuntimeInfo& runtime);

/// The prompt followed by sampled text; stops early at a document boundary.
std::string generate(const std::string& run_dir, const GenerateOptions& options, const util::RuntimeInfo& runtime);

/// Samples up to options.max_tokens tokens after `ids` (the model in eval mode,
/// under no_grad); returns ids with the new tokens appended. With `use_cache`
/// each new token costs one incremental step (an LSTM's state, a Transformer's
/// key/value cache); without, every step re-reads the whole sequence (for tests).
std::vector<int> sample_tokens(nn::LanguageModelImpl& model, std::vector<int> ids, const GenerateOptions& options,
                               const torch::Device& device, bool use_cache);

/// Keeps the smallest set of likeliest tokens whose probability reaches top_p
/// and at most top_k of them, after temperature; returns probabilities [vocab].
torch::Tensor sampling_distribution(const torch::Tensor& logits, double temperature, int top_k, double top_p);

struct LrFindResult {
  std::vector<std::pair<double, double>> curve;
  double suggestion = 0;
  std::string csv_path, svg_path;
};

/// fastai's LR range test on the config's task (a language model, or a
/// classifier when data.train has labels and --from names an LM run).
LrFindResult lr_find(const config::Config& cfg, const util::RuntimeInfo& runtime, const StageOptions& options);

}  // namespace ulmfit::pipeline
