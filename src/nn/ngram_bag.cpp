#include "ulmfit/nn/ngram_bag.h"

#include "ulmfit/util/error.h"

namespace ulmfit::nn {

NGramBagImpl::NGramBagImpl(NGramBagOptions o) : options(o) {
  if (o.order() < 1 || o.order() > 5) throw ConfigError("model.ngram_order: must be 1 to 5");
  if (o.order() > 1 && o.buckets() < 1) throw ConfigError("model.ngram_buckets: must be at least 1");
  const int64_t rows = o.vocab_size() + (o.order() > 1 ? o.buckets() : 0);
  embedding = register_module("embedding", torch::nn::Embedding(rows, o.dim()));
  if (o.tfidf()) idf = register_buffer("idf", torch::ones({rows}));
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

void NGramBagImpl::fit_to_documents(std::size_t count, const std::function<torch::Tensor(std::size_t)>& document) {
  if (!options.tfidf() || count == 0) return;
  torch::NoGradGuard no_grad;
  auto df = torch::zeros({idf.size(0)}, torch::kFloat);
  for (std::size_t i = 0; i < count; ++i) {
    const auto doc = document(i).view({1, -1});
    if (doc.numel() == 0) continue;
    const auto present = std::get<0>(torch::_unique2(ngram_rows(doc).flatten()));
    df.index_add_(0, present, torch::ones({present.size(0)}));
  }
  const double n = static_cast<double>(count);
  idf.copy_(((1.0 + n) / (1.0 + df)).log_() + 1.0);
}

torch::Tensor NGramBagImpl::forward(const torch::Tensor& tokens, RecurrentState& /*state*/) {
  const auto rows = ngram_rows(tokens);             // [batch, time, order]
  const auto vectors = embedding->forward(rows);    // [batch, time, order, dim]
  if (!options.tfidf()) return vectors.sum(2);
  // Weights: idf where there is a token, 0 on padding.
  const auto real = (tokens != options.pad_id()).unsqueeze(2);  // [batch, time, 1]
  const auto weights = idf.index_select(0, rows.flatten()).view(rows.sizes()) * real;
  // A document's tf-idf norm: sqrt(sum over distinct rows of (count x idf)^2).
  // Count distinct (document, row) pairs by making the key unique per document.
  torch::Tensor norms;
  {
    torch::NoGradGuard no_grad;
    const int64_t batch = tokens.size(0), n_rows = idf.size(0);
    const auto doc_of = torch::arange(batch, rows.options()).view({-1, 1, 1}).expand_as(rows);
    const auto keys = (doc_of * n_rows + rows).masked_select(real.expand_as(rows));
    const auto [unique_keys, inverse, counts] = torch::_unique2(keys, /*sorted=*/false, false, /*return_counts=*/true);
    const auto weighted = counts.to(idf.dtype()) * idf.index_select(0, torch::remainder(unique_keys, n_rows));
    norms = torch::zeros({batch}, idf.options())
                .index_add_(0, torch::div(unique_keys, n_rows, "floor"), weighted * weighted)
                .sqrt_()
                .clamp_min_(1e-12);
  }
  return (vectors * (weights / norms.view({-1, 1, 1})).unsqueeze(-1)).sum(2);
}

}  // namespace ulmfit::nn
