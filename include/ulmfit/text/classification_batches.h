#pragma once
/// Classification batches with sort-ish bucketing: for training, documents are
/// shuffled, sorted by length within chunks of `chunk_batches` batches, cut
/// into batches and the batches shuffled, so padding stays small; for
/// evaluation they are sorted by length (the original indices come along so
/// outputs can be put back in input order). Each document is prefixed with <s>.
/// Padding goes first by default, whole `pad_chunk`-token blocks before the
/// text and the rest after, so a BPT3C encoder can skip all-pad chunks.
///
///   ClassificationBatches batches(corpus, {.batch_size = 32, .shuffle = true, .seed = 1});
///   batches.start_epoch(0);
///   for (std::size_t i = 0; i < batches.num_batches(); ++i) step(batches.batch(i));
#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "ulmfit/text/token_cache.h"

namespace ulmfit::text {

struct ClassificationBatchOptions {
  int batch_size = 32;
  bool shuffle = false;      // training order (sort-ish) vs evaluation order (sorted)
  std::uint64_t seed = 0;
  int chunk_batches = 50;    // batches per sorted chunk when shuffling
  bool pad_first = true;
  int pad_chunk = 72;        // with pad_first: padding before the text in whole blocks
  std::size_t max_tokens = 0;  // keep only the last this many tokens; 0 = all
  bool drop_last = false;    // with shuffle: only full batches (a random remainder sits out each epoch)
  // Evaluation order only: at most this many positions (documents x the
  // longest one's width, a width counted up to `width_cap`) per batch, and
  // at most batch_size documents; 0 = batch_size documents whatever their
  // lengths. Long documents then go in small batches and short ones in wide.
  std::size_t batch_positions = 0;
  std::size_t width_cap = 0;  // 0 = none
  // Data-parallel training: batch(i) holds this shard's equal share of the
  // rows of batch i, so the ranks together read one process's batches
  // (training order only; every batch must divide among them).
  int shard = 0;
  int shards = 1;
};

struct ClassificationBatch {
  torch::Tensor tokens;  // [batch, length] int64
  torch::Tensor mask;    // [batch, length] bool, true on real tokens
  torch::Tensor labels;  // [batch] int64 (-1 for unlabelled)
  std::vector<std::size_t> indices;  // document index of each row
};

class ClassificationBatches {
 public:
  ClassificationBatches(const TokenizedCorpus& corpus, ClassificationBatchOptions options);

  void start_epoch(int epoch);
  std::size_t num_batches() const { return batches_.size(); }
  ClassificationBatch batch(std::size_t i) const;
  /// Share of padding among all positions of this epoch's batches.
  double padding_fraction() const;
  /// Length of document `i` as batched (with <s>, after truncation).
  std::size_t length(std::size_t i) const;

 private:
  const TokenizedCorpus& corpus_;
  ClassificationBatchOptions options_;
  std::vector<std::vector<std::size_t>> batches_;
};

}  // namespace ulmfit::text
