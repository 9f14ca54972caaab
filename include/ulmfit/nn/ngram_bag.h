#pragma once
/// The n-grams baseline (fastText's classifier, Joulin et al. 2017): every
/// token and every hashed n-gram of up to `order` consecutive tokens has an
/// embedding row; a position's output is the sum of the rows of the n-grams
/// that end there, and the classifier averages them over the document and
/// applies one linear layer. Trains in seconds; what transfer has to beat.
///
/// With `tfidf`, each n-gram's row is weighted by its inverse document
/// frequency in the training documents (fit_to_documents), and the weights of
/// a document are divided by the L2 norm of its tf-idf vector, so the sum over
/// the document is the classic normalised tf-idf bag times the embedding: a
/// logistic regression on tf-idf features when the head is one linear layer,
/// which weighs rare, telling n-grams up and ubiquitous ones down.
///
///   auto bag = std::make_shared<NGramBagImpl>(NGramBagOptions(16000, 16).order(2).buckets(1 << 20));
///   RecurrentState none;
///   auto out = bag->forward(tokens, none);   // [batch, time, 16]
#include "ulmfit/nn/backbone.h"

namespace ulmfit::nn {

struct NGramBagOptions {
  NGramBagOptions(int64_t vocab_size, int64_t dim) : vocab_size_(vocab_size), dim_(dim) {}
  TORCH_ARG(int64_t, vocab_size);
  TORCH_ARG(int64_t, dim);
  TORCH_ARG(int64_t, order) = 2;          // longest n-gram; 1 = tokens only
  TORCH_ARG(int64_t, buckets) = 1 << 20;  // rows shared by all hashed n-grams of two or more tokens
  TORCH_ARG(int64_t, pad_id) = 0;         // what stands before a document's first token
  TORCH_ARG(bool, tfidf) = false;         // weight by idf and L2-normalise (the head sums)
};

class NGramBagImpl : public BackboneImpl {
 public:
  explicit NGramBagImpl(NGramBagOptions options);

  /// [batch, time, dim]: per position, the (weighted) sum of the rows of the
  /// n-grams ending there; pad positions weigh nothing under tfidf.
  torch::Tensor forward(const torch::Tensor& tokens, RecurrentState& state) override;
  /// Document frequencies of every row over the training documents, turned
  /// into smoothed idf = ln((1 + N) / (1 + df)) + 1 (scikit-learn's
  /// TfidfVectorizer formula). Nothing to do without tfidf.
  void fit_to_documents(std::size_t count, const std::function<torch::Tensor(std::size_t)>& document) override;
  /// The rows of the n-grams (of every order) ending at each position: [batch, time, order].
  torch::Tensor ngram_rows(const torch::Tensor& tokens) const;
  torch::Tensor embedding_weight() override { return embedding->weight; }
  int64_t output_size() const override { return options.dim(); }
  ParameterGroup embedding_group() override { return {embedding->weight}; }
  std::vector<ParameterGroup> block_groups() override { return {}; }
  bool carries_state() const override { return false; }

  NGramBagOptions options;
  torch::nn::Embedding embedding{nullptr};
  torch::Tensor idf;  // [rows] buffer (saved with the weights); ones until fitted
};

}  // namespace ulmfit::nn
