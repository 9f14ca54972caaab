// pretrain, adapt, finetune and lr-find: config-driven stages on one Learner.
#include <iostream>
#include <memory>

#include "cli_common.h"
#include "ulmfit/config/loader.h"
#include "ulmfit/pipeline/stages.h"
#include "ulmfit/text/corpus.h"
#include "ulmfit/util/log.h"

namespace ulmfit::cli {
namespace {

struct TrainArgs {
  ConfigArgs config;
  pipeline::StageOptions stage;
};

using StageFn = pipeline::StageResult (*)(const config::Config&, const util::RuntimeInfo&,
                                          const pipeline::StageOptions&);

CLI::App* add_common(CLI::App& app, const std::string& name, const std::string& description,
                     const std::shared_ptr<TrainArgs>& args, bool needs_from) {
  auto* sub = app.add_subcommand(name, description);
  add_config_options(sub, args->config, /*config_required=*/true);
  auto* from = sub->add_option("--from", args->stage.from, "Run directory whose weights to start from");
  if (needs_from) from->required();
  sub->add_option("--out", args->stage.out, "Run directory to write (default: runs/" + name + "-<time>)");
  sub->add_flag("--overwrite", args->stage.overwrite, "Replace a non-empty run directory");
  return sub;
}

void add_training_stage(CLI::App& app, const Runner& on_run, const std::string& name, const std::string& description,
                        bool needs_from, StageFn stage) {
  auto args = std::make_shared<TrainArgs>();
  auto* sub = add_common(app, name, description, args, needs_from);
  sub->callback([args, stage, name, on_run] {
    on_run([args, stage, name] {
      const config::Config cfg = load_config(args->config);
      if (args->config.dump_config) {
        std::cout << config::dump_config(cfg);
        return 0;
      }
      text::check_data_paths(cfg);
      const auto runtime = start_runtime(cfg);
      const auto result = stage(cfg, runtime, args->stage);
      std::string best;
      for (const auto& [k, v] : result.fit.best) best += " " + k + " " + std::to_string(v);
      log::info(name + ": done in " + std::to_string(static_cast<long>(result.fit.seconds)) + " s;" +
                (best.empty() ? std::string(" no validation data") : " best epoch " +
                 std::to_string(result.fit.best_epoch + 1) + ":" + best) + "; run directory " + result.run_dir);
      std::cout << result.run_dir << "\n";
      return 0;
    });
  });
}

}  // namespace

void add_stage_commands(CLI::App& app, const Runner& on_run) {
  add_training_stage(app, on_run, "pretrain", "Train a tokenizer and a language model on a corpus", false,
                     &pipeline::pretrain);
  add_training_stage(app, on_run, "adapt", "Continue language-model training on domain text (--from an LM run)",
                     true, &pipeline::adapt);
  add_training_stage(app, on_run, "finetune", "Train a classifier: from a language model (--from) or from scratch",
                     false, &pipeline::finetune);

  auto args = std::make_shared<TrainArgs>();
  auto* sub = add_common(app, "lr-find", "LR range test: smoothed loss against learning rate (CSV + SVG)", args, false);
  sub->callback([args, on_run] {
    on_run([args] {
      const config::Config cfg = load_config(args->config);
      if (args->config.dump_config) {
        std::cout << config::dump_config(cfg);
        return 0;
      }
      text::check_data_paths(cfg);
      const auto result = pipeline::lr_find(cfg, start_runtime(cfg), args->stage);
      log::info("lr-find: curve in " + result.csv_path + " and " + result.svg_path);
      std::cout << "suggested lr " << result.suggestion << "\n";
      return 0;
    });
  });
}

}  // namespace ulmfit::cli
