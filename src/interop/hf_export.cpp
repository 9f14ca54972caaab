// ulmfit export: a run with a Hugging Face layout back to a Hugging Face model directory.
#include <filesystem>
#include <nlohmann/json.hpp>

#include "ulmfit/interop/hugging_face.h"

#include "hf_layouts.h"
#include "ulmfit/nn/heads.h"
#include "ulmfit/nn/model_factory.h"
#include "ulmfit/pipeline/run_dir.h"
#include "ulmfit/text/tokenizer.h"
#include "ulmfit/util/error.h"
#include "ulmfit/util/files.h"
#include "ulmfit/util/json_fields.h"
#include "ulmfit/util/log.h"

namespace ulmfit::interop {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

/// The run's Hugging Face model_type; CheckpointError when it has none.
std::string require_hugging_face_layout(const config::Config& cfg, const text::Tokenizer& tok, const std::string& run) {
  const auto& m = cfg.model;
  const auto type = nn::hugging_face_layout(m);
  if (type.empty()) {
    throw CheckpointError(run + ": model.backbone " + m.backbone + " with norm " + m.norm +
                          " has no Hugging Face layout; export writes runs that started from `ulmfit import` "
                          "of a bert, distilbert or gpt2 model");
  }
  if (std::string(tok.file_name()) != "tokenizer.json") {
    throw CheckpointError(run + ": has a SentencePiece tokenizer; export writes runs with a Hugging Face "
                          "tokenizer (tokenizer.json)");
  }
  return type;
}

/// The tokenizer files older loaders read beside tokenizer.json, and
/// tokenizer_config.json.
void write_tokenizer_files(const fs::path& dir, const std::string& type, const text::Tokenizer& tok, int max_len) {
  util::write_file_atomic(dir / "tokenizer.json", tok.serialized());
  const auto tj = json::parse(tok.serialized());
  json tokenizer_config;
  if (type == "gpt2") {
    const auto& model = tj.at("model");
    util::write_file_atomic(dir / "vocab.json", model.at("vocab").dump() + "\n");
    std::string merges = "#version: 0.2\n";
    for (const auto& m : model.at("merges")) {
      merges += (m.is_string() ? m.get<std::string>() : m[0].get<std::string>() + " " + m[1].get<std::string>()) + "\n";
    }
    util::write_file_atomic(dir / "merges.txt", merges);
    tokenizer_config = {{"tokenizer_class", "GPT2Tokenizer"}, {"model_max_length", max_len},
                        {"bos_token", "<|endoftext|>"}, {"eos_token", "<|endoftext|>"},
                        {"unk_token", "<|endoftext|>"}, {"add_prefix_space", false}};
  } else {
    std::string vocab_txt;
    const int n = tok.original_vocab_size();
    std::vector<int> by_original(static_cast<std::size_t>(n));
    for (int i = 0; i < tok.vocab_size(); ++i) by_original[static_cast<std::size_t>(tok.original_id(i))] = i;
    for (int id : by_original) vocab_txt += tok.piece(id) + "\n";
    util::write_file_atomic(dir / "vocab.txt", vocab_txt);
    const auto& normalizer = json_fields::member(tj, "normalizer");
    const bool lower =
        normalizer.is_object() && json_fields::boolean(normalizer, "lowercase", true, "tokenizer.json", "normalizer");
    tokenizer_config = {{"tokenizer_class", type == "bert" ? "BertTokenizer" : "DistilBertTokenizer"},
                        {"do_lower_case", lower}, {"model_max_length", max_len}, {"unk_token", "[UNK]"},
                        {"sep_token", "[SEP]"}, {"pad_token", "[PAD]"}, {"cls_token", "[CLS]"},
                        {"mask_token", "[MASK]"}};
  }
  util::write_file_atomic(dir / "tokenizer_config.json", tokenizer_config.dump(2) + "\n");
}

}  // namespace

std::size_t export_hugging_face(const ExportOptions& options) {
  auto run = pipeline::RunDir::open(options.model);
  const auto cfg = run.read_config();
  const auto tok = text::Tokenizer::load_from_run(options.model);
  const auto type = require_hugging_face_layout(cfg, tok, options.model);
  pipeline::RunDir::check_creatable(options.out, options.overwrite);

  const std::int64_t vocab = tok.vocab_size();
  nn::Backbone encoder;
  torch::Tensor decoder_bias;
  nn::PoolingClassifier head{nullptr};  // a classifier with Hugging Face's head
  const auto& labels = run.meta().labels;
  if (run.meta().task == "lm") {
    auto lm = nn::make_language_model(cfg.model, vocab);
    run.load_weights(*lm, "model.pt");
    encoder = lm->encoder;
    decoder_bias = lm->decoder_bias;
  } else if (cfg.model.pooling == "hugging_face") {
    auto clf = nn::make_classifier(cfg.model, cfg.train, vocab, static_cast<std::int64_t>(labels.size()));
    run.load_weights(*clf, "model.pt");
    encoder = clf->encoder;
    head = clf->head;
  } else {
    log::info(options.model + ": its ULMFiT head (model.pooling " + cfg.model.pooling +
              ") has no Hugging Face counterpart; exporting the fine-tuned encoder (model.pooling: hugging_face "
              "trains a head that exports)");
    encoder = nn::make_backbone(cfg.model, vocab);
    run.load_encoder_weights(*encoder, "model.pt");
  }
  std::map<std::string, torch::Tensor> ours;
  for (const auto& p : encoder->named_parameters()) ours[p.key()] = p.value().detach();

  // Toolkit row i is the tokenizer file's row original_id(i); rows of the
  // special tokens the toolkit added (GPT-2's pad, unk, eos, mask) stay behind.
  const std::int64_t file_vocab = tok.original_vocab_size();
  std::vector<std::int64_t> kept, kept_original;
  for (int i = 0; i < vocab; ++i) {
    if (tok.original_id(i) < file_vocab) {
      kept.push_back(i);
      kept_original.push_back(tok.original_id(i));
    }
  }
  const auto kept_index = torch::tensor(kept), original_index = torch::tensor(kept_original);
  auto to_original_rows = [&](const torch::Tensor& t) {
    auto sizes = t.sizes().vec();
    sizes[0] = file_vocab;
    return torch::zeros(sizes, t.options()).index_copy_(0, original_index, t.index_select(0, kept_index));
  };

  const auto layout = layout_for(type, cfg.model.layers);
  // A *ForSequenceClassification checkpoint names the encoder with its prefix.
  const std::string prefix = head ? layout.prefix : "";
  io::TensorMap out;
  for (const auto& entry : layout.tensors) {
    auto t = ours.at(entry.toolkit);
    if (entry.toolkit == "token_embedding.weight") t = to_original_rows(t);
    if (entry.transposed) t = t.t();
    const auto parts = t.chunk(static_cast<int64_t>(entry.hugging_face.size()), 0);
    for (std::size_t i = 0; i < entry.hugging_face.size(); ++i) {
      out[prefix + entry.hugging_face[i]] = parts[i].contiguous();
    }
  }
  if (head) {
    const auto params = head->named_parameters();
    for (const auto& [ours_name, theirs] : layout.classifier_head) out[theirs] = params[ours_name].detach().contiguous();
  }
  if (decoder_bias.defined()) {
    if (!layout.output_bias.empty()) {
      out[layout.output_bias] = to_original_rows(decoder_bias.detach());
    } else if (decoder_bias.abs().max().item<double>() > 0) {
      log::warn(options.model + ": the LM's output bias is not zero but " + type +
                     "'s head has none; it is left out of the export");
    }
  }

  // Written into a fresh folder; RunDir::create gives the same refusal of a
  // non-empty --out as the stages (--overwrite to replace it).
  const fs::path dir = pipeline::RunDir::create(options.out, options.overwrite).path();
  io::write_safetensors((dir / "model.safetensors").string(), out, {{"format", "pt"}});
  const int bos = tok.original_id(text::SpecialIds::kBos);
  auto config = config_json_for(type, cfg.model, file_vocab, tok.original_id(text::SpecialIds::kPad), bos);
  if (head) {
    config["architectures"] = {layout.classifier_architecture};
    json id2label = json::object(), label2id = json::object();
    for (std::size_t i = 0; i < labels.size(); ++i) {
      id2label[std::to_string(i)] = labels[i];
      label2id[labels[i]] = i;
    }
    config["id2label"] = id2label;
    config["label2id"] = label2id;
    // GPT-2 finds each row's last token by its padding id.
    if (type == "gpt2") config["pad_token_id"] = bos;
  }
  util::write_file_atomic(dir / "config.json", config.dump(2) + "\n");
  write_tokenizer_files(dir, type, tok, cfg.model.max_len);
  return out.size();
}

}  // namespace ulmfit::interop
