#include <torch/torch.h>

#include <algorithm>
#include <numeric>
#include <set>

#include "../test_helpers.h"
#include "ulmfit/text/classification_batches.h"
#include "ulmfit/text/lm_stream.h"
#include "ulmfit/util/error.h"

namespace ulmfit {
namespace {

using text::SpecialIds;

/// Documents with distinct, recognisable token ids: doc d holds ids
/// 1000*(d+1) + k, so every token of the corpus is unique.
text::TokenizedCorpus numbered_corpus(int docs, int min_len, int max_len, unsigned seed = 1) {
  std::mt19937 rng(seed);
  std::vector<std::vector<int>> out;
  std::vector<std::int32_t> labels;
  for (int d = 0; d < docs; ++d) {
    const int len = min_len + static_cast<int>(rng() % static_cast<unsigned>(max_len - min_len + 1));
    std::vector<int> doc(static_cast<std::size_t>(len));
    std::iota(doc.begin(), doc.end(), 1000 * (d + 1));
    out.push_back(doc);
    labels.push_back(d % 3);
  }
  return text::TokenizedCorpus::from_documents(out, labels, {"a", "b", "c"});
}

/// Reads an epoch and returns, per row, the targets in reading order.
std::vector<std::vector<std::int64_t>> targets_by_row(text::LmStream& stream, int rows,
                                                      std::vector<int>* lengths = nullptr) {
  std::vector<std::vector<std::int64_t>> out(static_cast<std::size_t>(rows));
  while (auto batch = stream.next()) {
    EXPECT_EQ(batch->input.sizes(), batch->target.sizes());
    EXPECT_EQ(batch->input.size(1), batch->seq_len);
    if (lengths) lengths->push_back(batch->seq_len);
    auto in = batch->input.accessor<std::int64_t, 2>();
    auto tg = batch->target.accessor<std::int64_t, 2>();
    for (int r = 0; r < rows; ++r) {
      for (int k = 0; k < batch->seq_len; ++k) {
        if (tg[r][k] == text::kIgnoreIndex) {
          EXPECT_EQ(in[r][k], SpecialIds::kPad);
          continue;
        }
        out[static_cast<std::size_t>(r)].push_back(tg[r][k]);
      }
    }
  }
  return out;
}

class LmStreamTest : public ::testing::TestWithParam<bool> {};

TEST_P(LmStreamTest, EveryTokenIsATargetExactlyOncePerEpochInOrder) {
  const auto corpus = numbered_corpus(37, 1, 60);
  const int rows = 5;
  text::LmStream stream(corpus, {rows, 9, /*variable_bptt=*/GetParam(), 123, true});
  stream.start_epoch(0);
  const std::size_t announced = stream.num_batches();
  std::vector<int> lengths;
  const auto by_row = targets_by_row(stream, rows, &lengths);
  EXPECT_EQ(lengths.size(), announced);

  // Concatenating the rows' targets gives the epoch's stream without its first token:
  // nothing dropped, nothing repeated, order kept within each row.
  std::vector<std::int64_t> joined;
  for (const auto& row : by_row) joined.insert(joined.end(), row.begin(), row.end());
  EXPECT_EQ(static_cast<std::int64_t>(joined.size()), stream.total_targets());

  std::vector<std::int64_t> corpus_tokens;
  for (std::size_t d = 0; d < corpus.size(); ++d) {
    corpus_tokens.insert(corpus_tokens.end(), corpus.doc(d).begin(), corpus.doc(d).end());
  }
  std::vector<std::int64_t> real_targets;
  for (auto t : joined) {
    if (t != SpecialIds::kBos) real_targets.push_back(t);
  }
  std::sort(real_targets.begin(), real_targets.end());
  std::sort(corpus_tokens.begin(), corpus_tokens.end());
  EXPECT_EQ(real_targets, corpus_tokens);  // each corpus token exactly once
  // Within a row, consecutive targets of the same document are consecutive ids.
  for (const auto& row : by_row) {
    for (std::size_t i = 1; i < row.size(); ++i) {
      if (row[i] != SpecialIds::kBos && row[i - 1] != SpecialIds::kBos) {
        EXPECT_EQ(row[i], row[i - 1] + 1);
      }
    }
  }
  // All rows but the last are full.
  for (int r = 0; r + 1 < rows; ++r) {
    EXPECT_EQ(static_cast<std::int64_t>(by_row[static_cast<std::size_t>(r)].size()),
              stream.row_length());
  }
}

TEST_P(LmStreamTest, InputsAreTargetsShiftedByOne) {
  const auto corpus = numbered_corpus(10, 5, 20);
  text::LmStream stream(corpus, {3, 7, GetParam(), 5, true});
  stream.start_epoch(0);
  std::vector<std::vector<std::int64_t>> last_target(3);
  while (auto b = stream.next()) {
    auto in = b->input.accessor<std::int64_t, 2>();
    auto tg = b->target.accessor<std::int64_t, 2>();
    for (int r = 0; r < 3; ++r) {
      for (int k = 1; k < b->seq_len; ++k) {
        if (tg[r][k] != text::kIgnoreIndex) {
          EXPECT_EQ(in[r][k], tg[r][k - 1]);
        }
      }
      // Across windows the row continues where it stopped.
      auto& prev = last_target[static_cast<std::size_t>(r)];
      if (!prev.empty() && tg[r][0] != text::kIgnoreIndex) {
        EXPECT_EQ(in[r][0], prev.back());
      }
      for (int k = 0; k < b->seq_len; ++k) {
        if (tg[r][k] != text::kIgnoreIndex) prev.push_back(tg[r][k]);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(FixedAndVariableBptt, LmStreamTest, ::testing::Bool());

TEST(LmStream, SeededShufflePerEpoch) {
  const auto corpus = numbered_corpus(30, 3, 10);
  auto first_batch = [&](std::uint64_t seed, int epoch) {
    text::LmStream s(corpus, {4, 8, true, seed, true});
    s.start_epoch(epoch);
    return s.next()->input.clone();
  };
  EXPECT_TRUE(torch::equal(first_batch(1, 0), first_batch(1, 0)));
  EXPECT_FALSE(torch::equal(first_batch(1, 0), first_batch(1, 1)));
  EXPECT_FALSE(torch::equal(first_batch(1, 0), first_batch(2, 0)));
}

TEST(LmStream, VariableLengthsFollowAwdLstm) {
  const auto corpus = numbered_corpus(200, 50, 200);
  text::LmStream s(corpus, {4, 70, true, 9, true});
  s.start_epoch(0);
  std::vector<int> lengths;
  targets_by_row(s, 4, &lengths);
  ASSERT_GT(lengths.size(), 50u);
  lengths.pop_back();  // the last window may be cut short
  int half = 0;
  for (int len : lengths) {
    EXPECT_GE(len, 5);
    EXPECT_LE(len, 90);
    if (len < 52) ++half;
  }
  EXPECT_GT(half, 0);                                         // some bptt/2 windows
  EXPECT_LT(half, static_cast<int>(lengths.size()) / 5);      // but few
}

TEST(LmStream, SeekResumesAtTheSameBatch) {
  const auto corpus = numbered_corpus(20, 5, 30);
  text::LmStream a(corpus, {3, 6, true, 4, true});
  a.start_epoch(2);
  a.next();
  a.next();
  const auto third = a.next()->input.clone();
  text::LmStream b(corpus, {3, 6, true, 4, true});
  b.start_epoch(2);
  b.seek(2);
  EXPECT_TRUE(torch::equal(b.next()->input, third));
}

TEST(ClassificationBatches, PaddingMaskAndLabels) {
  const auto corpus = numbered_corpus(10, 3, 12);
  text::ClassificationBatches batches(corpus, {4, false, 0, 50, true, 4, 0});
  batches.start_epoch(0);
  std::vector<std::size_t> seen;
  for (std::size_t i = 0; i < batches.num_batches(); ++i) {
    const auto b = batches.batch(i);
    auto tok = b.tokens.accessor<std::int64_t, 2>();
    auto mask = b.mask.accessor<bool, 2>();
    for (std::size_t r = 0; r < b.indices.size(); ++r) {
      const std::size_t d = b.indices[r];
      seen.push_back(d);
      EXPECT_EQ(b.labels[static_cast<std::int64_t>(r)].item<std::int64_t>(), corpus.label(d));
      std::vector<std::int64_t> real;
      std::int64_t first_real = -1;
      for (std::int64_t k = 0; k < b.tokens.size(1); ++k) {
        const auto row = static_cast<std::int64_t>(r);
        if (mask[row][k]) {
          if (first_real < 0) first_real = k;
          real.push_back(tok[row][k]);
        } else {
          EXPECT_EQ(tok[row][k], SpecialIds::kPad);
        }
      }
      // <s> then the document; leading padding in whole blocks of pad_chunk.
      ASSERT_EQ(real.size(), corpus.doc(d).size + 1);
      EXPECT_EQ(real[0], SpecialIds::kBos);
      EXPECT_TRUE(std::equal(real.begin() + 1, real.end(), corpus.doc(d).begin()));
      EXPECT_EQ(first_real % 4, 0);
    }
  }
  std::sort(seen.begin(), seen.end());
  std::vector<std::size_t> all(10);
  std::iota(all.begin(), all.end(), 0);
  EXPECT_EQ(seen, all);
}

TEST(ClassificationBatches, EvaluationOrderIsSortedByLength) {
  const auto corpus = numbered_corpus(30, 1, 40);
  text::ClassificationBatches batches(corpus, {8, false, 0, 50, true, 0, 0});
  batches.start_epoch(0);
  std::size_t previous = SIZE_MAX;
  for (std::size_t i = 0; i < batches.num_batches(); ++i) {
    for (std::size_t d : batches.batch(i).indices) {
      EXPECT_LE(batches.length(d), previous);
      previous = batches.length(d);
    }
  }
}

TEST(ClassificationBatches, APositionBoundKeepsLongDocumentsInSmallBatches) {
  // Lengths with <s>: 101, 51, 41, 11, 11, 11.
  const auto corpus = text::TokenizedCorpus::from_documents(
      {std::vector<int>(100, 7), std::vector<int>(50, 7), std::vector<int>(40, 7), std::vector<int>(10, 7),
       std::vector<int>(10, 7), std::vector<int>(10, 7)},
      {0, 0, 0, 0, 0, 0}, {"a"});
  text::ClassificationBatchOptions options;
  options.batch_size = 2;
  options.batch_positions = 120;
  const auto sizes = [&](const text::ClassificationBatchOptions& o) {
    text::ClassificationBatches batches(corpus, o);
    batches.start_epoch(0);
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < batches.num_batches(); ++i) out.push_back(batches.batch(i).indices.size());
    return out;
  };
  // 120 positions: one of 101, two of 51 (and 41), then two of 11 (batch_size caps it).
  EXPECT_EQ(sizes(options), (std::vector<std::size_t>{1, 2, 2, 1}));
  // A width counted only up to what the model reads: 101 counts as 60, so two fit.
  options.width_cap = 60;
  EXPECT_EQ(sizes(options), (std::vector<std::size_t>{2, 2, 2}));
  options.batch_positions = 0;  // off: batch_size documents whatever their lengths
  EXPECT_EQ(sizes(options), (std::vector<std::size_t>{2, 2, 2}));
}

TEST(ClassificationBatches, SortishBucketingPadsLessThanRandomBatches) {
  const auto corpus = numbered_corpus(2000, 5, 600, 3);
  const int bs = 16;
  text::ClassificationBatches sortish(corpus, {bs, true, 7, 10, true, 0, 0});
  sortish.start_epoch(0);
  // Random batches: the same documents in shuffled order with no sorting.
  const auto order = text::epoch_permutation(corpus.size(), 7, 0);
  std::size_t real = 0, total = 0;
  for (std::size_t start = 0; start < order.size(); start += bs) {
    std::size_t width = 0, count = 0;
    for (std::size_t k = start; k < std::min(order.size(), start + bs); ++k, ++count) {
      width = std::max(width, sortish.length(order[k]));
      real += sortish.length(order[k]);
    }
    total += width * count;
  }
  const double random_padding = 1.0 - static_cast<double>(real) / static_cast<double>(total);
  EXPECT_GT(random_padding, 0.3);
  EXPECT_LT(sortish.padding_fraction(), random_padding / 4);
  // A window of one batch (train.length_sort_window: 1) sorts nothing: the
  // batches are the permutation's groups, with random lengths and their padding.
  text::ClassificationBatches unsorted(corpus, {bs, true, 7, 1, true, 0, 0});
  unsorted.start_epoch(0);
  EXPECT_NEAR(unsorted.padding_fraction(), random_padding, 1e-9);
  // A different epoch gives a different batch order but the same documents.
  text::ClassificationBatches again(corpus, {bs, true, 7, 10, true, 0, 0});
  again.start_epoch(1);
  EXPECT_NE(again.batch(0).indices, sortish.batch(0).indices);
}

TEST(ClassificationBatches, DropLastNeverLeavesABatchOfOne) {
  // 33 documents in batches of 8: without drop_last the epoch ends with a batch
  // of one, which the head's BatchNorm cannot normalise.
  const auto corpus = numbered_corpus(33, 2, 30);
  text::ClassificationBatchOptions options{8, true, 3, 2, true, 0, 0};
  text::ClassificationBatches keep_all(corpus, options);
  keep_all.start_epoch(0);
  std::size_t smallest = SIZE_MAX;
  for (std::size_t i = 0; i < keep_all.num_batches(); ++i) smallest = std::min(smallest, keep_all.batch(i).indices.size());
  EXPECT_EQ(smallest, 1U);

  options.drop_last = true;
  text::ClassificationBatches dropping(corpus, options);
  std::set<std::size_t> left_out_over_epochs;
  for (int epoch = 0; epoch < 4; ++epoch) {
    dropping.start_epoch(epoch);
    ASSERT_EQ(dropping.num_batches(), 4U);
    std::set<std::size_t> seen;
    for (std::size_t i = 0; i < dropping.num_batches(); ++i) {
      const auto b = dropping.batch(i);
      EXPECT_EQ(b.indices.size(), 8U);
      seen.insert(b.indices.begin(), b.indices.end());
    }
    ASSERT_EQ(seen.size(), 32U);
    for (std::size_t d = 0; d < corpus.size(); ++d) {
      if (!seen.count(d)) left_out_over_epochs.insert(d);
    }
  }
  // A random document sits out each epoch, not always the same one.
  EXPECT_GT(left_out_over_epochs.size(), 1U);
  // Fewer documents than one batch: all of them, in one batch.
  const auto few = numbered_corpus(5, 2, 30);
  text::ClassificationBatches small(few, options);
  small.start_epoch(0);
  ASSERT_EQ(small.num_batches(), 1U);
  EXPECT_EQ(small.batch(0).indices.size(), 5U);
}

TEST(ClassificationBatches, MaxTokensKeepsTheEnd) {
  const auto corpus = numbered_corpus(3, 50, 50);
  text::ClassificationBatches batches(corpus, {3, false, 0, 50, false, 0, 10});
  batches.start_epoch(0);
  const auto b = batches.batch(0);
  EXPECT_EQ(b.tokens.size(1), 10);
  EXPECT_EQ(b.tokens[0][0].item<std::int64_t>(), SpecialIds::kBos);
  const std::size_t d = b.indices[0];
  EXPECT_EQ(b.tokens[0][9].item<std::int64_t>(), corpus.doc(d)[49]);
  EXPECT_EQ(b.tokens[0][1].item<std::int64_t>(), corpus.doc(d)[41]);
}

// Data parallelism: the shards of every batch, concatenated in rank order,
// are the batch one process reads, so N ranks read one process's token order.
TEST(LmStream, ShardsConcatenatedAreTheOneProcessBatches) {
  const auto corpus = numbered_corpus(30, 3, 40);
  for (const bool variable : {false, true}) {
    text::LmStream whole(corpus, {6, 7, variable, 11, true});
    text::LmStream first(corpus, {6, 7, variable, 11, true, 0, 3}), middle(corpus, {6, 7, variable, 11, true, 1, 3}),
        last(corpus, {6, 7, variable, 11, true, 2, 3});
    for (int epoch = 0; epoch < 2; ++epoch) {
      for (auto* s : {&whole, &first, &middle, &last}) s->start_epoch(epoch);
      ASSERT_EQ(first.num_batches(), whole.num_batches());
      while (auto w = whole.next()) {
        const auto a = first.next(), b = middle.next(), c = last.next();
        ASSERT_TRUE(a && b && c);
        EXPECT_EQ(a->input.size(0), 2);
        EXPECT_EQ(a->seq_len, w->seq_len);
        EXPECT_TRUE(torch::equal(torch::cat({a->input, b->input, c->input}), w->input));
        EXPECT_TRUE(torch::equal(torch::cat({a->target, b->target, c->target}), w->target));
      }
      EXPECT_FALSE(first.next().has_value());
    }
  }
  EXPECT_THROW(text::LmStream(corpus, {5, 7, false, 11, true, 0, 2}), ConfigError);
}

TEST(ClassificationBatches, ShardsConcatenatedAreTheOneProcessBatches) {
  const auto corpus = numbered_corpus(50, 2, 30);
  text::ClassificationBatchOptions options;
  options.batch_size = 8;
  options.shuffle = true;
  options.drop_last = true;
  options.seed = 5;
  options.pad_chunk = 4;
  text::ClassificationBatches whole(corpus, options);
  auto shard_options = options;
  shard_options.shards = 2;
  shard_options.shard = 0;
  text::ClassificationBatches first(corpus, shard_options);
  shard_options.shard = 1;
  text::ClassificationBatches second(corpus, shard_options);
  for (auto* b : {&whole, &first, &second}) b->start_epoch(1);
  ASSERT_EQ(first.num_batches(), whole.num_batches());
  for (std::size_t i = 0; i < whole.num_batches(); ++i) {
    const auto w = whole.batch(i), a = first.batch(i), b = second.batch(i);
    EXPECT_EQ(a.indices.size(), 4u);
    // Each shard as wide as the whole batch, rows where one process has them.
    EXPECT_TRUE(torch::equal(torch::cat({a.tokens, b.tokens}), w.tokens));
    EXPECT_TRUE(torch::equal(torch::cat({a.mask, b.mask}), w.mask));
    EXPECT_TRUE(torch::equal(torch::cat({a.labels, b.labels}), w.labels));
  }
  shard_options.batch_size = 7;
  EXPECT_THROW(text::ClassificationBatches(corpus, shard_options), ConfigError);
}

}  // namespace
}  // namespace ulmfit
