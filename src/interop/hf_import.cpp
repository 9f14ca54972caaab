// ulmfit import: a Hugging Face BERT-family directory becomes an `lm` run.
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <algorithm>

#include "ulmfit/interop/hugging_face.h"
#include "ulmfit/nn/model_factory.h"
#include "ulmfit/pipeline/run_dir.h"
#include "ulmfit/text/tokenizer.h"
#include "ulmfit/util/error.h"
#include "ulmfit/util/files.h"
#include "ulmfit/util/log.h"

namespace ulmfit::interop {
namespace fs = std::filesystem;
using nlohmann::json;

std::vector<TensorName> bert_tensor_names(int64_t layers) {
  std::vector<TensorName> names;
  auto add = [&](const std::string& ours, std::vector<std::string> theirs) { names.push_back({ours, std::move(theirs)}); };
  auto add_affine = [&](const std::string& ours, const std::string& theirs) {
    add(ours + ".weight", {theirs + ".weight"});
    add(ours + ".bias", {theirs + ".bias"});
  };
  add("token_embedding.weight", {"embeddings.word_embeddings.weight"});
  add("position_embedding.weight", {"embeddings.position_embeddings.weight"});
  add("token_type_embedding.weight", {"embeddings.token_type_embeddings.weight"});
  add_affine("embedding_norm", "embeddings.LayerNorm");
  for (int64_t l = 0; l < layers; ++l) {
    const std::string theirs = "encoder.layer." + std::to_string(l) + ".";
    const std::string ours = "block" + std::to_string(l) + ".";
    // Query, key and value are one fused projection here, stacked in that order.
    for (const char* part : {"weight", "bias"}) {
      std::vector<std::string> qkv;
      for (const char* proj : {"query", "key", "value"}) qkv.push_back(theirs + "attention.self." + proj + "." + part);
      add(ours + "attention.qkv." + part, qkv);
    }
    add_affine(ours + "attention.out", theirs + "attention.output.dense");
    add_affine(ours + "norm1", theirs + "attention.output.LayerNorm");
    add_affine(ours + "up", theirs + "intermediate.dense");
    add_affine(ours + "down", theirs + "output.dense");
    add_affine(ours + "norm2", theirs + "output.LayerNorm");
  }
  return names;
}

namespace {

std::int64_t int_field(const json& j, const char* key, const std::string& origin) {
  if (!j.contains(key) || !j[key].is_number_integer() || j[key].get<std::int64_t>() <= 0) {
    throw CheckpointError(origin + ": " + key + " must be a positive integer");
  }
  return j[key].get<std::int64_t>();
}

double prob_field(const json& j, const char* key, double fallback) {
  return j.contains(key) && j[key].is_number() ? j[key].get<double>() : fallback;
}

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

NameMap map_bert(io::TensorMap& hf, int64_t layers, const std::string& origin) {
  NameMap m;
  for (const auto& entry : bert_tensor_names(layers)) {
    std::vector<torch::Tensor> parts;
    for (const auto& theirs : entry.hugging_face) parts.push_back(take(hf, theirs, origin));
    for (const auto& t : parts) {
      if (t.sizes() != parts.front().sizes()) {
        throw CheckpointError(origin + ": tensor " + entry.hugging_face.back() + " has shape " + c10::str(t.sizes()) +
                              " but " + entry.hugging_face.front() + " " + c10::str(parts.front().sizes()));
      }
    }
    const std::string ours = "encoder." + entry.toolkit;
    m.ours[ours] = parts.size() == 1 ? parts.front() : torch::cat(parts, 0);
    m.source[ours] = entry.hugging_face.front() + (parts.size() > 1 ? " (and its key, value)" : "");
  }
  // The masked-LM head's output bias when the checkpoint has one (BertForMaskedLM).
  if (hf.count(kMaskedLmBias)) {
    m.ours["decoder_bias"] = take(hf, kMaskedLmBias, origin);
    m.source["decoder_bias"] = kMaskedLmBias;
  }
  return m;
}

/// Rows reordered from the checkpoint's vocabulary to the toolkit's ids.
torch::Tensor to_toolkit_rows(const torch::Tensor& t, const text::Tokenizer& tok) {
  return t.index_select(0, torch::tensor(tok.original_ids(), torch::kInt64));
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

config::ModelConfig model_config_from(const json& j, const std::string& origin) {
  const std::string type = j.contains("model_type") && j["model_type"].is_string() ? j["model_type"].get<std::string>() : "";
  if (type.empty()) throw CheckpointError(origin + ": model_type is missing");
  if (type != "bert") {
    const bool planned = type == "distilbert" || type == "gpt2";
    throw CheckpointError(origin + ": model_type " + type + " is not supported" +
                          (planned ? " yet" : "") + " (supported: bert, and BERT-shaped models such as MiniLM)");
  }
  if (j.contains("position_embedding_type") && j["position_embedding_type"] != "absolute") {
    throw CheckpointError(origin + ": position_embedding_type " + j["position_embedding_type"].dump() +
                          " is not supported (absolute is)");
  }
  if (j.contains("is_decoder") && j["is_decoder"] == true) {
    throw CheckpointError(origin + ": is_decoder true is not supported (a BERT encoder is)");
  }
  config::ModelConfig m;
  m.backbone = "bert";
  m.emb_size = static_cast<int>(int_field(j, "hidden_size", origin));
  m.layers = static_cast<int>(int_field(j, "num_hidden_layers", origin));
  m.heads = static_cast<int>(int_field(j, "num_attention_heads", origin));
  m.max_len = static_cast<int>(int_field(j, "max_position_embeddings", origin));
  m.ffn_size = static_cast<int>(int_field(j, "intermediate_size", origin));
  m.type_vocab_size = static_cast<int>(j.contains("type_vocab_size") ? int_field(j, "type_vocab_size", origin) : 2);
  m.norm = "post";
  m.norm_eps = prob_field(j, "layer_norm_eps", 1e-12);
  const std::string act = j.value("hidden_act", std::string("gelu"));
  if (act == "gelu") {
    m.activation = "gelu";
  } else if (act == "gelu_new" || act == "gelu_pytorch_tanh") {
    m.activation = "gelu_tanh";
  } else {
    throw CheckpointError(origin + ": hidden_act " + act + " is not supported (gelu, gelu_new, gelu_pytorch_tanh)");
  }
  if (m.emb_size % m.heads != 0) {
    throw CheckpointError(origin + ": hidden_size " + std::to_string(m.emb_size) + " is not a multiple of " +
                          "num_attention_heads " + std::to_string(m.heads));
  }
  m.hidden_size = m.ffn_size;
  m.dropout.embed = 0;
  m.dropout.weight = 0;
  m.dropout.input = prob_field(j, "hidden_dropout_prob", 0.1);
  m.dropout.hidden = prob_field(j, "hidden_dropout_prob", 0.1);
  m.dropout.attention = prob_field(j, "attention_probs_dropout_prob", 0.1);
  m.dropout.output = 0.1;
  m.dropout.mult = 1.0;
  return m;
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
  const auto config_vocab = int_field(hf_config, "vocab_size", config_path.string());

  const auto tokenizer = text::Tokenizer::load_hugging_face(options.from);
  io::TensorMap hf = io::read_checkpoint_dir(options.from);
  const std::string weights_origin =
      (dir / (fs::is_regular_file(dir / "model.safetensors") ? "model.safetensors" : "model.safetensors.index.json"))
          .string();
  // BertForMaskedLM and friends prefix the encoder with "bert.".
  io::TensorMap stripped;
  for (auto& [name, t] : hf) stripped.emplace(name.rfind("bert.", 0) == 0 ? name.substr(5) : name, std::move(t));
  hf.swap(stripped);

  auto mapped = map_bert(hf, cfg.model.layers, weights_origin);
  const auto rows = mapped.ours.at("encoder.token_embedding.weight").size(0);
  if (rows != config_vocab) {
    throw CheckpointError(weights_origin + ": tensor embeddings.word_embeddings.weight has " + std::to_string(rows) +
                          " rows but " + config_path.string() + " gives vocab_size " + std::to_string(config_vocab));
  }
  if (tokenizer.vocab_size() != rows) {
    throw CheckpointError(options.from + ": the tokenizer has " + std::to_string(tokenizer.vocab_size()) +
                          " tokens but the weights " + std::to_string(rows) + " embedding rows");
  }
  mapped.ours["encoder.token_embedding.weight"] = to_toolkit_rows(mapped.ours["encoder.token_embedding.weight"], tokenizer);
  if (mapped.ours.count("decoder_bias")) {
    mapped.ours["decoder_bias"] = to_toolkit_rows(mapped.ours["decoder_bias"], tokenizer);
  }

  // Checkpoint tensors this layout knows but the toolkit's model has no place for.
  ImportResult result;
  static const char* kKnownUnused[] = {"embeddings.position_ids", "pooler.", "cls.predictions.transform.",
                                       "cls.predictions.decoder.", "cls.seq_relationship."};
  for (const auto& [name, t] : hf) {
    const bool known = std::any_of(std::begin(kKnownUnused), std::end(kKnownUnused),
                                   [&](const char* p) { return name.rfind(p, 0) == 0; });
    if (!known) throw CheckpointError(weights_origin + ": tensor " + name + " is not part of a " + "bert model");
    result.unused.push_back(name);
  }

  auto model = nn::make_language_model(cfg.model, rows);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->named_parameters()) {
      auto it = mapped.ours.find(p.key());
      if (it == mapped.ours.end()) {
        if (p.key() == "decoder_bias") continue;  // no masked-LM head in the checkpoint: starts at zero
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
  meta.vocab_size = rows;
  meta.libtorch = TORCH_VERSION;
  meta.created = util::utc_now("%Y-%m-%dT%H:%M:%SZ");
  run.save_weights(*model, "model.pt");
  run.write_meta(meta);  // last: a run without meta.yaml is not a run

  result.run_dir = run.path();
  result.model_type = "bert";
  for (const auto& p : model->parameters()) result.parameters += p.numel();
  return result;
}

}  // namespace ulmfit::interop
