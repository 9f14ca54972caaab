// The bert, distilbert and gpt2 layouts: config.json fields and tensor names.
#include "hf_layouts.h"

#include "ulmfit/util/error.h"

namespace ulmfit::interop {
using nlohmann::json;

namespace {

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

struct Names {
  std::vector<TensorName> list;
  void add(const std::string& ours, std::vector<std::string> theirs, bool transposed = false) {
    list.push_back({ours, std::move(theirs), transposed});
  }
  void affine(const std::string& ours, const std::string& theirs, bool transposed = false) {
    add(ours + ".weight", {theirs + ".weight"}, transposed);
    add(ours + ".bias", {theirs + ".bias"});
  }
  /// Separate query, key and value projections into the toolkit's fused one.
  void qkv(const std::string& ours, const std::string& q, const std::string& k, const std::string& v) {
    for (const char* part : {"weight", "bias"}) {
      add(ours + "attention.qkv." + part, {q + "." + part, k + "." + part, v + "." + part});
    }
  }
};

std::vector<TensorName> bert_names(std::int64_t layers) {
  Names n;
  n.add("token_embedding.weight", {"embeddings.word_embeddings.weight"});
  n.add("position_embedding.weight", {"embeddings.position_embeddings.weight"});
  n.add("token_type_embedding.weight", {"embeddings.token_type_embeddings.weight"});
  n.affine("embedding_norm", "embeddings.LayerNorm");
  for (std::int64_t l = 0; l < layers; ++l) {
    const std::string theirs = "encoder.layer." + std::to_string(l) + ".";
    const std::string ours = "block" + std::to_string(l) + ".";
    const std::string self = theirs + "attention.self.";
    n.qkv(ours, self + "query", self + "key", self + "value");
    n.affine(ours + "attention.out", theirs + "attention.output.dense");
    n.affine(ours + "norm1", theirs + "attention.output.LayerNorm");
    n.affine(ours + "up", theirs + "intermediate.dense");
    n.affine(ours + "down", theirs + "output.dense");
    n.affine(ours + "norm2", theirs + "output.LayerNorm");
  }
  return n.list;
}

std::vector<TensorName> distilbert_names(std::int64_t layers) {
  Names n;
  n.add("token_embedding.weight", {"embeddings.word_embeddings.weight"});
  n.add("position_embedding.weight", {"embeddings.position_embeddings.weight"});
  n.affine("embedding_norm", "embeddings.LayerNorm");
  for (std::int64_t l = 0; l < layers; ++l) {
    const std::string theirs = "transformer.layer." + std::to_string(l) + ".";
    const std::string ours = "block" + std::to_string(l) + ".";
    const std::string att = theirs + "attention.";
    n.qkv(ours, att + "q_lin", att + "k_lin", att + "v_lin");
    n.affine(ours + "attention.out", att + "out_lin");
    n.affine(ours + "norm1", theirs + "sa_layer_norm");
    n.affine(ours + "up", theirs + "ffn.lin1");
    n.affine(ours + "down", theirs + "ffn.lin2");
    n.affine(ours + "norm2", theirs + "output_layer_norm");
  }
  return n.list;
}

std::vector<TensorName> gpt2_names(std::int64_t layers) {
  Names n;
  n.add("token_embedding.weight", {"wte.weight"});
  n.add("position_embedding.weight", {"wpe.weight"});
  for (std::int64_t l = 0; l < layers; ++l) {
    const std::string theirs = "h." + std::to_string(l) + ".";
    const std::string ours = "block" + std::to_string(l) + ".";
    // Conv1D: the weights are stored [in, out]; query, key and value are
    // already one projection, in the toolkit's order.
    n.affine(ours + "norm1", theirs + "ln_1");
    n.affine(ours + "attention.qkv", theirs + "attn.c_attn", true);
    n.affine(ours + "attention.out", theirs + "attn.c_proj", true);
    n.affine(ours + "norm2", theirs + "ln_2");
    n.affine(ours + "up", theirs + "mlp.c_fc", true);
    n.affine(ours + "down", theirs + "mlp.c_proj", true);
  }
  n.affine("final_norm", "ln_f");
  return n.list;
}

std::int64_t int_field(const json& j, const char* key, const std::string& origin) {
  if (!j.contains(key) || !j[key].is_number_integer() || j[key].get<std::int64_t>() <= 0) {
    throw CheckpointError(origin + ": " + key + " must be a positive integer");
  }
  return j[key].get<std::int64_t>();
}

double number_field(const json& j, const char* key, double fallback) {
  return j.contains(key) && j[key].is_number() ? j[key].get<double>() : fallback;
}

std::string activation_from(const json& j, const char* key, const std::string& fallback, const std::string& origin) {
  const std::string act = j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : fallback;
  if (act == "gelu") return "gelu";
  if (act == "gelu_new" || act == "gelu_pytorch_tanh") return "gelu_tanh";
  throw CheckpointError(origin + ": " + key + " " + act + " is not supported (gelu, gelu_new, gelu_pytorch_tanh)");
}

void refuse_true(const json& j, const char* key, const std::string& origin, const char* why) {
  if (j.contains(key) && j[key] == true) throw CheckpointError(origin + ": " + key + " true is not supported (" + why + ")");
}

void set_dropout(config::ModelConfig& m, double input, double hidden, double attention) {
  m.dropout.embed = 0;
  m.dropout.weight = 0;
  m.dropout.input = input;
  m.dropout.hidden = hidden;
  m.dropout.attention = attention;
  m.dropout.output = 0.1;
  m.dropout.mult = 1.0;
}

config::ModelConfig bert_config(const json& j, const std::string& origin) {
  if (j.contains("position_embedding_type") && j["position_embedding_type"] != "absolute") {
    throw CheckpointError(origin + ": position_embedding_type " + j["position_embedding_type"].dump() +
                          " is not supported (absolute is)");
  }
  refuse_true(j, "is_decoder", origin, "a BERT encoder is");
  config::ModelConfig m;
  m.backbone = "bert";
  m.emb_size = static_cast<int>(int_field(j, "hidden_size", origin));
  m.layers = static_cast<int>(int_field(j, "num_hidden_layers", origin));
  m.heads = static_cast<int>(int_field(j, "num_attention_heads", origin));
  m.max_len = static_cast<int>(int_field(j, "max_position_embeddings", origin));
  m.ffn_size = static_cast<int>(int_field(j, "intermediate_size", origin));
  m.type_vocab_size = static_cast<int>(j.contains("type_vocab_size") ? int_field(j, "type_vocab_size", origin) : 2);
  m.norm = "post";
  m.norm_eps = number_field(j, "layer_norm_eps", 1e-12);
  m.activation = activation_from(j, "hidden_act", "gelu", origin);
  const double hidden = number_field(j, "hidden_dropout_prob", 0.1);
  set_dropout(m, hidden, hidden, number_field(j, "attention_probs_dropout_prob", 0.1));
  return m;
}

config::ModelConfig distilbert_config(const json& j, const std::string& origin) {
  config::ModelConfig m;
  m.backbone = "bert";
  m.emb_size = static_cast<int>(int_field(j, "dim", origin));
  m.layers = static_cast<int>(int_field(j, "n_layers", origin));
  m.heads = static_cast<int>(int_field(j, "n_heads", origin));
  m.max_len = static_cast<int>(int_field(j, "max_position_embeddings", origin));
  m.ffn_size = static_cast<int>(int_field(j, "hidden_dim", origin));
  m.type_vocab_size = 0;  // DistilBERT dropped BERT's token types
  m.norm = "post";
  m.norm_eps = 1e-12;  // fixed in DistilBERT's code, not in its config
  m.activation = activation_from(j, "activation", "gelu", origin);
  const double hidden = number_field(j, "dropout", 0.1);
  set_dropout(m, hidden, hidden, number_field(j, "attention_dropout", 0.1));
  return m;
}

config::ModelConfig gpt2_config(const json& j, const std::string& origin) {
  refuse_true(j, "scale_attn_by_inverse_layer_idx", origin, "attention is scaled by 1/sqrt(head width) only");
  refuse_true(j, "reorder_and_upcast_attn", origin, "attention is computed the standard way");
  refuse_true(j, "add_cross_attention", origin, "a decoder without an encoder is");
  if (j.contains("scale_attn_weights") && j["scale_attn_weights"] == false) {
    throw CheckpointError(origin + ": scale_attn_weights false is not supported (attention is scaled)");
  }
  config::ModelConfig m;
  m.backbone = "transformer";
  m.emb_size = static_cast<int>(int_field(j, "n_embd", origin));
  m.layers = static_cast<int>(int_field(j, "n_layer", origin));
  m.heads = static_cast<int>(int_field(j, "n_head", origin));
  m.max_len = static_cast<int>(int_field(j, "n_positions", origin));
  m.ffn_size = j.contains("n_inner") && !j["n_inner"].is_null() ? static_cast<int>(int_field(j, "n_inner", origin))
                                                                 : 4 * m.emb_size;
  m.type_vocab_size = 0;
  m.norm = "pre";
  m.output_bias = false;  // the LM head is the tied embedding alone
  m.norm_eps = number_field(j, "layer_norm_epsilon", 1e-5);
  m.activation = activation_from(j, "activation_function", "gelu_new", origin);
  set_dropout(m, number_field(j, "embd_pdrop", 0.1), number_field(j, "resid_pdrop", 0.1),
              number_field(j, "attn_pdrop", 0.1));
  return m;
}

}  // namespace

Layout layout_for(const std::string& model_type, std::int64_t layers) {
  Layout l;
  l.model_type = model_type;
  if (model_type == "bert") {
    l.prefix = "bert.";
    l.tensors = bert_names(layers);
    l.output_bias = "cls.predictions.bias";
    l.classifier_head = {{"linear0.weight", "bert.pooler.dense.weight"}, {"linear0.bias", "bert.pooler.dense.bias"},
                         {"linear1.weight", "classifier.weight"}, {"linear1.bias", "classifier.bias"}};
    l.classifier_architecture = "BertForSequenceClassification";
    l.known_unused = [](const std::string& name) {
      for (const char* p : {"embeddings.position_ids", "pooler.", "cls.predictions.transform.",
                            "cls.predictions.decoder.", "cls.seq_relationship.", "classifier."}) {
        if (starts_with(name, p)) return true;
      }
      return false;
    };
  } else if (model_type == "distilbert") {
    l.prefix = "distilbert.";
    l.tensors = distilbert_names(layers);
    l.output_bias = "vocab_projector.bias";
    l.classifier_head = {{"linear0.weight", "pre_classifier.weight"}, {"linear0.bias", "pre_classifier.bias"},
                         {"linear1.weight", "classifier.weight"}, {"linear1.bias", "classifier.bias"}};
    l.classifier_architecture = "DistilBertForSequenceClassification";
    l.known_unused = [](const std::string& name) {
      return starts_with(name, "embeddings.position_ids") || starts_with(name, "vocab_transform.") ||
             starts_with(name, "vocab_layer_norm.") || name == "vocab_projector.weight" ||
             starts_with(name, "pre_classifier.") || starts_with(name, "classifier.");
    };
  } else if (model_type == "gpt2") {
    l.prefix = "transformer.";
    l.tensors = gpt2_names(layers);
    l.classifier_head = {{"linear0.weight", "score.weight"}};
    l.classifier_architecture = "GPT2ForSequenceClassification";
    l.known_unused = [](const std::string& name) {
      // The tied LM head, a classification head, and the causal-mask buffers
      // older versions saved.
      return name == "lm_head.weight" || name == "score.weight" || ends_with(name, ".attn.bias") ||
             ends_with(name, ".attn.masked_bias");
    };
  } else {
    throw CheckpointError("no Hugging Face layout for model_type " + model_type);
  }
  return l;
}

config::ModelConfig model_config_from(const json& j, const std::string& origin) {
  const std::string type = j.contains("model_type") && j["model_type"].is_string() ? j["model_type"].get<std::string>() : "";
  if (type.empty()) throw CheckpointError(origin + ": model_type is missing");
  config::ModelConfig m;
  if (type == "bert") {
    m = bert_config(j, origin);
  } else if (type == "distilbert") {
    m = distilbert_config(j, origin);
  } else if (type == "gpt2") {
    m = gpt2_config(j, origin);
  } else {
    throw CheckpointError(origin + ": model_type " + type +
                          " is not supported (bert and BERT-shaped models such as MiniLM, distilbert, gpt2)");
  }
  if (m.emb_size % m.heads != 0) {
    throw CheckpointError(origin + ": the width " + std::to_string(m.emb_size) + " is not a multiple of the " +
                          std::to_string(m.heads) + " attention heads");
  }
  m.hidden_size = m.ffn_size;
  return m;
}

std::int64_t config_vocab_size(const json& hf_config, const std::string& origin) {
  return int_field(hf_config, "vocab_size", origin);
}

json config_json_for(const std::string& type, const config::ModelConfig& m, std::int64_t vocab, int pad_id,
                     int bos_id) {
  const int ffn = m.ffn_size > 0 ? m.ffn_size : 4 * m.emb_size;
  const auto& d = m.dropout;
  if (type == "bert") {
    return {{"architectures", {"BertModel"}}, {"model_type", "bert"}, {"vocab_size", vocab},
            {"hidden_size", m.emb_size}, {"num_hidden_layers", m.layers}, {"num_attention_heads", m.heads},
            {"intermediate_size", ffn}, {"max_position_embeddings", m.max_len},
            {"type_vocab_size", m.type_vocab_size}, {"layer_norm_eps", m.norm_eps},
            {"hidden_act", m.activation == "gelu_tanh" ? "gelu_new" : "gelu"}, {"hidden_dropout_prob", d.hidden},
            {"attention_probs_dropout_prob", d.attention}, {"position_embedding_type", "absolute"},
            {"pad_token_id", pad_id}, {"initializer_range", 0.02}, {"torch_dtype", "float32"}};
  }
  if (type == "distilbert") {
    return {{"architectures", {"DistilBertModel"}}, {"model_type", "distilbert"}, {"vocab_size", vocab},
            {"dim", m.emb_size}, {"n_layers", m.layers}, {"n_heads", m.heads}, {"hidden_dim", ffn},
            {"max_position_embeddings", m.max_len}, {"sinusoidal_pos_embds", false},
            {"activation", m.activation == "gelu_tanh" ? "gelu_new" : "gelu"}, {"dropout", d.hidden},
            {"attention_dropout", d.attention}, {"pad_token_id", pad_id}, {"initializer_range", 0.02},
            {"torch_dtype", "float32"}};
  }
  return {{"architectures", {"GPT2LMHeadModel"}}, {"model_type", "gpt2"}, {"vocab_size", vocab},
          {"n_embd", m.emb_size}, {"n_layer", m.layers}, {"n_head", m.heads}, {"n_inner", ffn},
          {"n_positions", m.max_len}, {"layer_norm_epsilon", m.norm_eps},
          {"activation_function", m.activation == "gelu_tanh" ? "gelu_new" : "gelu"}, {"embd_pdrop", d.input},
          {"resid_pdrop", d.hidden}, {"attn_pdrop", d.attention}, {"bos_token_id", bos_id}, {"eos_token_id", bos_id},
          {"tie_word_embeddings", true}, {"initializer_range", 0.02}, {"torch_dtype", "float32"}};
}

}  // namespace ulmfit::interop
