#pragma once
/// Language-model batches: each epoch the documents are shuffled with the run's
/// seed, each is prefixed with <s>, all are joined into one stream, the stream
/// is cut into `batch_size` rows, and rows are read in windows of `bptt` tokens
/// (or AWD-LSTM's random lengths). Targets are the inputs shifted by one. Every
/// token after the first is a target exactly once per epoch; the last row's
/// tail is padded with <pad> inputs and ignored targets (kIgnoreIndex).
///
///   LmStream stream(corpus, {.batch_size = 32, .bptt = 72, .seed = 42});
///   stream.start_epoch(0);
///   while (auto batch = stream.next()) train_step(batch->input, batch->target);
#include <torch/types.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "ulmfit/text/token_cache.h"

namespace ulmfit::text {

/// Target value that losses skip (PyTorch's cross_entropy default).
constexpr std::int64_t kIgnoreIndex = -100;

struct LmStreamOptions {
  int batch_size = 64;
  int bptt = 72;
  bool variable_bptt = false;  // p=0.95 bptt else bptt/2, then N(that, 5), clamped
  std::uint64_t seed = 0;
  bool shuffle = true;         // shuffle documents each epoch
  // Data-parallel training: this process reads rows [shard, shard + 1) x
  // batch_size / shards of every batch, so the ranks together read exactly
  // the batches of one process (batch_size must divide among them).
  int shard = 0;
  int shards = 1;
};

struct LmBatch {
  torch::Tensor input;   // [rows, seq_len] int64 (rows = batch_size / shards)
  torch::Tensor target;  // [batch, seq_len] int64, kIgnoreIndex where padded
  int seq_len = 0;       // this window's length (the LR is scaled by seq_len / bptt)
};

class LmStream {
 public:
  LmStream(const TokenizedCorpus& corpus, LmStreamOptions options);

  /// Orders the documents and draws the window lengths for `epoch`; the same
  /// (seed, epoch) always gives the same batches.
  void start_epoch(int epoch);
  std::size_t num_batches() const { return windows_.size(); }
  std::optional<LmBatch> next();
  /// Index of the next batch; seek() resumes an epoch part-way.
  std::size_t position() const { return next_window_; }
  void seek(std::size_t batch_index);
  /// Targets per row this epoch.
  std::int64_t row_length() const { return row_length_; }
  std::int64_t total_targets() const { return static_cast<std::int64_t>(stream_.size()) - 1; }

 private:
  const TokenizedCorpus& corpus_;
  LmStreamOptions options_;
  std::vector<std::int32_t> stream_;
  std::int64_t row_length_ = 0;
  std::vector<std::pair<std::int64_t, int>> windows_;  // (offset in row, length)
  std::size_t next_window_ = 0;
};

/// The shuffled order of `n` items for (seed, epoch): a Fisher-Yates shuffle on
/// a fixed generator, identical on every platform.
std::vector<std::size_t> epoch_permutation(std::size_t n, std::uint64_t seed, int epoch);

}  // namespace ulmfit::text
