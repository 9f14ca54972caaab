#include "ulmfit/nn/model_factory.h"

#include "ulmfit/nn/awd_lstm.h"
#include "ulmfit/nn/ngram_bag.h"
#include "ulmfit/nn/qrnn.h"
#include "ulmfit/nn/transformer.h"
#include "ulmfit/text/tokenizer.h"
#include "ulmfit/util/error.h"

namespace ulmfit::nn {

void check_architecture(const config::Config& cfg, bool language_model) {
  const auto& m = cfg.model;
  if (m.backbone == "ngrams") {
    if (language_model) {
      throw ConfigError(cfg.where("model.backbone") + ": ngrams is a classifier baseline with no language model; "
                        "use it with finetune");
    }
    return;
  }
  if (is_recurrent(m)) return;
  if (m.emb_size % m.heads != 0) {
    throw ConfigError(cfg.where("model.heads") + ": emb_size " + std::to_string(m.emb_size) +
                      " is not a multiple of " + std::to_string(m.heads) + " heads");
  }
  if (!language_model && m.pooling == "hugging_face" && hugging_face_layout(m).empty()) {
    throw ConfigError(cfg.where("model.pooling") + ": hugging_face needs a model with a Hugging Face layout (an "
                      "imported bert, distilbert or gpt2), not a " + m.backbone + " with norm " + m.norm);
  }
  if (language_model && cfg.train.bptt > m.max_len) {
    throw ConfigError(cfg.where("train.bptt") + ": " + std::to_string(cfg.train.bptt) +
                      "-token windows exceed model.max_len " + std::to_string(m.max_len) + " of a " + m.backbone +
                      " backbone");
  }
}

bool is_masked_lm(const config::ModelConfig& model) { return model.backbone == "bert"; }

bool is_recurrent(const config::ModelConfig& model) { return model.backbone == "awd_lstm" || model.backbone == "qrnn"; }

Backbone make_backbone(const config::ModelConfig& model, int64_t vocab_size) {
  const auto& d = model.dropout;
  if (model.backbone == "ngrams") {
    return std::make_shared<NGramBagImpl>(NGramBagOptions(vocab_size, model.emb_size)
                                              .order(model.ngram_order)
                                              .buckets(model.ngram_buckets)
                                              .tfidf(model.ngram_weighting == "tfidf")
                                              .pad_id(text::SpecialIds::kPad));
  }
  if (is_recurrent(model)) {
    const auto options = RecurrentOptions(vocab_size, model.emb_size, model.hidden_size, model.layers)
                             .embed_p(d.embed * d.mult)
                             .input_p(d.input * d.mult)
                             .weight_p(d.weight * d.mult)
                             .hidden_p(d.hidden * d.mult)
                             .pad_id(text::SpecialIds::kPad);
    if (model.backbone == "qrnn") return std::make_shared<QrnnImpl>(options);
    return std::make_shared<AwdLstmImpl>(options);
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
                       LanguageModelOptions().output_p(model.dropout.output * model.dropout.mult).bias(model.output_bias));
}

std::string hugging_face_layout(const config::ModelConfig& m) {
  if (m.backbone == "bert" && m.norm == "post") return m.type_vocab_size > 0 ? "bert" : "distilbert";
  if (m.backbone == "transformer" && m.norm == "pre" && m.type_vocab_size == 0) return "gpt2";
  return "";
}

SequenceClassifier make_classifier(const config::ModelConfig& model, const config::TrainConfig& train,
                                   int64_t vocab_size, int64_t classes) {
  const double head_p = model.dropout.output * model.dropout.mult;
  auto options = SequenceClassifierOptions(classes)
                     .bptt(train.bptt)
                     .max_len(train.max_len)
                     .chunk_long_documents(train.long_documents == "chunk")
                     .pad_id(text::SpecialIds::kPad);
  if (model.pooling == "hugging_face") {
    // The head transformers builds: BERT's pooler (dense + tanh on [CLS]),
    // DistilBERT's pre-classifier (dense + ReLU on [CLS]), each then dropout
    // and a linear layer; GPT-2's bias-free linear layer on the last token.
    const auto layout = hugging_face_layout(model);
    const int64_t width = model.emb_size;
    if (layout == "bert" || layout == "distilbert") {
      options.pooling(Pooling::kFirst).hidden({width}).dropouts({0.0, head_p}).batch_norm(false).tanh(layout == "bert");
    } else if (layout == "gpt2") {
      options.pooling(Pooling::kLast).hidden({}).dropouts({head_p}).batch_norm(false).final_bias(false);
    } else {
      throw ConfigError("model.pooling: hugging_face needs a model with a Hugging Face layout (an imported bert, "
                        "distilbert or gpt2), not a " + model.backbone + " with norm " + model.norm);
    }
    return SequenceClassifier(make_backbone(model, vocab_size), options);
  }
  if (model.backbone == "ngrams") {
    // fastText: the mean of the document's n-gram embeddings, one linear layer;
    // with tf-idf the bag has weighted and normalised each n-gram: their sum.
    options.pooling(model.ngram_weighting == "tfidf" ? Pooling::kSum : Pooling::kMean)
        .hidden({})
        .dropouts({head_p})
        .batch_norm(false);
    return SequenceClassifier(make_backbone(model, vocab_size), options);
  }
  // ULMFiT's head: BatchNorm, dropout, linear, ReLU, ... GPT style pools like
  // AWD-LSTM ([last, max, mean]); BERT style reads its first token (<s>, in
  // [CLS]'s place) and the mean.
  const bool first_mean = model.pooling == "first_mean" || (model.pooling == "auto" && is_masked_lm(model));
  options.hidden({50})
      .dropouts({head_p, 0.1})
      .pooling(first_mean ? Pooling::kFirstMean : Pooling::kConcat)
      .batch_norm(model.head_batch_norm);
  return SequenceClassifier(make_backbone(model, vocab_size), options);
}

}  // namespace ulmfit::nn
