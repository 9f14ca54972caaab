// The pipeline's subcommands. Their arguments and config handling are final;
// the stages behind them arrive with the pipeline issue, and until then each
// validates its input and says plainly that it is not implemented (exit 1).
#include <filesystem>
#include <iostream>
#include <memory>

#include "cli_common.h"
#include "ulmfit/config/loader.h"
#include "ulmfit/text/corpus.h"
#include "ulmfit/util/error.h"

namespace ulmfit::cli {
namespace {

namespace fs = std::filesystem;

struct StageArgs {
  ConfigArgs config;
  std::string from;
  std::string out;
};

[[noreturn]] void not_implemented(const std::string& stage) {
  throw NotImplementedError(stage + " is not implemented yet: the training stages arrive with the "
                            "AWD-LSTM pipeline; nothing was written");
}

/// pretrain / adapt / finetune / lr-find: config-driven training stages.
void add_training_stage(CLI::App& app, const Runner& on_run, const std::string& name,
                        const std::string& description, bool needs_from) {
  auto args = std::make_shared<StageArgs>();
  auto* sub = app.add_subcommand(name, description);
  add_config_options(sub, args->config, /*config_required=*/true);
  auto* from = sub->add_option("--from", args->from, "Run directory whose weights to start from");
  if (needs_from) from->required();
  sub->add_option("--out", args->out, "Run directory to write");
  sub->callback([args, name, on_run] {
    on_run([args, name] {
      const config::Config cfg = load_config(args->config);
      if (args->config.dump_config) {
        std::cout << config::dump_config(cfg);
        return 0;
      }
      text::check_data_paths(cfg);
      start_runtime(cfg);
      if (!args->from.empty() && !fs::is_directory(args->from)) {
        throw CheckpointError(args->from + ": run directory not found (--from)");
      }
      not_implemented(name);
    });
  });
}

void require_run_dir(const std::string& path) {
  if (!fs::is_directory(path)) throw CheckpointError(path + ": run directory not found (--model)");
}

}  // namespace

void add_stage_commands(CLI::App& app, const Runner& on_run) {
  add_training_stage(app, on_run, "pretrain", "Train a tokenizer and a language model on a corpus",
                     false);
  add_training_stage(app, on_run, "adapt",
                     "Continue language-model training on domain text (--from a pretrained run)", true);
  add_training_stage(app, on_run, "finetune",
                     "Train a classifier; from a language model (--from) or from scratch", false);
  add_training_stage(app, on_run, "lr-find", "LR range test: loss against learning rate", false);

  struct ModelArgs {
    std::string model, data, format, text_column, label_column, input = "-", output = "-", prompt;
    bool json = false;
    int batch_size = 64, max_tokens = 100, top_k = 0;
    double temperature = 1.0, top_p = 1.0;
    std::int64_t seed = 42;
  };
  auto args = std::make_shared<ModelArgs>();

  auto* evaluate = app.add_subcommand("evaluate", "Score a classifier or language model on data");
  evaluate->add_option("--model", args->model, "Run directory")->required();
  evaluate->add_option("--data", args->data, "Data file or folder")->required();
  evaluate->add_option("--format", args->format, "Data format (default: the run's)");
  evaluate->add_option("--text-column", args->text_column, "Text column / field");
  evaluate->add_option("--label-column", args->label_column, "Label column / field");
  evaluate->add_flag("--json", args->json, "Print JSON instead of a table");

  auto* predict = app.add_subcommand("predict", "Label text with a classifier, as JSONL");
  predict->add_option("--model", args->model, "Run directory")->required();
  predict->add_option("--input", args->input, "Input file, or - for stdin")->capture_default_str();
  predict->add_option("--output", args->output, "Output file, or - for stdout")->capture_default_str();
  predict->add_option("--format", args->format, "Input format (default: a document per line)");
  predict->add_option("--batch-size", args->batch_size, "Documents per batch")->capture_default_str();

  auto* generate = app.add_subcommand("generate", "Sample text from a language model");
  generate->add_option("--model", args->model, "Run directory")->required();
  generate->add_option("--prompt", args->prompt, "Text to continue")->required();
  generate->add_option("--max-tokens", args->max_tokens, "Tokens to generate")->capture_default_str();
  generate->add_option("--temperature", args->temperature, "Sampling temperature")->capture_default_str();
  generate->add_option("--top-k", args->top_k, "Keep the k likeliest tokens; 0 = all")->capture_default_str();
  generate->add_option("--top-p", args->top_p, "Nucleus sampling mass")->capture_default_str();
  generate->add_option("--seed", args->seed, "Sampling seed")->capture_default_str();

  for (auto* sub : {evaluate, predict, generate}) {
    const std::string name = sub->get_name();
    sub->callback([args, name, on_run] {
      on_run([args, name]() -> int {
        require_run_dir(args->model);
        not_implemented(name);
      });
    });
  }
}

}  // namespace ulmfit::cli
