// bench: training and predict throughput of a config's shapes, as JSON.
#include <algorithm>
#include <iostream>
#include <memory>

#include "cli_common.h"
#include "ulmfit/config/loader.h"
#include "ulmfit/pipeline/bench.h"
#include "ulmfit/util/error.h"

namespace ulmfit::cli {

void add_bench_command(CLI::App& app, const Runner& on_run) {
  struct BenchArgs {
    ConfigArgs config;
    pipeline::BenchOptions options;
    std::vector<std::string> only;
  };
  auto args = std::make_shared<BenchArgs>();
  auto* sub = app.add_subcommand(
      "bench", "Throughput of the config's model and shapes on synthetic token ids (one JSON object on stdout)");
  add_config_options(sub, args->config, /*config_required=*/false);
  sub->add_option("--steps", args->options.steps, "Timed training steps")->capture_default_str();
  sub->add_option("--warmup", args->options.warmup, "Untimed steps first")->capture_default_str();
  sub->add_option("--doc-tokens", args->options.doc_tokens, "Classifier document length in tokens")
      ->capture_default_str();
  sub->add_option("--only", args->only, "Measure only these: lm, clf, predict (repeatable)")
      ->check(CLI::IsMember({"lm", "clf", "predict"}));
  sub->callback([args, on_run] {
    on_run([args] {
      const config::Config cfg = load_config(args->config);
      if (args->config.dump_config) {
        std::cout << config::dump_config(cfg);
        return 0;
      }
      auto options = args->options;
      if (!args->only.empty()) {
        auto wanted = [&](const char* what) {
          return std::find(args->only.begin(), args->only.end(), what) != args->only.end();
        };
        options.lm = wanted("lm");
        options.classifier = wanted("clf");
        options.predict = wanted("predict");
      }
      const auto result = pipeline::bench(cfg, start_runtime(cfg), options);
      std::cout << result.to_json() << "\n";
      return 0;
    });
  });
}

}  // namespace ulmfit::cli
