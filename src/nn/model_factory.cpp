#include "ulmfit/nn/model_factory.h"

#include "ulmfit/nn/awd_lstm.h"
#include "ulmfit/text/tokenizer.h"
#include "ulmfit/util/error.h"

namespace ulmfit::nn {

void require_backbone(const config::Config& cfg) {
  if (cfg.model.backbone != "awd_lstm") {
    throw NotImplementedError(cfg.where("model.backbone") + ": '" + cfg.model.backbone +
                              "' is not implemented yet (awd_lstm is); nothing was written");
  }
}

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
  throw NotImplementedError("model.backbone '" + model.backbone + "' is not implemented yet (awd_lstm is)");
}

LanguageModel make_language_model(const config::ModelConfig& model, int64_t vocab_size) {
  return LanguageModel(make_backbone(model, vocab_size),
                       LanguageModelOptions().output_p(model.dropout.output * model.dropout.mult));
}

SequenceClassifier make_classifier(const config::ModelConfig& model, const config::TrainConfig& train,
                                   int64_t vocab_size, int64_t classes) {
  return SequenceClassifier(make_backbone(model, vocab_size),
                            SequenceClassifierOptions(classes)
                                .bptt(train.bptt)
                                .max_len(train.max_len)
                                .hidden({50})
                                .dropouts({model.dropout.output * model.dropout.mult, 0.1}));
}

}  // namespace ulmfit::nn
