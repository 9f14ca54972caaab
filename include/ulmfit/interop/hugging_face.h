#pragma once
/// Hugging Face model directories (bert and BERT-shaped models such as MiniLM,
/// distilbert, gpt2) -> run directories, and back. An imported model is an
/// ordinary `lm` run (config.yaml, meta.yaml, tokenizer.json, model.pt), so
/// adapt, finetune, evaluate, generate, lr-find and --resume take it as they
/// take the toolkit's own runs.
///
///   auto r = interop::import_hugging_face({"models/all-MiniLM-L6-v2", "runs/minilm", false});
///   // then: ulmfit finetune --config configs/imdb-minilm-classifier.yaml --from runs/minilm
#include <cstdint>
#include <string>
#include <vector>

#include "ulmfit/config/config.h"
#include "ulmfit/io/safetensors.h"

namespace ulmfit::interop {

struct ImportOptions {
  std::string from;        // the Hugging Face directory (config.json, weights, tokenizer)
  std::string out;         // the run directory to write
  bool overwrite = false;  // replace a non-empty `out`
};

struct ImportResult {
  std::string run_dir;
  std::string model_type;                // config.json's model_type
  std::int64_t parameters = 0;           // in the imported language model
  std::vector<std::string> unused;       // checkpoint tensors with no place here (BERT's pooler, say)
};

/// The model section of a run's config for a Hugging Face config.json.
/// CheckpointError naming the file and the field for a model_type or option
/// the toolkit does not support (relative positions, say).
config::ModelConfig model_config_from_hugging_face(const std::string& config_json_text, const std::string& origin);

/// Imports `options.from` into `options.out`. Everything is read and checked
/// before the run directory is created, so bad input (CheckpointError naming
/// the file and tensor or field) writes nothing.
ImportResult import_hugging_face(const ImportOptions& options);

struct ExportOptions {
  std::string model;       // a run directory: an imported BERT, or a run that started from one
  std::string out;         // the Hugging Face directory to write
  bool overwrite = false;  // replace a non-empty `out`
};

/// Writes a run's encoder (and an LM run's output bias, where the layout has
/// one) as a Hugging Face directory in the layout its model section has
/// (BertModel, DistilBertModel, GPT2LMHeadModel): config.json,
/// model.safetensors, tokenizer.json and the tokenizer's older files,
/// tokenizer_config.json. CheckpointError when the run's model has no Hugging
/// Face layout (AWD-LSTM, a SentencePiece tokenizer). Returns the tensors written.
std::size_t export_hugging_face(const ExportOptions& options);

}  // namespace ulmfit::interop
