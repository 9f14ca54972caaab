#pragma once
/// Models built on a backbone: a language model with a decoder tied to the
/// embedding, and a classifier that reads long documents in BPT3C chunks and
/// pools them (masked concat pooling) into a small feed-forward head.
///
///   LanguageModel lm(backbone, LanguageModelOptions().output_p(0.1));
///   auto out = lm->forward(tokens, state);        // out.logits [B, T, vocab]
///
///   SequenceClassifier clf(backbone, SequenceClassifierOptions(2).bptt(72).max_len(1440));
///   auto logits = clf->forward(tokens, mask);     // [B, 2]
#include <functional>

#include "ulmfit/nn/backbone.h"
#include "ulmfit/nn/dropout.h"

namespace ulmfit::nn {

struct LanguageModelOptions {
  TORCH_ARG(double, output_p) = 0.1;
  /// false: the decoder's bias stays zero and out of the layer groups (GPT-2's
  /// head has none, so an export keeps what was trained).
  TORCH_ARG(bool, bias) = true;
};

struct LanguageModelOutput {
  torch::Tensor logits;   // [batch, time, vocab]
  torch::Tensor raw;      // backbone output before output dropout (TAR reads it)
  torch::Tensor dropped;  // after output dropout (AR reads it)
};

class LanguageModelImpl : public torch::nn::Module {
 public:
  LanguageModelImpl(Backbone backbone, LanguageModelOptions options);
  LanguageModelOutput forward(const torch::Tensor& tokens, RecurrentState& state);
  /// [block groups..., embedding + decoder]: the recipe's LM layer groups.
  std::vector<ParameterGroup> layer_groups();

  LanguageModelOptions options;
  Backbone encoder;
  RNNDropout output_dropout{nullptr};
  torch::Tensor decoder_bias;
};
TORCH_MODULE(LanguageModel);

/// [last, max, mean] over the positions where mask is true: [batch, 3 * features].
/// Outputs at masked-out positions never reach the result.
torch::Tensor masked_concat_pool(const torch::Tensor& outputs, const torch::Tensor& mask);

/// [first, mean] over the positions where mask is true: [batch, 2 * features]
/// (BERT style: the first real token is <s>, which plays [CLS]).
torch::Tensor masked_first_mean_pool(const torch::Tensor& outputs, const torch::Tensor& mask);

/// The output at the first (last) position where mask is true: [batch, features].
torch::Tensor masked_first_pool(const torch::Tensor& outputs, const torch::Tensor& mask);
torch::Tensor masked_last_pool(const torch::Tensor& outputs, const torch::Tensor& mask);

/// How a classifier pools a document's outputs into one vector.
enum class Pooling { kConcat, kFirstMean, kFirst, kLast, kMean, kSum };

struct PoolingClassifierOptions {
  PoolingClassifierOptions(int64_t features, int64_t classes) : features_(features), classes_(classes) {}
  TORCH_ARG(int64_t, features);   // backbone output width (pooled: 3x, or 2x for first-mean)
  TORCH_ARG(int64_t, classes);
  TORCH_ARG(Pooling, pooling) = Pooling::kConcat;
  TORCH_ARG(std::vector<int64_t>, hidden) = std::vector<int64_t>{50};
  /// Dropout before each linear layer (one more than `hidden`).
  TORCH_ARG(std::vector<double>, dropouts) = (std::vector<double>{0.1, 0.1});
  /// Off, with tanh and no final bias as needed, the head is a Hugging Face
  /// *ForSequenceClassification's (BERT: first token, dense, tanh, dropout,
  /// linear; GPT-2: last token, linear without bias).
  TORCH_ARG(bool, batch_norm) = true;   // BatchNorm before each linear layer
  TORCH_ARG(bool, tanh) = false;        // between linear layers: tanh, else ReLU
  TORCH_ARG(bool, final_bias) = true;   // the last linear layer's bias
};

/// Pooling, then [BatchNorm ->] Dropout -> Linear blocks with ReLU (or tanh) between.
/// A sum over every process of a data-parallel group that autograd passes
/// through (dist::differentiable_all_reduce_sum); nn itself knows no ranks.
using CrossProcessSum = std::function<torch::Tensor(const torch::Tensor&)>;

class PoolingClassifierImpl : public torch::nn::Module {
 public:
  explicit PoolingClassifierImpl(PoolingClassifierOptions options);
  torch::Tensor forward(const torch::Tensor& outputs, const torch::Tensor& mask);
  /// In training, BatchNorm's statistics then come from the global batch
  /// (every rank's share together, as SyncBatchNorm does), so data-parallel
  /// ranks train the head like one process; the weights and buffers keep
  /// their names. Evaluation uses the running statistics either way.
  void synchronise_batch_norm(CrossProcessSum sum) { cross_process_sum_ = std::move(sum); }

  PoolingClassifierOptions options;
  std::vector<torch::nn::BatchNorm1d> norms;
  std::vector<BatchDropout> dropouts;
  std::vector<torch::nn::Linear> linears;

 private:
  CrossProcessSum cross_process_sum_;
};
TORCH_MODULE(PoolingClassifier);

struct SequenceClassifierOptions {
  explicit SequenceClassifierOptions(int64_t classes) : classes_(classes) {}
  TORCH_ARG(int64_t, classes);
  TORCH_ARG(int64_t, bptt) = 72;      // chunk length fed to the backbone
  TORCH_ARG(int64_t, max_len) = 1440; // trailing tokens whose outputs are kept
  TORCH_ARG(std::vector<int64_t>, hidden) = std::vector<int64_t>{50};
  TORCH_ARG(std::vector<double>, dropouts) = (std::vector<double>{0.4, 0.1});
  TORCH_ARG(Pooling, pooling) = Pooling::kConcat;
  TORCH_ARG(bool, batch_norm) = true;  // see PoolingClassifierOptions
  TORCH_ARG(bool, tanh) = false;
  TORCH_ARG(bool, final_bias) = true;
  /// Backbones without carried state (Transformers): false reads the first
  /// max_context() tokens of a document; true reads its first `max_len` tokens
  /// in independent max_context()-token chunks and pools over all of them.
  TORCH_ARG(bool, chunk_long_documents) = false;
  TORCH_ARG(int64_t, pad_id) = 0;  // what fills a gathered document's tail
};

/// BPT3C: the document goes through the backbone in chunks of `bptt` tokens
/// with the state carried over; only chunks within the last `max_len` tokens
/// keep their outputs and gradients, so memory does not grow with length.
/// A row's state stays zero until its first real token, so leading padding
/// does not change what a document is encoded to. Backbones that carry no
/// state (Transformers) read the document's head instead, truncated or in
/// chunks (see SequenceClassifierOptions::chunk_long_documents).
class SequenceClassifierImpl : public torch::nn::Module {
 public:
  SequenceClassifierImpl(Backbone backbone, SequenceClassifierOptions options);
  /// tokens, mask [batch, time] -> logits [batch, classes].
  torch::Tensor forward(const torch::Tensor& tokens, const torch::Tensor& mask);
  /// The backbone's outputs and mask over the kept tail (for tests and pooling).
  std::pair<torch::Tensor, torch::Tensor> encode(const torch::Tensor& tokens, const torch::Tensor& mask);
  /// [embedding][block groups...][head].
  std::vector<ParameterGroup> layer_groups();
  /// The most tokens of one document the backbone reads (a Transformer's
  /// head of the document; BPT3C reads all, but this many keep outputs).
  int64_t tokens_read() const;

  SequenceClassifierOptions options;
  Backbone encoder;
  PoolingClassifier head{nullptr};

 private:
  /// Recurrent backbones: the whole document in `bptt` chunks, state carried.
  std::pair<torch::Tensor, torch::Tensor> encode_bpt3c(const torch::Tensor& tokens, const torch::Tensor& mask);
  /// Stateless backbones: the document's first tokens, truncated or in chunks.
  std::pair<torch::Tensor, torch::Tensor> encode_leading_tokens(const torch::Tensor& tokens, const torch::Tensor& mask);
};
TORCH_MODULE(SequenceClassifier);

}  // namespace ulmfit::nn
