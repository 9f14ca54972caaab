#include "ulmfit/text/classification_batches.h"

#include <torch/torch.h>

#include <algorithm>

#include "ulmfit/text/lm_stream.h"
#include "ulmfit/text/tokenizer.h"
#include "ulmfit/util/error.h"

namespace ulmfit::text {

ClassificationBatches::ClassificationBatches(const TokenizedCorpus& corpus,
                                             ClassificationBatchOptions options)
    : corpus_(corpus), options_(options) {
  if (options_.batch_size < 1) throw ConfigError("train.batch_size: must be >= 1");
  if (corpus_.size() == 0) throw DataError("classification corpus has no documents");
  if (options_.shards > 1) {
    const auto bs = static_cast<std::size_t>(options_.batch_size);
    if (!options_.shuffle || !options_.drop_last || options_.batch_size % options_.shards != 0 || corpus_.size() < bs) {
      throw ConfigError("train.batch_size: " + std::to_string(options_.batch_size) +
                        " documents do not divide into equal shares for " + std::to_string(options_.shards) +
                        " ranks (it must be a multiple of the world size, and at most the " +
                        std::to_string(corpus_.size()) + " training documents)");
    }
  }
}

std::size_t ClassificationBatches::length(std::size_t i) const {
  const std::size_t n = corpus_.doc(i).size + 1;
  return options_.max_tokens > 0 ? std::min(n, options_.max_tokens) : n;
}

void ClassificationBatches::start_epoch(int epoch) {
  const std::size_t n = corpus_.size();
  const std::size_t bs = static_cast<std::size_t>(options_.batch_size);
  auto longer_first = [&](std::size_t a, std::size_t b) {
    const std::size_t la = length(a), lb = length(b);
    return la != lb ? la > lb : a < b;
  };
  std::vector<std::size_t> order;
  if (options_.shuffle) {
    order = epoch_permutation(n, options_.seed, epoch);
    // drop_last: the documents past the last full batch are left out of this
    // epoch. They are the permutation's tail, so a different random few each
    // epoch (not the shortest of the last sorted chunk), and no batch of one
    // reaches the head's BatchNorm. With less than one full batch, all stay.
    if (options_.drop_last && n > bs) order.resize(n - n % bs);
    const std::size_t chunk = bs * static_cast<std::size_t>(std::max(options_.chunk_batches, 1));
    for (std::size_t start = 0; start < order.size(); start += chunk) {
      const auto first = order.begin() + static_cast<std::ptrdiff_t>(start);
      const auto last = order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), start + chunk));
      std::sort(first, last, longer_first);
    }
  } else {
    order.resize(n);
    for (std::size_t i = 0; i < n; ++i) order[i] = i;
    std::sort(order.begin(), order.end(), longer_first);
  }
  batches_.clear();
  const bool by_positions = !options_.shuffle && options_.batch_positions > 0;
  for (std::size_t start = 0; start < order.size();) {
    std::size_t size = bs;
    if (by_positions) {  // sorted longest first: the first document sets the width
      std::size_t width = length(order[start]);
      if (options_.width_cap > 0) width = std::min(width, options_.width_cap);
      size = std::clamp<std::size_t>(options_.batch_positions / width, 1, bs);
    }
    const std::size_t end = std::min(order.size(), start + size);
    batches_.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(start),
                          order.begin() + static_cast<std::ptrdiff_t>(end));
    start = end;
  }
  if (options_.shuffle) {
    const auto batch_order = epoch_permutation(batches_.size(), options_.seed ^ 0xba7c4ULL, epoch);
    std::vector<std::vector<std::size_t>> shuffled;
    shuffled.reserve(batches_.size());
    for (std::size_t b : batch_order) shuffled.push_back(std::move(batches_[b]));
    batches_.swap(shuffled);
  }
}

ClassificationBatch ClassificationBatches::batch(std::size_t i) const {
  const auto& all_rows = batches_.at(i);
  const std::size_t share = all_rows.size() / static_cast<std::size_t>(options_.shards);
  const auto first = all_rows.begin() + static_cast<std::ptrdiff_t>(share * static_cast<std::size_t>(options_.shard));
  const std::vector<std::size_t> rows =
      options_.shards > 1 ? std::vector<std::size_t>(first, first + static_cast<std::ptrdiff_t>(share)) : all_rows;
  // A shard is as wide as the whole batch: its documents then sit where one
  // process puts them, and BPT3C reads (and draws dropout masks for) as many chunks.
  std::size_t width = 0;
  for (std::size_t d : all_rows) width = std::max(width, length(d));
  const auto b = static_cast<std::int64_t>(rows.size());
  const auto w = static_cast<std::int64_t>(width);
  ClassificationBatch out;
  out.tokens = torch::full({b, w}, SpecialIds::kPad, torch::kInt64);
  out.mask = torch::zeros({b, w}, torch::kBool);
  out.labels = torch::empty({b}, torch::kInt64);
  out.indices = rows;
  auto tok = out.tokens.accessor<std::int64_t, 2>();
  auto mask = out.mask.accessor<bool, 2>();
  auto lab = out.labels.accessor<std::int64_t, 1>();
  for (std::int64_t r = 0; r < b; ++r) {
    const std::size_t d = rows[static_cast<std::size_t>(r)];
    const TokenSpan doc = corpus_.doc(d);
    const std::size_t len = length(d);
    const std::size_t pad = width - len;
    std::size_t lead = 0;
    if (options_.pad_first) {
      const auto chunk = static_cast<std::size_t>(std::max(options_.pad_chunk, 0));
      lead = chunk > 0 ? pad / chunk * chunk : pad;
    }
    // The document's last len-1 tokens after <s> (truncation keeps the end).
    const std::size_t skip = doc.size - (len - 1);
    auto pos = static_cast<std::int64_t>(lead);
    tok[r][pos] = SpecialIds::kBos;
    mask[r][pos] = true;
    for (std::size_t k = skip; k < doc.size; ++k) {
      ++pos;
      tok[r][pos] = doc[k];
      mask[r][pos] = true;
    }
    lab[r] = corpus_.label(d);
  }
  return out;
}

double ClassificationBatches::padding_fraction() const {
  std::size_t real = 0, total = 0;
  for (const auto& rows : batches_) {
    std::size_t width = 0;
    for (std::size_t d : rows) {
      width = std::max(width, length(d));
      real += length(d);
    }
    total += width * rows.size();
  }
  return total == 0 ? 0.0 : 1.0 - static_cast<double>(real) / static_cast<double>(total);
}

}  // namespace ulmfit::text
