#include "../test_helpers.h"
#include "ulmfit/text/tokenizer.h"
#include "ulmfit/util/error.h"

namespace ulmfit {
namespace {

using text::SpecialIds;
using text::Tokenizer;

config::TokenizerConfig tiny_config(const std::string& type = "unigram") {
  config::TokenizerConfig c;
  c.vocab_size = 40;
  c.model_type = type;
  return c;
}

const Tokenizer& shared_tokenizer() {
  static const Tokenizer tok = Tokenizer::train(tiny_config(), testing::tiny_documents(300), 2);
  return tok;
}

TEST(Tokenizer, TrainsWithFixedSpecialIds) {
  const auto& tok = shared_tokenizer();
  EXPECT_EQ(tok.vocab_size(), 40);
  EXPECT_EQ(tok.piece(SpecialIds::kPad), "<pad>");
  EXPECT_EQ(tok.piece(SpecialIds::kUnk), "<unk>");
  EXPECT_EQ(tok.piece(SpecialIds::kBos), "<s>");
  EXPECT_EQ(tok.piece(SpecialIds::kEos), "</s>");
  EXPECT_EQ(tok.piece(SpecialIds::kMask), "<mask>");
}

TEST(Tokenizer, EncodeDecodeRoundTrip) {
  const auto& tok = shared_tokenizer();
  for (const std::string text : {"the film was great.", "loved the music and a scene."}) {
    const auto ids = tok.encode(text);
    ASSERT_FALSE(ids.empty());
    for (int id : ids) {
      EXPECT_GE(id, SpecialIds::kCount);
      EXPECT_LT(id, tok.vocab_size());
    }
    EXPECT_EQ(tok.decode(ids), text);
  }
  // Asking for more pieces than a tiny corpus supports gives what it supports.
  auto big = tiny_config();
  big.vocab_size = 500;
  EXPECT_LT(Tokenizer::train(big, testing::tiny_documents(300), 1).vocab_size(), 500);
  // The <mask> control symbol never comes out of plain text.
  for (int id : tok.encode("<mask> the film")) EXPECT_NE(id, SpecialIds::kMask);
  EXPECT_THROW(tok.decode({9999}), DataError);
}

TEST(Tokenizer, BpeModelAlsoTrains) {
  const auto tok = Tokenizer::train(tiny_config("bpe"), testing::tiny_documents(300), 1);
  EXPECT_EQ(tok.decode(tok.encode("the boring plot")), "the boring plot");
}

TEST(Tokenizer, BatchEncodingMatchesOneByOne) {
  const auto& tok = shared_tokenizer();
  const auto docs = testing::tiny_documents(500, 11);
  const auto batch = tok.encode_batch(docs, 2);
  ASSERT_EQ(batch.size(), docs.size());
  for (std::size_t i = 0; i < docs.size(); ++i) ASSERT_EQ(batch[i], tok.encode(docs[i])) << i;
}

TEST(Tokenizer, SaveLoadGivesTheSameModel) {
  testing::TempDir dir;
  const auto& tok = shared_tokenizer();
  const std::string path = (dir / "run/tokenizer.model").string();
  tok.save(path);
  const auto loaded = Tokenizer::load(path);
  EXPECT_EQ(loaded.fingerprint(), tok.fingerprint());
  EXPECT_EQ(loaded.encode("a great story."), tok.encode("a great story."));
}

TEST(Tokenizer, BadModelFilesAreCheckpointErrors) {
  testing::TempDir dir;
  EXPECT_THROW(Tokenizer::load((dir / "missing.model").string()), CheckpointError);
  const auto junk = testing::write_file(dir / "junk.model", "not a model at all");
  EXPECT_THROW(Tokenizer::load(junk.string()), CheckpointError);
  // A truncated model.
  const auto& tok = shared_tokenizer();
  const auto cut = testing::write_file(dir / "cut.model", tok.serialized().substr(0, 100));
  EXPECT_THROW(Tokenizer::load(cut.string()), CheckpointError);
}

TEST(Tokenizer, LongDocumentsAreSplitNotDropped) {
  auto cfg = tiny_config();
  cfg.max_sentence_length = 256;
  // One document of ~20 kB: the trainer would drop it whole without splitting.
  std::string big;
  for (const auto& d : testing::tiny_documents(400, 3)) big += d + " ";
  const auto tok = Tokenizer::train(cfg, {big}, 1);
  EXPECT_EQ(tok.vocab_size(), 40);
}

TEST(Tokenizer, EmptyCorpusIsAnError) {
  EXPECT_THROW(Tokenizer::train(tiny_config(), {}, 1), DataError);
}

}  // namespace
}  // namespace ulmfit
