// ulmfit export: a run with a Hugging Face BERT layout back to a BertModel directory.
#include <filesystem>
#include <nlohmann/json.hpp>

#include "ulmfit/interop/hugging_face.h"
#include "ulmfit/nn/heads.h"
#include "ulmfit/nn/model_factory.h"
#include "ulmfit/pipeline/run_dir.h"
#include "ulmfit/text/tokenizer.h"
#include "ulmfit/util/error.h"
#include "ulmfit/util/files.h"

namespace ulmfit::interop {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

void require_hugging_face_layout(const config::Config& cfg, const text::Tokenizer& tok, const std::string& run) {
  const auto& m = cfg.model;
  if (m.backbone != "bert" || m.norm != "post" || m.type_vocab_size <= 0) {
    throw CheckpointError(run + ": model.backbone " + m.backbone + " with norm " + m.norm +
                          " has no Hugging Face layout; export writes runs that started from `ulmfit import` "
                          "of a bert model");
  }
  if (std::string(tok.file_name()) != "tokenizer.json") {
    throw CheckpointError(run + ": has a SentencePiece tokenizer; export writes WordPiece (tokenizer.json) runs");
  }
}

json config_json(const config::ModelConfig& m, std::int64_t vocab, int pad_id) {
  return {{"architectures", {"BertModel"}},
          {"model_type", "bert"},
          {"vocab_size", vocab},
          {"hidden_size", m.emb_size},
          {"num_hidden_layers", m.layers},
          {"num_attention_heads", m.heads},
          {"intermediate_size", m.ffn_size > 0 ? m.ffn_size : 4 * m.emb_size},
          {"max_position_embeddings", m.max_len},
          {"type_vocab_size", m.type_vocab_size},
          {"layer_norm_eps", m.norm_eps},
          {"hidden_act", m.activation == "gelu_tanh" ? "gelu_new" : "gelu"},
          {"hidden_dropout_prob", m.dropout.hidden},
          {"attention_probs_dropout_prob", m.dropout.attention},
          {"position_embedding_type", "absolute"},
          {"pad_token_id", pad_id},
          {"initializer_range", 0.02},
          {"torch_dtype", "float32"}};
}

}  // namespace

std::size_t export_hugging_face(const ExportOptions& options) {
  auto run = pipeline::RunDir::open(options.model);
  const auto cfg = run.read_config();
  const auto tok = text::Tokenizer::load_from_run(options.model);
  require_hugging_face_layout(cfg, tok, options.model);
  pipeline::RunDir::check_creatable(options.out, options.overwrite);

  const std::int64_t vocab = tok.vocab_size();
  nn::Backbone encoder;
  torch::Tensor decoder_bias;
  if (run.meta().task == "lm") {
    auto lm = nn::make_language_model(cfg.model, vocab);
    run.load_weights(*lm, "model.pt");
    encoder = lm->encoder;
    decoder_bias = lm->decoder_bias;
  } else {
    encoder = nn::make_backbone(cfg.model, vocab);
    run.load_encoder_weights(*encoder, "model.pt");
  }
  std::map<std::string, torch::Tensor> ours;
  for (const auto& p : encoder->named_parameters()) ours[p.key()] = p.value().detach();

  // Toolkit row i is the tokenizer file's row original_id(i).
  const auto original_index = torch::tensor(tok.original_ids(), torch::kInt64);
  auto to_original_rows = [&](const torch::Tensor& t) { return torch::zeros_like(t).index_copy_(0, original_index, t); };

  io::TensorMap out;
  for (const auto& entry : bert_tensor_names(cfg.model.layers)) {
    auto t = ours.at(entry.toolkit);
    if (entry.toolkit == "token_embedding.weight") t = to_original_rows(t);
    const auto parts = t.chunk(static_cast<int64_t>(entry.hugging_face.size()), 0);
    for (std::size_t i = 0; i < entry.hugging_face.size(); ++i) out[entry.hugging_face[i]] = parts[i].contiguous();
  }
  if (decoder_bias.defined()) out[kMaskedLmBias] = to_original_rows(decoder_bias.detach());

  // Written into a fresh folder; RunDir::create gives the same refusal of a
  // non-empty --out as the stages (--overwrite to replace it).
  const auto dir = pipeline::RunDir::create(options.out, options.overwrite).path();
  io::write_safetensors((fs::path(dir) / "model.safetensors").string(), out, {{"format", "pt"}});
  util::write_file_atomic(fs::path(dir) / "config.json",
                          config_json(cfg.model, vocab, tok.original_id(text::SpecialIds::kPad)).dump(2) + "\n");
  util::write_file_atomic(fs::path(dir) / "tokenizer.json", tok.serialized());
  std::string vocab_txt;
  std::vector<int> by_original(static_cast<std::size_t>(vocab));
  for (int i = 0; i < vocab; ++i) by_original[static_cast<std::size_t>(tok.original_id(i))] = i;
  for (int id : by_original) vocab_txt += tok.piece(id) + "\n";
  util::write_file_atomic(fs::path(dir) / "vocab.txt", vocab_txt);
  const auto tj = json::parse(tok.serialized());
  const bool lower = tj.contains("normalizer") && tj["normalizer"].is_object() && tj["normalizer"].value("lowercase", true);
  const json tokenizer_config = {{"tokenizer_class", "BertTokenizer"}, {"do_lower_case", lower},
                                 {"model_max_length", cfg.model.max_len}, {"unk_token", "[UNK]"},
                                 {"sep_token", "[SEP]"}, {"pad_token", "[PAD]"}, {"cls_token", "[CLS]"},
                                 {"mask_token", "[MASK]"}};
  util::write_file_atomic(fs::path(dir) / "tokenizer_config.json", tokenizer_config.dump(2) + "\n");
  return out.size();
}

}  // namespace ulmfit::interop
