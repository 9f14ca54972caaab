// ulmfit: transfer learning for text, from one binary.
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <string>

#include "cli_common.h"
#include "ulmfit/util/allocator.h"
#include "ulmfit/util/cpu_load.h"
#include "ulmfit/util/error.h"

int main(int argc, char** argv) {
  using namespace ulmfit;
  const bool serving = argc > 1 && std::string(argv[1]) == "serve";
  // Two caches keep a compiled matrix-product kernel per shape: oneDNN's
  // (1,024 by default) and, above it, ideep's (LRU_CACHE_CAPACITY, 1,024 by
  // default, about 260 KB per entry for MiniLM's products). A server meets new
  // shapes with almost every batch, so under load (MiniLM, bf16) its resident
  // memory grew with both caches on (60-110 MB every 12 s at 64 connections),
  // and kept growing with oneDNN's off; heaptrack put the rest in ideep's
  // cache. oneDNN's goes; ideep's keeps 64 entries, enough for one batch's
  // products to be compiled once for all its layers. oneDNN reads its setting
  // when LibTorch loads, before main() can act, so only a new process image
  // sees it; ideep reads its own at the first product, and rides along.
  if (serving && (std::getenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY") == nullptr ||
                  std::getenv("LRU_CACHE_CAPACITY") == nullptr)) {
    ::setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "0", 0);
    ::setenv("LRU_CACHE_CAPACITY", "64", 0);
    ::execv("/proc/self/exe", argv);  // on failure: carry on with the caches
  }
  // Then: it may start the program again with OpenMP set to wait passively
  // (always for serve, whose HTTP threads share the cores with the model's).
  util::prepare_threading(argv, serving);
  util::keep_freed_memory_for_reuse();
  // Past a file-size limit a write should fail with EFBIG (a clear error, the
  // previous file kept) rather than kill the process with SIGXFSZ.
  std::signal(SIGXFSZ, SIG_IGN);
  CLI::App app{"ulmfit: ULMFiT and Transformer transfer learning for text, on LibTorch"};
  app.require_subcommand(0, 1);
  bool show_version = false;
  app.add_flag("--version", show_version, "Print version, LibTorch, device, threads and precision");

  std::function<int()> command;
  const cli::Runner on_run = [&command](std::function<int()> body) { command = std::move(body); };
  cli::add_stage_commands(app, on_run);
  cli::add_inference_commands(app, on_run);
  cli::add_tokenizer_commands(app, on_run);
  cli::add_bench_command(app, on_run);
  cli::add_interop_commands(app, on_run);
  cli::add_serve_command(app, on_run);
  cli::add_launch_command(app, on_run);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "error: " << e.what() << " (see --help)\n";
    return static_cast<int>(ExitCode::kBadInput);
  }

  if (show_version) {
    return cli::run_guarded([] {
      auto info = util::resolve_runtime("auto", "auto", 0);
      util::check_blas(info);
      std::cout << "ulmfit " << ULMFIT_VERSION << "\n" << util::describe_runtime(info) << "\n";
      for (const auto& w : info.warnings) std::cout << "warning: " << w << "\n";
      return 0;
    });
  }
  if (!command) {
    std::cerr << app.help() << "\n";
    return static_cast<int>(ExitCode::kBadInput);
  }
  return cli::run_guarded(command);
}
