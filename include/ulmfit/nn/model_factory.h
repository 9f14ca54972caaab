#pragma once
/// Builds models from the config: the backbone factory every stage uses.
///
///   auto lm  = make_language_model(cfg.model, tokenizer.vocab_size());
///   auto clf = make_classifier(cfg.model, cfg.train, vocab, classes);
#include "ulmfit/config/config.h"
#include "ulmfit/nn/heads.h"

namespace ulmfit::nn {

/// Throws NotImplementedError naming the key when model.backbone is not built
/// yet; stages call it before writing anything.
void require_backbone(const config::Config& cfg);

/// The backbone named by model.backbone, with dropouts scaled by dropout.mult.
/// Backbones not built yet throw NotImplementedError.
Backbone make_backbone(const config::ModelConfig& model, int64_t vocab_size);

LanguageModel make_language_model(const config::ModelConfig& model, int64_t vocab_size);

SequenceClassifier make_classifier(const config::ModelConfig& model, const config::TrainConfig& train,
                                   int64_t vocab_size, int64_t classes);

}  // namespace ulmfit::nn
