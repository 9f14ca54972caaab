// libFuzzer target: arbitrary bytes as a YAML config. Every rejection must be
// one of ulmfit's typed errors (exit 2 in the CLI); anything else escaping,
// or a crash, is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "ulmfit/config/loader.h"
#include "ulmfit/util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string yaml(reinterpret_cast<const char*>(data), size);
  try {
    const auto cfg = ulmfit::config::load_config_text(yaml, "fuzz.yaml", "/tmp");
    // What loads must dump and load back to the same config.
    const auto again = ulmfit::config::load_config_text(ulmfit::config::dump_config(cfg), "dump.yaml", "/tmp");
    if (ulmfit::config::dump_config(again) != ulmfit::config::dump_config(cfg)) __builtin_trap();
  } catch (const ulmfit::Error&) {
  }
  return 0;
}
