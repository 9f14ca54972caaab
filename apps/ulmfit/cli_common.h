#pragma once
// Shared wiring for the subcommands: config options, runtime report and the
// mapping of library errors to exit codes.
#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

#include "ulmfit/config/config.h"
#include "ulmfit/util/system_info.h"

namespace ulmfit::cli {

struct ConfigArgs {
  std::string config_path;
  std::vector<std::string> overrides;
  bool dump_config = false;
};

/// Adds --config, --set and --dump-config, and lists every config key with
/// its default in the subcommand's --help.
void add_config_options(CLI::App* sub, ConfigArgs& args, bool config_required);

/// Loads the config (defaults when no file was given) with the overrides.
config::Config load_config(const ConfigArgs& args);

/// Resolves and applies device, precision and threads, and logs them with any
/// warning (a slow BLAS, bf16 without hardware support).
util::RuntimeInfo start_runtime(const config::Config& cfg);

/// Runs a command body, mapping library errors to exit codes with one line on
/// stderr.
int run_guarded(const std::function<int()>& body);

/// Registers each subcommand of the CLI; `on_run` receives the body to run.
using Runner = std::function<void(std::function<int()>)>;
void add_stage_commands(CLI::App& app, const Runner& on_run);
void add_inference_commands(CLI::App& app, const Runner& on_run);
void add_tokenizer_commands(CLI::App& app, const Runner& on_run);
void add_bench_command(CLI::App& app, const Runner& on_run);
void add_interop_commands(CLI::App& app, const Runner& on_run);
void add_serve_command(CLI::App& app, const Runner& on_run);
void add_launch_command(CLI::App& app, const Runner& on_run);

}  // namespace ulmfit::cli
