#include "ulmfit/text/lm_stream.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "ulmfit/text/tokenizer.h"
#include "ulmfit/util/error.h"

namespace ulmfit::text {
namespace {

/// Mixes seed and epoch into one generator seed (splitmix64 finaliser).
std::uint64_t mix(std::uint64_t seed, std::uint64_t salt) {
  std::uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (salt + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/// Uniform integer in [0, bound) without the platform-specific distributions.
std::uint64_t below(std::mt19937_64& rng, std::uint64_t bound) {
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  std::uint64_t x;
  do {
    x = rng();
  } while (x >= limit);
  return x % bound;
}

double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

/// Box-Muller: std::normal_distribution differs between standard libraries.
double normal(std::mt19937_64& rng, double mean, double stddev) {
  const double u1 = std::max(uniform01(rng), 1e-300);
  const double u2 = uniform01(rng);
  return mean + stddev * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

}  // namespace

std::vector<std::size_t> epoch_permutation(std::size_t n, std::uint64_t seed, int epoch) {
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  std::mt19937_64 rng(mix(seed, static_cast<std::uint64_t>(epoch)));
  for (std::size_t i = n; i > 1; --i) std::swap(order[i - 1], order[below(rng, i)]);
  return order;
}

LmStream::LmStream(const TokenizedCorpus& corpus, LmStreamOptions options)
    : corpus_(corpus), options_(options) {
  if (options_.batch_size < 1) throw ConfigError("train.batch_size: must be >= 1");
  if (options_.bptt < 1) throw ConfigError("train.bptt: must be >= 1");
  if (options_.shards < 1 || options_.shard < 0 || options_.shard >= options_.shards ||
      options_.batch_size % options_.shards != 0) {
    throw ConfigError("train.batch_size: " + std::to_string(options_.batch_size) + " rows do not divide among " +
                      std::to_string(options_.shards) + " ranks; make it a multiple of the world size");
  }
  if (corpus_.size() == 0 || corpus_.total_tokens() == 0) {
    throw DataError("language-model corpus has no tokens");
  }
}

void LmStream::start_epoch(int epoch) {
  std::vector<std::size_t> order;
  if (options_.shuffle) {
    order = epoch_permutation(corpus_.size(), options_.seed, epoch);
  } else {
    order.resize(corpus_.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  }
  stream_.clear();
  stream_.reserve(corpus_.total_tokens() + corpus_.size());
  for (std::size_t d : order) {
    const TokenSpan doc = corpus_.doc(d);
    if (doc.size == 0) continue;
    stream_.push_back(SpecialIds::kBos);
    stream_.insert(stream_.end(), doc.begin(), doc.end());
  }
  const std::int64_t targets = total_targets();
  const std::int64_t rows = options_.batch_size;
  row_length_ = (targets + rows - 1) / rows;

  windows_.clear();
  std::mt19937_64 rng(mix(options_.seed ^ 0x5eedULL, static_cast<std::uint64_t>(epoch)));
  for (std::int64_t offset = 0; offset < row_length_;) {
    int len = options_.bptt;
    if (options_.variable_bptt) {
      const double base = uniform01(rng) < 0.95 ? options_.bptt : options_.bptt / 2.0;
      len = static_cast<int>(std::lround(normal(rng, base, 5.0)));
      // AWD-LSTM's bounds: at least 5 tokens, at most bptt + 20.
      len = std::clamp(len, std::min(5, options_.bptt), options_.bptt + 20);
    }
    len = static_cast<int>(std::min<std::int64_t>(len, row_length_ - offset));
    windows_.emplace_back(offset, len);
    offset += len;
  }
  next_window_ = 0;
}

void LmStream::seek(std::size_t batch_index) {
  if (batch_index > windows_.size()) throw DataError("LM stream position past the epoch's end");
  next_window_ = batch_index;
}

std::optional<LmBatch> LmStream::next() {
  if (next_window_ >= windows_.size()) return std::nullopt;
  const auto [offset, len] = windows_[next_window_++];
  const std::int64_t rows = options_.batch_size / options_.shards;
  const std::int64_t first_row = rows * options_.shard;
  const std::int64_t targets = total_targets();
  auto input = torch::full({rows, len}, SpecialIds::kPad, torch::kInt64);
  auto target = torch::full({rows, len}, kIgnoreIndex, torch::kInt64);
  auto in = input.accessor<std::int64_t, 2>();
  auto out = target.accessor<std::int64_t, 2>();
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t row_start = (first_row + r) * row_length_;
    for (int k = 0; k < len; ++k) {
      const std::int64_t j = row_start + offset + k;  // index of the target in [0, targets)
      if (offset + k >= row_length_ || j >= targets) break;
      in[r][k] = stream_[static_cast<std::size_t>(j)];
      out[r][k] = stream_[static_cast<std::size_t>(j + 1)];
    }
  }
  return LmBatch{input, target, len};
}

}  // namespace ulmfit::text
