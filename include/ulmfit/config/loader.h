#pragma once
/// Loads, overrides, validates and prints configs.
///
///   auto cfg = load_config("configs/tiny-lm.yaml", {"train.bptt=16"});
///   std::cout << dump_config(cfg);
///
/// Unknown keys, wrong types and out-of-range values throw ConfigError with
/// "file:line:col: key.path: problem" ("--set key.path: problem" for overrides).
/// `${VAR}` and `${VAR:-default}` expand from the environment (ULMFIT_DATA
/// defaults to data/datasets under the current folder); relative paths are
/// taken relative to the config file's folder.
#include <string>
#include <vector>

#include "ulmfit/config/config.h"

namespace ulmfit::config {

/// Reads a YAML file; `overrides` are "key.path=value" strings applied on top.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});

/// The same from YAML text: `source` names it in errors, relative paths are
/// resolved against `base_dir`.
Config load_config_text(const std::string& yaml, const std::string& source,
                        const std::string& base_dir,
                        const std::vector<std::string>& overrides = {});

/// Defaults plus overrides, with no file.
Config default_config(const std::vector<std::string>& overrides = {});

/// The resolved config as YAML, one commented line per key; loading it again
/// gives the same config.
std::string dump_config(const Config& cfg);

/// "key.path = default  # comment" lines, for --help.
std::string describe_keys(const Config& cfg);

/// Expands ${VAR} and ${VAR:-default}; throws ConfigError naming the variable
/// when it is unset and has no default.
std::string expand_env(const std::string& text);

}  // namespace ulmfit::config
