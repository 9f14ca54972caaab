#include "cli_common.h"

#include <iostream>

#include "ulmfit/config/loader.h"
#include "ulmfit/util/error.h"
#include "ulmfit/util/log.h"

namespace ulmfit::cli {

void add_config_options(CLI::App* sub, ConfigArgs& args, bool config_required) {
  auto* opt = sub->add_option("--config", args.config_path, "YAML config file");
  if (config_required) opt->required();
  sub->add_option("--set", args.overrides, "Override a config key: key.path=value (repeatable)")
      ->take_all();
  sub->add_flag("--dump-config", args.dump_config, "Print the resolved config and exit");
  sub->footer("\nConfig keys and their defaults (set them in the file or with --set):\n" +
              config::describe_keys(config::Config{}));
}

config::Config load_config(const ConfigArgs& args) {
  if (args.config_path.empty()) return config::default_config(args.overrides);
  return config::load_config(args.config_path, args.overrides);
}

util::RuntimeInfo start_runtime(const config::Config& cfg) {
  util::RuntimeInfo info;
  try {
    info = util::resolve_runtime(cfg.device, cfg.precision, cfg.threads);
  } catch (const ConfigError& e) {
    // Name the file and line of the key that asked for it.
    const std::string what = e.what();
    const std::string key = what.substr(0, what.find(':'));
    throw ConfigError(cfg.where(key) + what.substr(key.size()));
  }
  util::apply_runtime(info);
  util::check_blas(info);
  log::info(util::describe_runtime(info));
  for (const auto& w : info.warnings) log::warn(w);
  return info;
}

int run_guarded(const std::function<int()>& body) {
  try {
    return body();
  } catch (const Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return static_cast<int>(e.exit_code());
  } catch (const std::bad_alloc&) {
    std::cerr << "error: out of memory\n";
    return static_cast<int>(ExitCode::kRuntime);
  } catch (const std::exception& e) {
    // LibTorch and other libraries report through their own exceptions; keep
    // the first line, never a stack trace.
    std::string message = e.what();
    message = message.substr(0, message.find('\n'));
    std::cerr << "error: " << message << "\n";
    return static_cast<int>(ExitCode::kRuntime);
  }
}

}  // namespace ulmfit::cli
