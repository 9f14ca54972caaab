#pragma once
/// Builds models from the config: the backbone factory every stage uses.
///
///   check_architecture(cfg);            // before anything is written
///   auto lm  = make_language_model(cfg.model, tokenizer.vocab_size());
///   auto clf = make_classifier(cfg.model, cfg.train, vocab, classes);
#include "ulmfit/config/config.h"
#include "ulmfit/nn/heads.h"

namespace ulmfit::nn {

/// Throws ConfigError naming the key when the model section cannot be built
/// (emb_size not a multiple of heads, a hugging_face pooling without a
/// Hugging Face layout) or, for a Transformer language model,
/// when train.bptt exceeds model.max_len. Stages call it before writing anything.
void check_architecture(const config::Config& cfg, bool language_model);

/// True for backbones trained with BERT's masked-LM objective.
bool is_masked_lm(const config::ModelConfig& model);

/// AWD-LSTM and QRNN: state carried between windows and BPT3C chunks, random
/// window lengths, AR and TAR, hidden_size as the layers' width.
bool is_recurrent(const config::ModelConfig& model);

/// The Hugging Face model_type whose layout a model section has (bert,
/// distilbert, gpt2), or "" (AWD-LSTM, say): what export writes and what
/// model.pooling: hugging_face builds.
std::string hugging_face_layout(const config::ModelConfig& model);

/// The backbone named by model.backbone, with dropouts scaled by dropout.mult.
Backbone make_backbone(const config::ModelConfig& model, int64_t vocab_size);

LanguageModel make_language_model(const config::ModelConfig& model, int64_t vocab_size);

SequenceClassifier make_classifier(const config::ModelConfig& model, const config::TrainConfig& train,
                                   int64_t vocab_size, int64_t classes);

}  // namespace ulmfit::nn
