// import and export: Hugging Face model directories <-> run directories.
#include <iostream>
#include <memory>

#include "cli_common.h"
#include "ulmfit/interop/hugging_face.h"
#include "ulmfit/util/log.h"

namespace ulmfit::cli {

void add_interop_commands(CLI::App& app, const Runner& on_run) {
  auto args = std::make_shared<interop::ImportOptions>();
  auto* import_cmd = app.add_subcommand(
      "import", "Turn a Hugging Face model directory (BERT family) into a run that adapt, finetune and the rest take");
  import_cmd->add_option("--from", args->from, "Hugging Face directory: config.json, model.safetensors, tokenizer.json")
      ->required();
  import_cmd->add_option("--out", args->out, "Run directory to write")->required();
  import_cmd->add_flag("--overwrite", args->overwrite, "Replace a non-empty --out");
  import_cmd->callback([args, on_run] {
    on_run([args] {
      const auto r = interop::import_hugging_face(*args);
      std::string note = r.unused.empty() ? "" : "; not used: " + std::to_string(r.unused.size()) + " tensors (";
      for (std::size_t i = 0; i < r.unused.size() && i < 3; ++i) note += (i ? ", " : "") + r.unused[i];
      if (!r.unused.empty()) note += r.unused.size() > 3 ? ", ...)" : ")";
      log::info("import: " + args->from + " -> " + r.run_dir + " (" + r.model_type + ", " +
                std::to_string(r.parameters) + " parameters" + note + ")");
      std::cout << r.run_dir << "\n";
      return 0;
    });
  });

  auto export_args = std::make_shared<interop::ExportOptions>();
  auto* export_cmd = app.add_subcommand(
      "export", "Write a run that started from an imported BERT back as a Hugging Face BertModel directory");
  export_cmd->add_option("--model", export_args->model, "Run directory")->required();
  export_cmd->add_option("--out", export_args->out, "Hugging Face directory to write")->required();
  export_cmd->add_flag("--overwrite", export_args->overwrite, "Replace a non-empty --out");
  export_cmd->callback([export_args, on_run] {
    on_run([export_args] {
      const auto n = interop::export_hugging_face(*export_args);
      log::info("export: " + export_args->model + " -> " + export_args->out + " (" + std::to_string(n) + " tensors)");
      std::cout << export_args->out << "\n";
      return 0;
    });
  });
}

}  // namespace ulmfit::cli
