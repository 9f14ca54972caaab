#pragma once
// Tiny corpora, models and fit options that train in a blink, shared by the
// training and resume tests.
#include <torch/torch.h>

#include "ulmfit/nn/awd_lstm.h"
#include "ulmfit/text/token_cache.h"
#include "ulmfit/train/learner.h"

namespace ulmfit {

/// Tiny corpora and models that train in a blink.
struct Tiny {
  text::TokenizedCorpus lm_corpus = text::TokenizedCorpus::from_documents({});
  text::TokenizedCorpus clf_corpus = text::TokenizedCorpus::from_documents({});

  Tiny() {
    std::vector<std::vector<int>> docs;
    std::vector<std::int32_t> labels;
    for (int d = 0; d < 8; ++d) {
      std::vector<int> doc;
      // Class 0 documents use tokens 5..9, class 1 tokens 10..14.
      for (int k = 0; k < 12; ++k) doc.push_back(5 + 5 * (d % 2) + (k + d) % 5);
      docs.push_back(doc);
      labels.push_back(d % 2);
    }
    clf_corpus = text::TokenizedCorpus::from_documents(docs, labels, {"a", "b"});
    lm_corpus = text::TokenizedCorpus::from_documents(docs);
  }

  static nn::Backbone backbone() {
    return std::make_shared<nn::AwdLstmImpl>(
        nn::AwdLstmOptions(20, 8, 16, 2).embed_p(0).input_p(0).weight_p(0).hidden_p(0));
  }
  /// With every AWD-LSTM dropout on, so training draws random numbers.
  static nn::Backbone dropout_backbone() {
    return std::make_shared<nn::AwdLstmImpl>(
        nn::AwdLstmOptions(20, 8, 16, 2).embed_p(0.1).input_p(0.2).weight_p(0.3).hidden_p(0.2));
  }
  static train::FitOptions fit(int epochs, double lr) {
    train::FitOptions o;
    o.epochs = epochs;
    o.lr = lr;
    o.schedule.name = "constant";
    o.optimizer.weight_decay = 0;
    return o;
  }
};

}  // namespace ulmfit
