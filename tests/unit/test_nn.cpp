#include <torch/torch.h>

#include <cmath>

#include "../test_helpers.h"
#include "ulmfit/nn/awd_lstm.h"
#include "ulmfit/nn/fo_pool.h"
#include "ulmfit/nn/qrnn.h"
#include "ulmfit/nn/ngram_bag.h"
#include "ulmfit/nn/heads.h"
#include "ulmfit/nn/model_factory.h"
#include "ulmfit/util/error.h"

namespace ulmfit {
namespace {

class NnTest : public ::testing::Test {
 protected:
  void SetUp() override { torch::manual_seed(0); }
};

TEST_F(NnTest, RNNDropoutSharesOneMaskOverTime) {
  nn::RNNDropout drop(0.5);
  drop->train();
  const auto y = drop(torch::ones({3, 7, 11}));
  // Every time step of a sequence sees the same mask.
  for (int64_t t = 1; t < 7; ++t) EXPECT_TRUE(torch::equal(y.select(1, t), y.select(1, 0)));
  const auto values = std::get<0>(at::_unique(y));
  EXPECT_TRUE(torch::allclose(values, torch::tensor({0.0f, 2.0f})));
  drop->eval();
  EXPECT_TRUE(torch::equal(drop(torch::ones({3, 7, 11})), torch::ones({3, 7, 11})));
}

// A data-parallel rank draws the global batch's masks and keeps its rows: the
// ranks' masks, stacked, are the one process's mask.
TEST_F(NnTest, ShardedDropoutsApplyTheirRowsOfTheGlobalMask) {
  nn::RNNDropout rnn(0.5);
  nn::BatchDropout plain(0.3);
  auto masks = [&](int shard, int shards, int64_t rows) {
    torch::manual_seed(3);
    nn::set_batch_shard(shard, shards);
    auto a = rnn(torch::ones({rows, 5, 9}));
    auto b = plain(torch::ones({rows, 13}));
    nn::set_batch_shard(0, 1);
    return std::make_pair(a, b);
  };
  const auto whole = masks(0, 1, 6);
  const auto r0 = masks(0, 3, 2), r1 = masks(1, 3, 2), r2 = masks(2, 3, 2);
  EXPECT_TRUE(torch::equal(torch::cat({r0.first, r1.first, r2.first}), whole.first));
  EXPECT_TRUE(torch::equal(torch::cat({r0.second, r1.second, r2.second}), whole.second));
  const auto values = std::get<0>(at::_unique(whole.second));
  EXPECT_TRUE(torch::allclose(values, torch::tensor({0.0f, 1.0f / 0.7f})));
  plain->eval();
  EXPECT_TRUE(torch::equal(plain(torch::ones({2, 3})), torch::ones({2, 3})));
}

TEST_F(NnTest, EmbeddingDropoutDropsWholeRows) {
  const auto w = torch::rand({50, 8}) + 0.5;
  const auto d = nn::embedding_dropout(w, 0.5, true);
  int dropped = 0;
  for (int64_t r = 0; r < 50; ++r) {
    const bool zero = d[r].abs().sum().item<float>() == 0;
    if (zero) {
      ++dropped;
    } else {
      EXPECT_TRUE(torch::allclose(d[r], w[r] * 2));  // survivors scaled by 1/(1-p)
    }
  }
  EXPECT_GT(dropped, 10);
  EXPECT_LT(dropped, 40);
  EXPECT_TRUE(torch::equal(nn::embedding_dropout(w, 0.5, false), w));
}

// QRNN's fused pooling (activations, recurrence, output gate) against the
// plain loop of tensor operations, in double precision: h, the last c, and
// the gradients of the gates and c0 through both outputs.
TEST_F(NnTest, FusedFoPoolMatchesThePlainLoopForwardAndBackward) {
  for (const int64_t hidden : {5, 64, 131}) {  // under, at and over one vectorised span
    const auto opts = torch::TensorOptions().dtype(torch::kDouble).requires_grad(true);
    const auto gates = (2 * torch::randn({3, 17, 3 * hidden}, torch::kDouble)).requires_grad_(true);
    const auto c0 = torch::randn({3, hidden}, opts);
    const auto [h, last] = nn::fo_pool(gates, c0);
    const auto [plain_h, plain_last] = nn::fo_pool_reference(gates, c0);
    ASSERT_EQ(h.sizes(), (std::vector<int64_t>{3, 17, hidden}));
    EXPECT_EQ(h.scalar_type(), torch::kDouble);
    EXPECT_LT((h - plain_h).abs().max().item<double>(), 1e-12);
    EXPECT_LT((last - plain_last).abs().max().item<double>(), 1e-12);
    const auto weights = torch::randn({3, 17, hidden}, torch::kDouble), last_weights = torch::randn({3, hidden});
    const auto loss = (h * weights).sum() + (last * last_weights).sum();
    const auto plain_loss = (plain_h * weights).sum() + (plain_last * last_weights).sum();
    const auto fused_grads = torch::autograd::grad({loss}, {gates, c0});
    const auto plain_grads = torch::autograd::grad({plain_loss}, {gates, c0});
    for (std::size_t i = 0; i < 2; ++i) {
      EXPECT_LT((fused_grads[i] - plain_grads[i]).abs().max().item<double>(), 1e-12) << "gradient " << i;
    }
    // Only h used, as a layer's state is detached between windows: no gradient reaches c_last.
    const auto h_only = torch::autograd::grad({(nn::fo_pool(gates, c0).first * weights).sum()}, {gates})[0];
    const auto plain_h_only =
        torch::autograd::grad({(nn::fo_pool_reference(gates, c0).first * weights).sum()}, {gates})[0];
    EXPECT_LT((h_only - plain_h_only).abs().max().item<double>(), 1e-12);
  }
  // bf16 gates (autocast's): fp32 state and output, the gates' gradient back in bf16.
  const auto gates = torch::randn({2, 6, 12}).to(torch::kBFloat16).requires_grad_(true);
  const auto [h, last] = nn::fo_pool(gates, {});
  const auto [plain_h, plain_last] = nn::fo_pool_reference(gates, torch::zeros({2, 4}));
  EXPECT_EQ(h.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::allclose(h, plain_h, 1e-5, 1e-6));
  EXPECT_EQ(torch::autograd::grad({h.sum()}, {gates})[0].scalar_type(), torch::kBFloat16);
  // The recurrence itself, by hand for one step from c0: z = tanh(0.5), f = o = sigmoid(0).
  const auto [one, one_last] = nn::fo_pool(torch::tensor({0.5, 0.0, 0.0}, torch::kDouble).view({1, 1, 3}),
                                           torch::full({1, 1}, 4.0, torch::kDouble));
  EXPECT_DOUBLE_EQ(one_last.item<double>(), 0.5 * std::tanh(0.5) + 0.5 * 4.0);
  EXPECT_DOUBLE_EQ(one.item<double>(), 0.5 * one_last.item<double>());
}

TEST_F(NnTest, QrnnNeverLetsAFutureTokenChangeAnEarlierOutput) {
  nn::QrnnImpl qrnn(nn::QrnnOptions(30, 8, 12, 3));
  qrnn.eval();
  const auto tokens = torch::randint(1, 30, {2, 10});
  nn::RecurrentState fresh;
  const auto out = qrnn.forward(tokens, fresh);
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{2, 10, 8}));
  for (int64_t t = 0; t < 10; ++t) {
    auto changed = tokens.clone();
    changed.slice(1, t) = (changed.slice(1, t) % 29) + 1;  // every token from t on is another one
    nn::RecurrentState state;
    const auto other = qrnn.forward(changed, state);
    if (t > 0) {
      EXPECT_TRUE(torch::equal(other.slice(1, 0, t), out.slice(1, 0, t))) << "position " << t;
    }
    EXPECT_FALSE(torch::equal(other.slice(1, t), out.slice(1, t))) << "position " << t;
  }
  // Carried state: two windows read one after the other equal one long read.
  nn::RecurrentState carried;
  const auto first = qrnn.forward(tokens.slice(1, 0, 4), carried);
  const auto second = qrnn.forward(tokens.slice(1, 4), carried);
  EXPECT_TRUE(torch::allclose(torch::cat({first, second}, 1), out, 1e-6, 1e-6));
}

TEST_F(NnTest, WeightDropKeepsTheRawParameterAndFeedsADroppedCopy) {
  nn::WeightDropLstm lstm(nn::WeightDropLstmOptions(4, 6).weight_p(0.5));
  const auto raw_before = lstm->weight_hh_raw.clone();
  lstm->train();
  const auto x = torch::randn({2, 5, 4});
  const auto h = torch::zeros({1, 2, 6});
  auto [out, hn, cn] = lstm(x, h, h);
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{2, 5, 6}));
  EXPECT_TRUE(torch::equal(lstm->weight_hh_raw, raw_before));
  const auto used = lstm->last_hh_weight();
  EXPECT_FALSE(torch::equal(used, raw_before));
  EXPECT_GT((used == 0).sum().item<int64_t>(), 20);
  // Gradients reach the raw matrix through the dropped copy.
  out.sum().backward();
  ASSERT_TRUE(lstm->weight_hh_raw.grad().defined());
  EXPECT_GT(lstm->weight_hh_raw.grad().abs().sum().item<float>(), 0);
  // The only parameters are the raw ones: no stray dropped copy is registered.
  EXPECT_EQ(lstm->parameters().size(), 4u);
  lstm->eval();
  lstm(x, h, h);
  EXPECT_TRUE(torch::equal(lstm->last_hh_weight(), lstm->weight_hh_raw));
}

TEST_F(NnTest, AwdLstmShapesStateAndInit) {
  auto enc = std::make_shared<nn::AwdLstmImpl>(nn::AwdLstmOptions(100, 16, 32, 3));
  EXPECT_LE(enc->embedding->weight.abs().max().item<float>(), 0.1f);
  EXPECT_EQ(enc->lstms.back()->options.hidden_size(), 16);  // tied to the embedding
  enc->eval();
  const auto tokens = torch::randint(5, 100, {4, 9});
  nn::RecurrentState state;
  const auto first = enc->forward(tokens, state);
  EXPECT_EQ(first.sizes(), (std::vector<int64_t>{4, 9, 16}));
  EXPECT_EQ(state.tensors.size(), 6u);
  // The carried state changes what the same window encodes to; a reset does not.
  const auto carried = enc->forward(tokens, state);
  EXPECT_FALSE(torch::allclose(carried, first));
  nn::RecurrentState fresh;
  EXPECT_TRUE(torch::allclose(enc->forward(tokens, fresh), first));
  EXPECT_EQ(enc->block_groups().size(), 3u);
}

TEST_F(NnTest, ConcatPoolingIgnoresPaddedPositions) {
  auto outputs = torch::randn({2, 6, 3});
  auto mask = torch::tensor({{0, 0, 1, 1, 1, 0}, {1, 1, 1, 1, 1, 1}}).to(torch::kBool);
  const auto pooled = nn::masked_concat_pool(outputs, mask);
  EXPECT_EQ(pooled.sizes(), (std::vector<int64_t>{2, 9}));
  // Garbage at padded positions changes nothing.
  auto noisy = outputs.clone();
  noisy.index_put_({0, 0}, torch::full({3}, 1e6));
  noisy.index_put_({0, 5}, torch::full({3}, -1e6));
  EXPECT_TRUE(torch::allclose(nn::masked_concat_pool(noisy, mask), pooled));
  // Row 0: last = position 4, max and mean over positions 2..4.
  const auto real = outputs[0].slice(0, 2, 5);
  EXPECT_TRUE(torch::allclose(pooled[0].slice(0, 0, 3), outputs[0][4]));
  EXPECT_TRUE(torch::allclose(pooled[0].slice(0, 3, 6), std::get<0>(real.max(0))));
  EXPECT_TRUE(torch::allclose(pooled[0].slice(0, 6, 9), real.mean(0)));
}

nn::SequenceClassifier tiny_classifier(int64_t bptt, int64_t max_len) {
  auto enc = std::make_shared<nn::AwdLstmImpl>(nn::AwdLstmOptions(60, 8, 16, 2));
  return nn::SequenceClassifier(enc, nn::SequenceClassifierOptions(3).bptt(bptt).max_len(max_len).hidden({10}).dropouts({0.1, 0.1}));
}

TEST_F(NnTest, LeadingPaddingInWholeChunksDoesNotChangeTheLogits) {
  auto clf = tiny_classifier(4, 100);
  clf->eval();
  const auto doc = torch::randint(5, 60, {1, 6});
  const auto alone = clf(doc, torch::ones({1, 6}, torch::kBool));
  // The same document behind two chunks of padding (and two trailing pads), as
  // ClassificationBatches lays it out beside a longer document.
  auto padded = torch::zeros({1, 16}, torch::kLong);
  padded.slice(1, 8, 14).copy_(doc);
  auto mask = torch::zeros({1, 16}, torch::kBool);
  mask.slice(1, 8, 14).fill_(true);
  EXPECT_TRUE(torch::allclose(clf(padded, mask), alone, 1e-5, 1e-6));
}

TEST_F(NnTest, ALongDocumentPoolsItsOwnLastMaxLenTokensWhateverItsPadding) {
  auto clf = tiny_classifier(4, 5);
  clf->eval();
  const auto doc = torch::randint(5, 60, {1, 10});
  const auto alone = clf(doc, torch::ones({1, 10}, torch::kBool));
  // Behind a chunk of padding and before two pads (a batch 16 wide): the
  // batch's last 5 positions hold only 3 of its tokens, but the document's
  // own last 5 are what it pools, as when it is alone.
  auto padded = torch::zeros({1, 16}, torch::kLong);
  padded.slice(1, 4, 14).copy_(doc);
  auto mask = torch::zeros({1, 16}, torch::kBool);
  mask.slice(1, 4, 14).fill_(true);
  EXPECT_TRUE(torch::allclose(clf(padded, mask), alone, 1e-5, 1e-6));
}

TEST_F(NnTest, Bpt3cKeepsOnlyTheTailsGraph) {
  auto clf = tiny_classifier(5, 10);
  clf->train();
  const auto tokens = torch::randint(5, 60, {2, 40});
  auto [outputs, mask] = clf->encode(tokens, torch::ones({2, 40}, torch::kBool));
  EXPECT_EQ(outputs.size(1), 10);  // only the last max_len tokens' outputs
  EXPECT_TRUE(outputs.requires_grad());
  const auto logits = clf(tokens, torch::ones({2, 40}, torch::kBool));
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{2, 3}));
  logits.sum().backward();
  EXPECT_TRUE(clf->encoder->embedding_weight().grad().defined());
  EXPECT_EQ(clf->layer_groups().size(), 4u);  // embedding, 2 LSTMs, head
}

TEST_F(NnTest, LanguageModelTiesTheDecoderToTheEmbedding) {
  auto enc = std::make_shared<nn::AwdLstmImpl>(nn::AwdLstmOptions(50, 8, 16, 2));
  nn::LanguageModel lm(enc, nn::LanguageModelOptions());
  nn::RecurrentState state;
  const auto out = lm->forward(torch::randint(5, 50, {3, 7}), state);
  EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{3, 7, 50}));
  EXPECT_EQ(out.raw.sizes(), (std::vector<int64_t>{3, 7, 8}));
  // One embedding matrix, no separate decoder weight.
  int64_t count = 0;
  for (const auto& p : lm->parameters()) count += p.numel();
  int64_t expected = 50 * 8 + 50;  // embedding + decoder bias
  for (const auto& l : enc->lstms) {
    for (const auto& p : l->parameters()) expected += p.numel();
  }
  EXPECT_EQ(count, expected);
  const auto groups = lm->layer_groups();
  ASSERT_EQ(groups.size(), 3u);
  EXPECT_EQ(groups.back().size(), 2u);  // embedding + decoder bias on top
}

TEST(NGramBag, HashedBigramsAreOrderedAndSharedAndTheBagHasItsShapes) {
  nn::NGramBagImpl bag(nn::NGramBagOptions(20, 4).order(2).buckets(64).pad_id(0));
  // Rows: the vocabulary's 20, then 64 buckets for the bigrams.
  EXPECT_EQ(bag.embedding->weight.sizes(), torch::IntArrayRef({84, 4}));
  const auto tokens = torch::tensor({{5, 6, 7, 5, 6}, {6, 5, 0, 0, 0}});
  const auto rows = bag.ngram_rows(tokens);
  ASSERT_EQ(rows.sizes(), torch::IntArrayRef({2, 5, 2}));
  EXPECT_TRUE(torch::equal(rows.select(2, 0), tokens));  // order 1: the tokens themselves
  const auto bigrams = rows.select(2, 1);
  EXPECT_TRUE((bigrams >= 20).all().item<bool>());
  EXPECT_TRUE((bigrams < 84).all().item<bool>());
  // "5 6" at positions 1 and 4 of the first row: one bigram, one row.
  EXPECT_EQ(bigrams[0][1].item<int64_t>(), bigrams[0][4].item<int64_t>());
  // "6 5" is another bigram than "5 6"; a document's first token pairs with pad.
  EXPECT_NE(bigrams[1][1].item<int64_t>(), bigrams[0][1].item<int64_t>());
  EXPECT_EQ(bigrams[0][0].item<int64_t>(), nn::NGramBagImpl(nn::NGramBagOptions(20, 4).buckets(64)).ngram_rows(torch::tensor({{5}}))[0][0][1].item<int64_t>());
  // The output at a position is the sum of its n-grams' rows.
  nn::RecurrentState none;
  const auto out = bag.forward(tokens, none);
  ASSERT_EQ(out.sizes(), torch::IntArrayRef({2, 5, 4}));
  const auto& w = bag.embedding->weight;
  EXPECT_TRUE(torch::allclose(out[0][2], w[7] + w[bigrams[0][2].item<int64_t>()]));
  // Order 3 adds a third row per position; order 1 has no buckets at all.
  EXPECT_EQ(nn::NGramBagImpl(nn::NGramBagOptions(20, 4).order(3).buckets(64)).ngram_rows(tokens).size(2), 3);
  EXPECT_EQ(nn::NGramBagImpl(nn::NGramBagOptions(20, 4).order(1)).embedding->weight.size(0), 20);
}

TEST(NGramBag, TfidfWeighsRareNgramsUpAndNormalisesEachDocument) {
  nn::NGramBagImpl bag(nn::NGramBagOptions(10, 3).order(1).pad_id(0).tfidf(true));
  const std::vector<torch::Tensor> docs = {torch::tensor({5, 6}), torch::tensor({5, 7, 7}), torch::tensor({5, 8})};
  bag.fit_to_documents(docs.size(), [&](std::size_t i) { return docs[i]; });
  // Smoothed idf: token 5 is in all 3 documents, 6 in one, 9 in none.
  const auto idf = [](double df) { return std::log(4.0 / (1.0 + df)) + 1.0; };
  EXPECT_NEAR(bag.idf[5].item<double>(), idf(3), 1e-6);
  EXPECT_NEAR(bag.idf[6].item<double>(), idf(1), 1e-6);
  EXPECT_NEAR(bag.idf[7].item<double>(), idf(1), 1e-6);  // twice in one document: still one document
  EXPECT_NEAR(bag.idf[9].item<double>(), idf(0), 1e-6);
  // "5 6 6" then padding: sum = (idf5 w5 + 2 idf6 w6) / sqrt(idf5^2 + (2 idf6)^2).
  nn::RecurrentState none;
  const auto out = bag.forward(torch::tensor({{5, 6, 6, 0}, {7, 0, 0, 0}}), none);
  const auto& w = bag.embedding->weight;
  const double norm = std::sqrt(idf(3) * idf(3) + 4 * idf(1) * idf(1));
  const auto expected = (idf(3) * w[5] + 2 * idf(1) * w[6]) / norm;
  EXPECT_TRUE(torch::allclose(out[0].sum(0), expected, 1e-5, 1e-6));
  EXPECT_TRUE(torch::equal(out[0][3], torch::zeros({3})));  // padding weighs nothing
  // Each document is normalised on its own: a one-token document is that token's row.
  EXPECT_TRUE(torch::allclose(out[1].sum(0), w[7], 1e-5, 1e-6));
  // Without tfidf, nothing is fitted and every row counts once.
  nn::NGramBagImpl plain(nn::NGramBagOptions(10, 3).order(1));
  plain.fit_to_documents(docs.size(), [&](std::size_t i) { return docs[i]; });
  EXPECT_FALSE(plain.idf.defined());
}

TEST(Heads, BatchNormInTheConcatHeadIsAnOption) {
  config::Config cfg;
  cfg.model.emb_size = 8;
  cfg.model.hidden_size = 16;
  cfg.model.layers = 2;
  EXPECT_EQ(nn::make_classifier(cfg.model, cfg.train, 30, 2)->head->norms.size(), 2U);  // fastai's head
  cfg.model.head_batch_norm = false;
  auto clf = nn::make_classifier(cfg.model, cfg.train, 30, 2);
  EXPECT_TRUE(clf->head->norms.empty());
  ASSERT_EQ(clf->head->linears.size(), 2U);
  // Without it a document's logits do not depend on the other documents of its batch.
  torch::manual_seed(1);
  cfg.model.dropout.mult = 0;
  auto plain = nn::make_classifier(cfg.model, cfg.train, 30, 2);
  plain->train();
  for (auto& dropout : plain->head->dropouts) dropout->eval();  // the head's last dropout does not scale with mult
  const auto one = plain->forward(torch::tensor({{3, 4, 5}}), torch::ones({1, 3}, torch::kBool));
  const auto two = plain->forward(torch::tensor({{3, 4, 5}, {6, 7, 8}}), torch::ones({2, 3}, torch::kBool));
  EXPECT_TRUE(torch::allclose(one[0], two[0], 1e-5, 1e-6));
}

TEST(Heads, SynchronisedBatchNormWithoutMomentumAveragesEveryBatch) {
  // With momentum unset BatchNorm1d keeps a plain average over the batches
  // since its last reset (what the classifier's statistics refresh uses); the
  // data-parallel path must keep the same average.
  torch::manual_seed(2);
  auto options = nn::PoolingClassifierOptions(4, 2).dropouts({0, 0});
  nn::PoolingClassifier plain(options), synchronised(options);
  synchronised->synchronise_batch_norm([](const torch::Tensor& t) { return t; });  // one process
  {
    torch::NoGradGuard no_grad;
    const auto from = plain->named_parameters();
    for (auto& p : synchronised->named_parameters()) p.value().copy_(from[p.key()]);
  }
  for (auto* head : {&plain, &synchronised}) {
    for (auto& norm : (*head)->norms) {
      norm->options.momentum(std::nullopt);
      norm->reset_running_stats();
    }
    (*head)->train();
  }
  for (int b = 0; b < 3; ++b) {
    const auto outputs = torch::randn({5 + b, 6, 4}) * (b + 1) + b;
    const auto mask = torch::ones({5 + b, 6}, torch::kBool);
    plain->forward(outputs, mask);
    synchronised->forward(outputs, mask);
  }
  for (std::size_t i = 0; i < plain->norms.size(); ++i) {
    EXPECT_TRUE(torch::allclose(synchronised->norms[i]->running_mean, plain->norms[i]->running_mean, 1e-5, 1e-5));
    EXPECT_TRUE(torch::allclose(synchronised->norms[i]->running_var, plain->norms[i]->running_var, 1e-4, 1e-5));
  }
  // Three batches at momentum 0.1 would leave about 73 % of the initial zeros in the mean.
  EXPECT_GT(plain->norms[0]->running_mean.abs().mean().item<double>(), 0.5);
}

TEST(NGramBag, ClassifierPoolsTheBagIntoOneLinearLayerAndHasNoLanguageModel) {
  config::Config cfg;
  cfg.model.backbone = "ngrams";
  cfg.model.emb_size = 8;
  cfg.model.ngram_buckets = 128;
  for (const std::string weighting : {"tfidf", "mean"}) {
    cfg.model.ngram_weighting = weighting;
    auto clf = nn::make_classifier(cfg.model, cfg.train, 30, 2);
    ASSERT_EQ(clf->head->linears.size(), 1U);
    EXPECT_EQ(clf->head->linears[0]->weight.sizes(), torch::IntArrayRef({2, 8}));
    EXPECT_TRUE(clf->head->norms.empty());
    EXPECT_EQ(clf->head->options.pooling(), weighting == "tfidf" ? nn::Pooling::kSum : nn::Pooling::kMean);
    // Padding does not change a document's logits.
    clf->eval();
    const auto a = clf->forward(torch::tensor({{3, 4, 5}}), torch::ones({1, 3}, torch::kBool));
    const auto b = clf->forward(torch::tensor({{3, 4, 5, 0, 0}}), torch::tensor({{1, 1, 1, 0, 0}}).to(torch::kBool));
    EXPECT_TRUE(torch::allclose(a, b, 1e-5, 1e-6)) << weighting;
  }
  EXPECT_THROW(nn::check_architecture(cfg, true), ConfigError);
  EXPECT_NO_THROW(nn::check_architecture(cfg, false));
}

}  // namespace
}  // namespace ulmfit
