// serve: run directories behind an HTTP JSON API.
#include <memory>

#include "cli_common.h"
#include "ulmfit/serve/server.h"

namespace ulmfit::cli {

void add_serve_command(CLI::App& app, const Runner& on_run) {
  struct Args {
    std::vector<std::string> models;
    serve::ServeOptions options;
    std::string device = "auto", precision = "auto";
    int threads = 0;
  };
  auto args = std::make_shared<Args>();
  auto& o = args->options;
  auto* serve = app.add_subcommand("serve", "Serve classifiers and language models over HTTP (JSON API, batched)");
  serve->add_option("--model", args->models, "Run directory, or NAME=RUN; repeat for more models (the first is the default)")
      ->required();
  serve->add_option("--host", o.host, "Address to listen on")->capture_default_str();
  serve->add_option("--port", o.port, "Port; 0 = any free one (printed on stdout)")->capture_default_str();
  serve->add_flag("--public", o.public_host, "Allow a --host other than loopback (reachable from other machines)");
  serve->add_option("--threads", args->threads, "CPU threads for the models; 0 = every core other processes are not using")
      ->capture_default_str();
  serve->add_option("--http-threads", o.http_threads, "Connections served at once")->capture_default_str();
  serve->add_option("--max-batch", o.max_batch, "Documents per model batch")->capture_default_str();
  serve->add_option("--max-wait-ms", o.max_wait_ms, "How long a batch that is not full waits for more requests")
      ->capture_default_str();
  serve->add_option("--max-queue", o.limits.max_queue, "Documents waiting per model; past it: 503 with Retry-After")
      ->capture_default_str();
  serve->add_option("--max-body-bytes", o.limits.max_body_bytes, "Request body limit (413 past it)")->capture_default_str();
  serve->add_option("--max-texts", o.limits.max_texts, "Texts per /v1/classify request (413 past it)")->capture_default_str();
  serve->add_option("--max-text-bytes", o.limits.max_text_bytes, "Bytes per text or prompt (413 past it)")
      ->capture_default_str();
  serve->add_option("--max-generated-tokens", o.limits.max_generated_tokens, "Largest max_tokens of /v1/generate (413 past it)")
      ->capture_default_str();
  serve->add_option("--timeout-ms", o.limits.timeout_ms, "Per request, queued and running (504 past it)")->capture_default_str();
  serve->add_option("--device", args->device, "auto | cpu | cuda | cuda:N")->capture_default_str();
  serve->add_option("--precision", args->precision, "auto | fp32 | bf16 | fp16")->capture_default_str();
  serve->callback([args, on_run] {
    on_run([args] {
      for (const auto& m : args->models) args->options.models.push_back(serve::parse_model_argument(m));
      config::Config cfg;
      cfg.device = args->device;
      cfg.precision = args->precision;
      cfg.threads = args->threads;
      serve::serve(args->options, start_runtime(cfg));
      return 0;
    });
  });
}

}  // namespace ulmfit::cli
