#include "ulmfit/nn/model_factory.h"

#include "ulmfit/nn/awd_lstm.h"
#include "ulmfit/nn/transformer.h"
#include "ulmfit/text/tokenizer.h"
#include "ulmfit/util/error.h"

namespace ulmfit::nn {

void check_architecture(const config::Config& cfg, bool language_model) {
  const auto& m = cfg.model;
  if (m.backbone == "awd_lstm") return;
  if (m.emb_size % m.heads != 0) {
    throw ConfigError(cfg.where("model.heads") + ": emb_size " + std::to_string(m.emb_size) +
                      " is not a multiple of " + std::to_string(m.heads) + " heads");
  }
  if (language_model && cfg.train.bptt > m.max_len) {
    throw ConfigError(cfg.where("train.bptt") + ": " + std::to_string(cfg.train.bptt) +
                      "-token windows exceed model.max_len " + std::to_string(m.max_len) + " of a " + m.backbone +
                      " backbone");
  }
}

bool is_masked_lm(const config::ModelConfig& model) { return model.backbone == "bert"; }

Backbone make_backbone(const config::ModelConfig& model, int64_t vocab_size) {
  const auto& d = model.dropout;
  if (model.backbone == "awd_lstm") {
    return std::make_shared<AwdLstmImpl>(AwdLstmOptions(vocab_size, model.emb_size, model.hidden_size, model.layers)
                                             .embed_p(d.embed * d.mult)
                                             .input_p(d.input * d.mult)
                                             .weight_p(d.weight * d.mult)
                                             .hidden_p(d.hidden * d.mult)
                                             .pad_id(text::SpecialIds::kPad));
  }
  return std::make_shared<TransformerImpl>(TransformerOptions(vocab_size, model.emb_size, model.layers, model.heads)
                                               .max_len(model.max_len)
                                               .causal(!is_masked_lm(model))
                                               .embed_p(d.embed * d.mult)
                                               .input_p(d.input * d.mult)
                                               .hidden_p(d.hidden * d.mult)
                                               .attention_p(d.attention * d.mult)
                                               .pad_id(text::SpecialIds::kPad)
                                               .ffn_size(model.ffn_size)
                                               .post_norm(model.norm == "post")
                                               .tanh_gelu(model.activation == "gelu_tanh")
                                               .norm_eps(model.norm_eps)
                                               .type_vocab_size(model.type_vocab_size));
}

LanguageModel make_language_model(const config::ModelConfig& model, int64_t vocab_size) {
  return LanguageModel(make_backbone(model, vocab_size),
                       LanguageModelOptions().output_p(model.dropout.output * model.dropout.mult));
}

SequenceClassifier make_classifier(const config::ModelConfig& model, const config::TrainConfig& train,
                                   int64_t vocab_size, int64_t classes) {
  // GPT style pools like AWD-LSTM ([last, max, mean]); BERT style reads its
  // first token (<s>, in [CLS]'s place) and the mean.
  return SequenceClassifier(make_backbone(model, vocab_size),
                            SequenceClassifierOptions(classes)
                                .bptt(train.bptt)
                                .max_len(train.max_len)
                                .hidden({50})
                                .dropouts({model.dropout.output * model.dropout.mult, 0.1})
                                .pooling(is_masked_lm(model) ? Pooling::kFirstMean : Pooling::kConcat)
                                .chunk_long_documents(train.long_documents == "chunk")
                                .pad_id(text::SpecialIds::kPad));
}

}  // namespace ulmfit::nn
