// pretrain, adapt, finetune and lr-find: config-driven stages on one Learner.
#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <thread>

#include "cli_common.h"
#include "ulmfit/config/loader.h"
#include "ulmfit/dist/process_group.h"
#include "ulmfit/pipeline/stages.h"
#include "ulmfit/text/corpus.h"
#include "ulmfit/util/error.h"
#include "ulmfit/util/log.h"

namespace ulmfit::cli {
namespace {

struct TrainArgs {
  ConfigArgs config;
  pipeline::StageOptions stage;
  std::string resume;  // run directory to continue
  bool allow_world_size_change = false;
};

using StageFn = pipeline::StageResult (*)(const config::Config&, const util::RuntimeInfo&,
                                          const pipeline::StageOptions&);

/// Membership of the data-parallel group for one training command, when the
/// process was started as torchrun starts them; nothing otherwise.
class ProcessGroupScope {
 public:
  ProcessGroupScope(const std::optional<dist::Launch>& launch, util::RuntimeInfo& runtime, const config::Config& cfg) {
    if (!launch || launch->world_size <= 1) return;
    // Checked before anything is written: each rank takes an equal share of a batch.
    if (cfg.train.batch_size % launch->world_size != 0) {
      throw ConfigError(cfg.where("train.batch_size") + ": " + std::to_string(cfg.train.batch_size) +
                        " does not divide among " + std::to_string(launch->world_size) +
                        " ranks; make it a multiple of WORLD_SIZE (each rank takes an equal share of every batch)");
    }
    if (runtime.device.rfind("cuda", 0) == 0) runtime.device = "cuda:" + std::to_string(launch->local_rank);
    dist::join(*launch, torch::Device(runtime.device));
    auto& group = dist::world();
    // `precision: auto` measures, and ranks must not come out differently.
    runtime.precision = group.broadcast_string(runtime.precision);
    group.check_same_everywhere("resolved config", config::dump_config(cfg));
  }
  ~ProcessGroupScope() { dist::leave(); }
  ProcessGroupScope(const ProcessGroupScope&) = delete;
  ProcessGroupScope& operator=(const ProcessGroupScope&) = delete;
};

/// Several ranks on one machine share its cores: `threads: 0` (every free
/// core) becomes this rank's share, from torchrun's LOCAL_WORLD_SIZE.
void share_cores(config::Config& cfg) {
  const char* local = std::getenv("LOCAL_WORLD_SIZE");
  const int ranks_here = local != nullptr ? std::atoi(local) : 1;
  if (cfg.threads != 0 || ranks_here <= 1) return;
  cfg.threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / ranks_here);
}

CLI::App* add_common(CLI::App& app, const std::string& name, const std::string& description,
                     const std::shared_ptr<TrainArgs>& args, bool needs_from) {
  auto* sub = app.add_subcommand(name, description);
  add_config_options(sub, args->config, /*config_required=*/false);
  sub->add_option("--from", args->stage.from,
                  std::string("Run directory whose weights to start from") + (needs_from ? " (required)" : ""));
  sub->add_option("--out", args->stage.out, "Run directory to write (default: runs/" + name + "-<time>)");
  sub->add_flag("--overwrite", args->stage.overwrite, "Replace a non-empty run directory");
  return sub;
}

/// --config (and --from where the stage needs one) unless --resume, which
/// takes everything from the run and so accepts none of them.
void check_stage_arguments(const TrainArgs& args, const std::string& name, bool needs_from) {
  if (!args.resume.empty()) {
    if (!args.config.config_path.empty() || !args.config.overrides.empty() || !args.stage.from.empty() ||
        !args.stage.out.empty() || args.stage.overwrite) {
      throw UsageError("--resume continues a run with its own config, parent and directory; drop --config, --set, "
                       "--from, --out and --overwrite");
    }
    return;
  }
  if (args.config.config_path.empty()) throw UsageError(name + ": --config is required (or --resume RUN)");
  if (needs_from && args.stage.from.empty()) throw UsageError(name + ": --from is required (the run to start from)");
}

void add_training_stage(CLI::App& app, const Runner& on_run, const std::string& name, const std::string& description,
                        bool needs_from, StageFn stage) {
  auto args = std::make_shared<TrainArgs>();
  auto* sub = add_common(app, name, description, args, needs_from);
  sub->add_option("--resume", args->resume,
                  "Continue this run directory from its last checkpoint (state/checkpoint.pt)");
  sub->add_flag("--allow-world-size-change", args->allow_world_size_change,
                "With --resume: accept a checkpoint written by another number of data-parallel ranks "
                "(the LM's hidden state then starts afresh)");
  sub->callback([args, stage, name, needs_from, on_run] {
    on_run([args, stage, name, needs_from] {
      check_stage_arguments(*args, name, needs_from);
      const auto launch = dist::launch_from_environment();
      if (launch && launch->rank > 0 && log::level() == log::Level::kInfo) log::set_level(log::Level::kWarn);
      config::Config cfg;
      pipeline::StageOptions options = args->stage;
      if (!args->resume.empty()) {
        auto resumption = pipeline::prepare_resume(args->resume, name);
        cfg = std::move(resumption.cfg);
        options = resumption.options;
      } else {
        cfg = load_config(args->config);
      }
      if (args->config.dump_config) {
        std::cout << config::dump_config(cfg);
        return 0;
      }
      text::check_data_paths(cfg);
      options.allow_world_size_change = args->allow_world_size_change;
      if (launch) share_cores(cfg);
      auto runtime = start_runtime(cfg);
      ProcessGroupScope group(launch, runtime, cfg);
      const auto result = stage(cfg, runtime, options);
      std::string best;
      for (const auto& [k, v] : result.fit.best) best += " " + k + " " + std::to_string(v);
      log::info(name + ": done in " + std::to_string(static_cast<long>(result.fit.seconds)) + " s;" +
                (best.empty() ? std::string(" no validation data")
                              : (cfg.train.keep == "last" ? " kept the last evaluation, epoch " : " best epoch ") +
                                    std::to_string(result.fit.best_epoch + 1) + ":" + best) +
                "; run directory " + result.run_dir);
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
      if (args->config.config_path.empty()) throw UsageError("lr-find: --config is required");
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
