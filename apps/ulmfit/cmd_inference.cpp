// evaluate, predict and generate: using a trained run.
#include <iostream>
#include <memory>

#include "cli_common.h"
#include "ulmfit/pipeline/stages.h"
#include "ulmfit/util/log.h"

namespace ulmfit::cli {
namespace {

struct InferenceArgs {
  std::string model;
  pipeline::DataSpec data;
  std::string input = "-", output = "-";
  bool json = false;
  int batch_size = 0;
  std::string device = "auto", precision = "auto";
  int threads = 0;
  pipeline::GenerateOptions generate;
};

void add_runtime_options(CLI::App* sub, InferenceArgs& args) {
  sub->add_option("--device", args.device, "auto | cpu | cuda | cuda:N")->capture_default_str();
  sub->add_option("--precision", args.precision, "auto | fp32 | bf16 | fp16")->capture_default_str();
  sub->add_option("--threads", args.threads, "CPU threads; 0 = every core other processes are not using")->capture_default_str();
}

util::RuntimeInfo runtime_for(const InferenceArgs& args) {
  config::Config cfg;
  cfg.device = args.device;
  cfg.precision = args.precision;
  cfg.threads = args.threads;
  return start_runtime(cfg);
}

}  // namespace

void add_inference_commands(CLI::App& app, const Runner& on_run) {
  auto args = std::make_shared<InferenceArgs>();

  auto* evaluate = app.add_subcommand("evaluate", "Score a classifier (accuracy, F1) or a language model (perplexity)");
  evaluate->add_option("--model", args->model, "Run directory")->required();
  evaluate->add_option("--data", args->data.path, "Data file or folder")->required();
  evaluate->add_option("--format", args->data.format, "Data format (default: the run's training format)");
  evaluate->add_option("--text-column", args->data.text_column, "Text column / field (default: the run's)");
  evaluate->add_option("--label-column", args->data.label_column, "Label column / field (default: the run's)");
  evaluate->add_option("--limit", args->data.limit, "Score a random subset of this many documents; 0 = all")
      ->capture_default_str();
  evaluate->add_flag("--balanced", args->data.balanced, "With --limit: the same number of documents of each label");
  evaluate->add_flag("--json", args->json, "Print one JSON object instead of a table");
  add_runtime_options(evaluate, *args);
  evaluate->callback([args, on_run] {
    on_run([args] {
      const auto e = pipeline::evaluate(args->model, args->data, runtime_for(*args));
      std::cout << (args->json ? e.to_json() + "\n" : e.to_table());
      return 0;
    });
  });

  auto* predict = app.add_subcommand("predict", "Label documents with a classifier; JSONL out, in input order");
  predict->add_option("--model", args->model, "Run directory")->required();
  predict->add_option("--input", args->input, "Input file, or - for stdin")->capture_default_str();
  predict->add_option("--output", args->output, "Output file, or - for stdout")->capture_default_str();
  predict->add_option("--format", args->data.format, "text (a document per line) | tsv | csv | jsonl");
  predict->add_option("--text-column", args->data.text_column, "Text column / field (default: the run's)");
  predict->add_option("--batch-size", args->batch_size,
                      "Documents per batch; 0 = 16 for Transformer backbones, 64 for AWD-LSTM")
      ->capture_default_str();
  add_runtime_options(predict, *args);
  predict->callback([args, on_run] {
    on_run([args] {
      const auto n = pipeline::predict(args->model, args->input, args->output, args->data, args->batch_size,
                                       runtime_for(*args));
      log::info("predict: labelled " + std::to_string(n) + " documents");
      return 0;
    });
  });

  auto* generate = app.add_subcommand("generate", "Sample text from a language model");
  generate->add_option("--model", args->model, "Run directory")->required();
  generate->add_option("--prompt", args->generate.prompt, "Text to continue")->required();
  generate->add_option("--max-tokens", args->generate.max_tokens, "Tokens to generate")->capture_default_str();
  generate->add_option("--temperature", args->generate.temperature, "Sampling temperature")->capture_default_str();
  generate->add_option("--top-k", args->generate.top_k, "Keep the k likeliest tokens; 0 = all")->capture_default_str();
  generate->add_option("--top-p", args->generate.top_p, "Nucleus sampling mass")->capture_default_str();
  generate->add_option("--seed", args->generate.seed, "Sampling seed")->capture_default_str();
  add_runtime_options(generate, *args);
  generate->callback([args, on_run] {
    on_run([args] {
      std::cout << pipeline::generate(args->model, args->generate, runtime_for(*args)) << "\n";
      return 0;
    });
  });
}

}  // namespace ulmfit::cli
