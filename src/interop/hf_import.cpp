// ulmfit import: a Hugging Face bert, distilbert or gpt2 directory becomes an `lm` run.
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <algorithm>

#include "ulmfit/interop/hugging_face.h"

#include "hf_layouts.h"
#include "ulmfit/nn/model_factory.h"
#include "ulmfit/pipeline/run_dir.h"
#include "ulmfit/text/tokenizer.h"
#include "ulmfit/util/error.h"
#include "ulmfit/util/files.h"
#include "ulmfit/util/log.h"

namespace ulmfit::interop {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

/// Checkpoint tensors (prefix stripped) in the toolkit's LanguageModel names.
/// Consumed entries are erased from `hf`, so what is left was not used.
struct NameMap {
  std::map<std::string, torch::Tensor> ours;
  std::map<std::string, std::string> source;  // our name -> checkpoint name(s), for messages
};

torch::Tensor take(io::TensorMap& hf, const std::string& name, const std::string& origin) {
  auto it = hf.find(name);
  if (it == hf.end()) throw CheckpointError(origin + ": tensor " + name + " is missing");
  auto t = std::move(it->second);
  hf.erase(it);
  return t;
}

NameMap map_tensors(io::TensorMap& hf, const Layout& layout, const std::string& origin) {
  NameMap m;
  for (const auto& entry : layout.tensors) {
    std::vector<torch::Tensor> parts;
    for (const auto& theirs : entry.hugging_face) parts.push_back(take(hf, theirs, origin));
    for (const auto& t : parts) {
      if (t.sizes() != parts.front().sizes()) {
        throw CheckpointError(origin + ": tensor " + entry.hugging_face.back() + " has shape " + c10::str(t.sizes()) +
                              " but " + entry.hugging_face.front() + " " + c10::str(parts.front().sizes()));
      }
    }
    const std::string ours = "encoder." + entry.toolkit;
    auto t = parts.size() == 1 ? parts.front() : torch::cat(parts, 0);
    if (entry.transposed) {
      if (t.dim() != 2) throw CheckpointError(origin + ": tensor " + entry.hugging_face.front() + " is not a matrix");
      t = t.t().contiguous();
    }
    m.ours[ours] = t;
    m.source[ours] = entry.hugging_face.front() + (parts.size() > 1 ? " (and its key, value)" : "");
  }
  // The LM head's output bias when the checkpoint has one (BertForMaskedLM).
  if (!layout.output_bias.empty() && hf.count(layout.output_bias)) {
    m.ours["decoder_bias"] = take(hf, layout.output_bias, origin);
    m.source["decoder_bias"] = layout.output_bias;
  }
  return m;
}

/// Rows reordered from the checkpoint's vocabulary to the toolkit's ids. The
/// special tokens the tokenizer added (GPT-2 has no pad, unk, eos or mask)
/// take the `added` rows, appended after the file's.
torch::Tensor to_toolkit_rows(const torch::Tensor& t, const text::Tokenizer& tok, const torch::Tensor& added) {
  const auto extended = added.size(0) > 0 ? torch::cat({t, added}, 0) : t;
  return extended.index_select(0, torch::tensor(tok.original_ids(), torch::kInt64));
}

json parse_config_json(const std::string& text, const std::string& origin) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw CheckpointError(origin + ": not valid JSON (" + e.what() + ")");
  }
  if (!j.is_object()) throw CheckpointError(origin + ": not a JSON object");
  return j;
}

}  // namespace

config::ModelConfig model_config_from_hugging_face(const std::string& text, const std::string& origin) {
  return model_config_from(parse_config_json(text, origin), origin);
}

ImportResult import_hugging_face(const ImportOptions& options) {
  const fs::path dir(options.from);
  if (!fs::is_directory(dir)) throw CheckpointError(options.from + ": not a directory");
  const auto config_path = dir / "config.json";
  if (!fs::is_regular_file(config_path)) {
    throw CheckpointError(options.from + ": no config.json (not a Hugging Face model directory)");
  }
  pipeline::RunDir::check_creatable(options.out, options.overwrite);
  const auto hf_config = parse_config_json(util::read_file(config_path), config_path.string());
  config::Config cfg;
  cfg.model = model_config_from(hf_config, config_path.string());
  const auto config_vocab = config_vocab_size(hf_config, config_path.string());
  const auto layout = layout_for(hf_config["model_type"].get<std::string>(), cfg.model.layers);

  const auto tokenizer = text::Tokenizer::load_hugging_face(options.from);
  io::TensorMap hf = io::read_checkpoint_dir(options.from);
  const std::string weights_origin =
      (dir / (fs::is_regular_file(dir / "model.safetensors") ? "model.safetensors" : "model.safetensors.index.json"))
          .string();
  // Task models (BertForMaskedLM, GPT2LMHeadModel) prefix the encoder ("bert.").
  io::TensorMap stripped;
  for (auto& [name, t] : hf) {
    const bool prefixed = name.rfind(layout.prefix, 0) == 0;
    stripped.emplace(prefixed ? name.substr(layout.prefix.size()) : name, std::move(t));
  }
  hf.swap(stripped);

  auto mapped = map_tensors(hf, layout, weights_origin);
  const std::string embedding_name = layout.tensors.front().hugging_face.front();
  const auto rows = mapped.ours.at("encoder.token_embedding.weight").size(0);
  if (rows != config_vocab) {
    throw CheckpointError(weights_origin + ": tensor " + embedding_name + " has " + std::to_string(rows) +
                          " rows but " + config_path.string() + " gives vocab_size " + std::to_string(config_vocab));
  }
  if (tokenizer.original_vocab_size() != rows) {
    throw CheckpointError(options.from + ": the tokenizer has " + std::to_string(tokenizer.original_vocab_size()) +
                          " tokens but the weights " + std::to_string(rows) + " embedding rows");
  }
  // Special tokens the tokenizer adds start from the mean embedding (as
  // transformers' resize_token_embeddings does), so their tied output logits
  // sit among the others instead of towering over or under them.
  const auto added = tokenizer.vocab_size() - rows;
  auto& embedding = mapped.ours["encoder.token_embedding.weight"];
  embedding = to_toolkit_rows(embedding, tokenizer, embedding.mean(0, true).expand({added, embedding.size(1)}));
  if (mapped.ours.count("decoder_bias")) {
    auto& bias = mapped.ours["decoder_bias"];
    bias = to_toolkit_rows(bias, tokenizer, torch::zeros({added}, bias.options()));
  }

  // Checkpoint tensors this layout knows but the toolkit's model has no place for.
  ImportResult result;
  for (const auto& [name, t] : hf) {
    if (!layout.known_unused(name)) {
      throw CheckpointError(weights_origin + ": tensor " + name + " is not part of a " + layout.model_type + " model");
    }
    result.unused.push_back(name);
  }

  auto model = nn::make_language_model(cfg.model, tokenizer.vocab_size());
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->named_parameters()) {
      auto it = mapped.ours.find(p.key());
      if (it == mapped.ours.end()) {
        if (p.key() == "decoder_bias") {  // no bias in the checkpoint's LM head (or no head): zero
          p.value().zero_();
          continue;
        }
        throw CheckpointError(weights_origin + ": no tensor for " + p.key());
      }
      if (it->second.sizes() != p.value().sizes()) {
        throw CheckpointError(weights_origin + ": tensor " + mapped.source[p.key()] + " has shape " +
                              c10::str(it->second.sizes()) + " but config.json implies " +
                              c10::str(p.value().sizes()));
      }
      p.value().copy_(it->second);
    }
  }

  pipeline::RunDir run = pipeline::RunDir::create(options.out, options.overwrite);
  run.write_config(cfg);
  tokenizer.save_into_run(run.path());
  pipeline::RunMeta meta;
  meta.stage = "import";
  meta.task = "lm";
  meta.parent = fs::absolute(dir).lexically_normal().string();
  meta.backbone = cfg.model.backbone;
  meta.vocab_size = tokenizer.vocab_size();
  meta.libtorch = TORCH_VERSION;
  meta.created = util::utc_now("%Y-%m-%dT%H:%M:%SZ");
  run.save_weights(*model, "model.pt");
  run.write_meta(meta);  // last: a run without meta.yaml is not a run

  result.run_dir = run.path();
  result.model_type = layout.model_type;
  for (const auto& p : model->parameters()) result.parameters += p.numel();
  return result;
}

}  // namespace ulmfit::interop
