#include "../test_helpers.h"
#include "ulmfit/text/markers.h"
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

TEST(Tokenizer, WordModelKeepsTheMostFrequentLowerCasedWords) {
  auto cfg = tiny_config("word");
  cfg.vocab_size = 5 + 5;
  const std::vector<std::string> docs = {"The film, the FILM!", "the plot. The end", "a film"};
  const auto tok = Tokenizer::train(cfg, docs, 2);
  EXPECT_EQ(tok.vocab_size(), 10);
  EXPECT_STREQ(tok.file_name(), "tokenizer.json");
  // the (4) > film (3) > then by name among the ones seen once or twice: "!" "," "." ...
  EXPECT_EQ(tok.piece(SpecialIds::kCount), "the");
  EXPECT_EQ(tok.piece(SpecialIds::kCount + 1), "film");
  EXPECT_EQ(tok.piece(SpecialIds::kPad), "[PAD]");
  EXPECT_EQ(tok.piece(SpecialIds::kUnk), "[UNK]");
  // Case folded, punctuation split off, a word outside the vocabulary unknown (never split).
  const auto ids = tok.encode("THE Film. Thefilm");
  ASSERT_EQ(ids.size(), 4u);
  EXPECT_EQ(ids[0], SpecialIds::kCount);
  EXPECT_EQ(ids[1], SpecialIds::kCount + 1);
  EXPECT_EQ(tok.piece(ids[2]), ".");
  EXPECT_EQ(ids[3], SpecialIds::kUnk);
  EXPECT_EQ(tok.decode(tok.encode("The film.")), "the film.");
  // min_count drops the rare words; the result is the same on any number of threads.
  cfg.vocab_size = 100;
  cfg.min_count = 3;
  const auto frequent = Tokenizer::train(cfg, docs, 1);
  EXPECT_EQ(frequent.vocab_size(), 5 + 2);
  cfg.min_count = 1;
  EXPECT_EQ(Tokenizer::train(cfg, docs, 1).serialized(), Tokenizer::train(cfg, docs, 3).serialized());
  // Saved as a tokenizer.json that loads back into the same tokenizer.
  testing::TempDir dir;
  const std::string path = (dir / "tokenizer.json").string();
  tok.save(path);
  const auto loaded = Tokenizer::load(path);
  EXPECT_EQ(loaded.encode("the plot, a film"), tok.encode("the plot, a film"));
}

TEST(Markers, CaseAndRepetitionAreMarkedAsFastaiDoes) {
  EXPECT_EQ(text::add_markers("The film was GREAT, sooooo good"), "xxmaj the film was xxup great, sxxrep 5 o good");
  EXPECT_EQ(text::add_markers("very very very good!!!!"), "xxwrep 3 very goodxxrep 4 !");
  EXPECT_EQ(text::add_markers("I saw it. Ça a ÉTÉ"), "xxmaj i saw it. xxmaj ça a xxup été");
  // Left alone: two repeats, three characters, mixed case, case that does not survive lower-casing.
  EXPECT_EQ(text::add_markers("no no... McDonald STRAßE"), "no no... McDonald STRAßE");
}

TEST(Markers, RemovingThemGivesBackTheTextExactly) {
  for (const std::string s :
       {"The film was GREAT, sooooo good", "A A A a a a!", "very very very", "1111 22222 x", "Ça ÉTÉ été ÉtÉ",
        "\"QUOTE\" (Paren) I", "aaaa bbbb AAAA", "ha ha ha ha ha. HA HA HA", "tab\tand  two  spaces", "ǅemal",
        "The The The", "xxx Xenon", "99999 bottles", ""}) {
    EXPECT_EQ(text::remove_markers(text::add_markers(s)), s) << s << " -> " << text::add_markers(s);
  }
  // Random text over an alphabet that makes every rule fire.
  std::mt19937 rng(5);
  const std::vector<std::string> alphabet = {"a", "A", "b", "B", "É", "é", " ", " ", "!", ".", "1", "o", "O", "ß", "-"};
  for (int n = 0; n < 3000; ++n) {
    std::string s;
    const int length = static_cast<int>(rng() % 30);
    for (int i = 0; i < length; ++i) {
      const auto& piece = alphabet[rng() % alphabet.size()];
      const int repeat = rng() % 4 == 0 ? static_cast<int>(rng() % 6) + 1 : 1;
      for (int r = 0; r < repeat; ++r) s += piece;
    }
    ASSERT_EQ(text::remove_markers(text::add_markers(s)), s) << s << " -> " << text::add_markers(s);
  }
}

TEST(Markers, ATokenizerTrainedWithThemKeepsThemAsPiecesAndDecodesBack) {
  auto cfg = tiny_config();
  cfg.vocab_size = 60;
  cfg.markers = true;
  auto docs = testing::tiny_documents(300);
  for (std::size_t i = 0; i < docs.size(); i += 3) docs[i][0] = static_cast<char>(std::toupper(docs[i][0]));
  // Digits and "!" in the text, so repeat counts are not unknown characters.
  for (int i = 0; i < 20; ++i) docs.push_back("the film got " + std::to_string(1234567890 + i) + " stars!");
  const auto tok = Tokenizer::train(cfg, docs, 2);
  // A marker word is one piece with its word-start mark, not a lone mark and
  // then the marker (two tokens for every capitalised word); inside a word
  // ("sxxrep 5 o") it is one piece without the mark.
  const std::string mark = "\u2581";
  const auto pieces = tok.encode_pieces("The film was GREAT");
  ASSERT_GE(pieces.size(), 4u);
  EXPECT_EQ(pieces[0], mark + "xxmaj");
  EXPECT_NE(std::find(pieces.begin(), pieces.end(), mark + "xxup"), pieces.end());
  const auto repeated = tok.encode_pieces("sooooo");
  EXPECT_NE(std::find(repeated.begin(), repeated.end(), "xxrep"), repeated.end());
  for (const std::string s : {"The film was GREAT.", "loved loved loved the music!!!!", "A scene."}) {
    EXPECT_EQ(tok.decode(tok.encode(s)), s);
  }
  // "The" and "the" share their pieces after the marker.
  const auto upper = tok.encode("The plot"), lower = tok.encode("the plot");
  EXPECT_EQ(std::vector<int>(upper.end() - static_cast<std::ptrdiff_t>(lower.size()), upper.end()), lower);
  // Saved and loaded, the model still applies them; one trained without them does not.
  testing::TempDir dir;
  tok.save((dir / "tokenizer.model").string());
  EXPECT_EQ(Tokenizer::load((dir / "tokenizer.model").string()).encode("The End"), tok.encode("The End"));
  EXPECT_EQ(shared_tokenizer().encode_pieces("The").front().find("xxmaj"), std::string::npos);
  auto word = tiny_config("word");
  word.markers = true;
  EXPECT_THROW(Tokenizer::train(word, docs, 1), ConfigError);
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
