// pretrain, adapt and finetune: the same Learner on different tasks and starts.
#include <filesystem>

#include "stage_support.h"
#include "ulmfit/dist/process_group.h"
#include "ulmfit/nn/model_factory.h"
#include "ulmfit/pipeline/stages.h"
#include "ulmfit/tasks/classification.h"
#include "ulmfit/tasks/language_modeling.h"
#include "ulmfit/text/corpus.h"
#include "ulmfit/util/error.h"
#include "ulmfit/util/log.h"

namespace ulmfit::pipeline {
namespace {

/// "N parameters" for the log: what comparisons between backbones need.
std::string parameter_count(torch::nn::Module& model) {
  std::int64_t n = 0;
  for (const auto& p : model.parameters()) n += p.numel();
  return std::to_string(n) + " parameters";
}

/// Trains a language model that starts from `model` (fresh or loaded).
StageResult train_language_model(const std::string& stage, const config::Config& cfg, const util::RuntimeInfo& runtime,
                                 const torch::Device& device, RunDir& run, const detail::Corpora& corpora,
                                 nn::LanguageModel model, const StageOptions& stage_options) {
  model->to(device);
  log::info(stage + ": " + cfg.model.backbone + " language model, " + parameter_count(*model));
  tasks::LanguageModelingTask task(model, *corpora.train, corpora.valid ? &*corpora.valid : nullptr,
                                   detail::lm_task_options(cfg, device));
  auto options = detail::fit_options(cfg, runtime, device, stage, model->layer_groups().size());
  options.allow_world_size_change = stage_options.allow_world_size_change;
  StageResult result;
  result.run_dir = run.path();
  result.fit = detail::fit_into_run(task, options, run, stage_options.resume);
  return result;
}

/// A resumed run keeps the files it was started with: config, tokenizer and
/// meta are written only by a fresh run. The config records the precision
/// `auto` resolved to (it can depend on a measurement), so --resume repeats it.
void write_run_files(RunDir& run, const StageOptions& options, config::Config cfg, const util::RuntimeInfo& runtime,
                     const text::Tokenizer& tokenizer, const RunMeta& meta) {
  if (options.resume || !dist::world().is_main()) return;
  cfg.precision = runtime.precision;
  run.write_config(cfg);
  tokenizer.save_into_run(run.path());
  run.write_meta(meta);
}

}  // namespace

Resumption prepare_resume(const std::string& run_dir, const std::string& stage) {
  if (!std::filesystem::is_directory(run_dir)) throw UsageError(run_dir + ": run directory not found (--resume)");
  if (!std::filesystem::is_regular_file(std::filesystem::path(run_dir) / "meta.yaml")) {
    throw CheckpointError(run_dir + ": has no meta.yaml; the stage stopped before training began, so there is "
                          "nothing to resume: run it again with --overwrite");
  }
  RunDir run = RunDir::open(run_dir);
  if (run.meta().stage != stage) {
    throw UsageError(run_dir + ": is a " + run.meta().stage + " run; resume it with: ulmfit " + run.meta().stage +
                     " --resume " + run_dir);
  }
  Resumption r{run.read_config(), {}};
  r.options.from = run.meta().parent;
  r.options.out = run_dir;
  r.options.resume = true;
  return r;
}

StageResult pretrain(const config::Config& cfg, const util::RuntimeInfo& runtime, const StageOptions& options) {
  text::check_data_paths(cfg);
  nn::check_architecture(cfg, true);
  const auto device = detail::prepare_runtime(cfg, runtime);
  const auto claim = detail::claim_output(options, "pretrain");
  const auto tokenizer = detail::run_or_new_tokenizer(cfg, runtime, claim);
  const auto corpora = detail::load_corpora(cfg, tokenizer, runtime);
  auto model = nn::make_language_model(cfg.model, tokenizer.vocab_size());
  RunDir run = detail::open_output(claim);
  log::info(std::string("pretrain: ") + (options.resume ? "resuming " : "writing ") + run.path());
  write_run_files(run, options, cfg, runtime, tokenizer, detail::make_meta("pretrain", "lm", "", cfg, tokenizer.vocab_size(), {}));
  return train_language_model("pretrain", cfg, runtime, device, run, corpora, model, options);
}

StageResult adapt(const config::Config& given, const util::RuntimeInfo& runtime, const StageOptions& options) {
  text::check_data_paths(given);
  RunDir parent = detail::open_run(options.from, "lm", "adapt");
  const auto parent_cfg = parent.read_config();
  config::Config cfg = given;
  cfg.model = detail::inherit_architecture(given, parent_cfg, options.from);
  nn::check_architecture(cfg, true);
  const auto device = detail::prepare_runtime(cfg, runtime);
  const auto claim = detail::claim_output(options, "adapt");
  const auto tokenizer = text::Tokenizer::load_from_run(parent.path());
  auto model = nn::make_language_model(cfg.model, tokenizer.vocab_size());
  parent.load_weights(*model, "model.pt");
  const auto corpora = detail::load_corpora(cfg, tokenizer, runtime);
  RunDir run = detail::open_output(claim);
  log::info("adapt: " + options.from + " -> " + run.path() + (options.resume ? " (resuming)" : ""));
  write_run_files(run, options, cfg, runtime, tokenizer, detail::make_meta("adapt", "lm", options.from, cfg, tokenizer.vocab_size(), {}));
  return train_language_model("adapt", cfg, runtime, device, run, corpora, model, options);
}

StageResult finetune(const config::Config& given, const util::RuntimeInfo& runtime, const StageOptions& options) {
  text::check_data_paths(given);
  nn::check_architecture(given, false);
  // Claim the output first: a refused --out should not cost a tokenizer training.
  const auto claim = detail::claim_output(options, "finetune");
  auto start = detail::start_point(given, options.from, "finetune --from", runtime, options.resume ? &claim : nullptr);
  const auto& cfg = start.cfg;
  const auto& tokenizer = start.tokenizer;
  auto& parent = start.parent;
  nn::check_architecture(cfg, false);  // the parent's architecture, once inherited
  const auto device = detail::prepare_runtime(cfg, runtime);
  const auto corpora = detail::load_corpora(cfg, tokenizer, runtime, cfg.data.train.labels);
  const auto& labels = corpora.train->label_names();
  if (labels.size() < 2) {
    throw DataError(cfg.where("data.train.path") + ": a classifier needs at least two labels, found " +
                    std::to_string(labels.size()));
  }
  auto model = nn::make_classifier(cfg.model, cfg.train, tokenizer.vocab_size(), static_cast<int64_t>(labels.size()));
  if (parent) {
    parent->load_encoder_weights(*model->encoder, "model.pt");
  } else {
    detail::fit_backbone_to_documents(*model->encoder, *corpora.train);
  }
  model->to(device);
  if (dist::world().distributed()) model->head->synchronise_batch_norm(dist::differentiable_all_reduce_sum);
  tasks::ClassificationTask task(model, *corpora.train, corpora.valid ? &*corpora.valid : nullptr,
                                 detail::classification_task_options(cfg, device));
  RunDir run = detail::open_output(claim);
  log::info(std::string("finetune: ") + (parent ? options.from + " -> " : "from scratch -> ") + run.path() + ", " +
            std::to_string(labels.size()) + " classes, " + std::to_string(corpora.train->size()) + " documents, " +
            cfg.model.backbone + " classifier of " + parameter_count(*model) +
            (options.resume ? " (resuming)" : ""));
  write_run_files(run, options, cfg, runtime, tokenizer,
                  detail::make_meta("finetune", "classifier", options.from, cfg, tokenizer.vocab_size(), labels));
  auto fit = detail::fit_options(cfg, runtime, device, "finetune", model->layer_groups().size());
  fit.allow_world_size_change = options.allow_world_size_change;
  StageResult result;
  result.run_dir = run.path();
  result.fit = detail::fit_into_run(task, fit, run, options.resume);
  return result;
}

}  // namespace ulmfit::pipeline
