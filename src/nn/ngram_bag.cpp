#include "ulmfit/nn/ngram_bag.h"

#include "ulmfit/util/error.h"

namespace ulmfit::nn {

NGramBagImpl::NGramBagImpl(NGramBagOptions o) : options(o) {
  if (o.order() < 1 || o.order() > 5) throw ConfigError("model.ngram_order: must be 1 to 5");
  if (o.order() > 1 && o.buckets() < 1) throw ConfigError("model.ngram_buckets: must be at least 1");
  const int64_t rows = o.vocab_size() + (o.order() > 1 ? o.buckets() : 0);
  embedding = register_module("embedding", torch::nn::Embedding(rows, o.dim()));
  // fastText's initialisation: uniform in +-1/dim.
  torch::NoGradGuard no_grad;
  embedding->weight.uniform_(-1.0 / static_cast<double>(o.dim()), 1.0 / static_cast<double>(o.dim()));
}

torch::Tensor NGramBagImpl::ngram_rows(const torch::Tensor& tokens) const {
  const auto ids = tokens.to(torch::kLong);
  std::vector<torch::Tensor> rows{ids};
  // The hash of tokens t-n+1..t: a polynomial in 64-bit arithmetic (wrapping),
  // then its remainder by `buckets` (non-negative, as torch::remainder is).
  torch::Tensor hash = ids.clone();
  torch::Tensor shifted = ids;
  for (int64_t n = 2; n <= options.order(); ++n) {
    // The token n-1 places back; before the document's start, pad.
    shifted = torch::cat({torch::full({ids.size(0), 1}, options.pad_id(), ids.options()),
                          shifted.narrow(1, 0, ids.size(1) - 1)},
                         1);
    hash = hash * 1000003 + shifted * 7919 + n;
    rows.push_back(options.vocab_size() + torch::remainder(hash, options.buckets()));
  }
  return torch::stack(rows, 2);
}

torch::Tensor NGramBagImpl::forward(const torch::Tensor& tokens, RecurrentState& /*state*/) {
  return embedding->forward(ngram_rows(tokens)).sum(2);
}

}  // namespace ulmfit::nn
