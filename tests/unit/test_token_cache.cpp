#include <thread>

#include "../test_helpers.h"
#include "ulmfit/text/token_cache.h"
#include "ulmfit/util/error.h"

namespace ulmfit {
namespace {

using text::TokenCacheOptions;

class TokenCache : public ::testing::Test {
 protected:
  void SetUp() override {
    config::TokenizerConfig cfg;
    cfg.vocab_size = 40;
    tokenizer_ = std::make_unique<text::Tokenizer>(
        text::Tokenizer::train(cfg, testing::tiny_documents(300), 1));
    std::string lines;
    for (const auto& d : testing::tiny_documents(50, 5)) lines += d + "\n";
    source_.path = {testing::write_file(dir_ / "corpus.txt", lines).string()};
    source_.format = "text";
    options_.dir = (dir_ / "cache").string();
    options_.threads = 2;
  }

  std::vector<std::vector<std::int32_t>> all_docs(const text::TokenizedCorpus& c) {
    std::vector<std::vector<std::int32_t>> out;
    for (std::size_t i = 0; i < c.size(); ++i) out.emplace_back(c.doc(i).begin(), c.doc(i).end());
    return out;
  }

  testing::TempDir dir_;
  std::unique_ptr<text::Tokenizer> tokenizer_;
  config::DataSource source_;
  TokenCacheOptions options_;
};

TEST_F(TokenCache, SecondLoadHitsTheCacheWithIdenticalTokens) {
  const auto first = text::load_tokenized(source_, *tokenizer_, options_);
  EXPECT_FALSE(first.from_cache());
  EXPECT_EQ(first.size(), 50u);
  const auto second = text::load_tokenized(source_, *tokenizer_, options_);
  EXPECT_TRUE(second.from_cache());
  EXPECT_EQ(all_docs(second), all_docs(first));
  EXPECT_EQ(second.total_tokens(), first.total_tokens());
  // Document 0's ids are what the tokenizer makes of its text.
  const auto expected = tokenizer_->encode(testing::tiny_documents(50, 5)[0]);
  EXPECT_EQ(all_docs(second)[0], std::vector<std::int32_t>(expected.begin(), expected.end()));
}

TEST_F(TokenCache, ChangedInputInvalidatesTheCache) {
  const auto first = text::load_tokenized(source_, *tokenizer_, options_);
  testing::write_file(source_.path[0], "the film was great.\nthe plot was boring.\n");
  const auto second = text::load_tokenized(source_, *tokenizer_, options_);
  EXPECT_FALSE(second.from_cache());
  EXPECT_EQ(second.size(), 2u);
  EXPECT_TRUE(text::load_tokenized(source_, *tokenizer_, options_).from_cache());
}

TEST_F(TokenCache, ReaderOptionsAndTokenizerArePartOfTheKey) {
  const auto key = text::token_cache_key(source_, *tokenizer_, {}, 0);
  auto other = source_;
  other.clean_html = false;
  EXPECT_NE(text::token_cache_key(other, *tokenizer_, {}, 0), key);
  config::TokenizerConfig cfg;
  cfg.vocab_size = 30;
  const auto tok2 = text::Tokenizer::train(cfg, testing::tiny_documents(300), 1);
  EXPECT_NE(text::token_cache_key(source_, tok2, {}, 0), key);
  EXPECT_EQ(text::token_cache_key(source_, *tokenizer_, {}, 0), key);
}

TEST_F(TokenCache, CorruptCacheFileIsRebuilt) {
  text::load_tokenized(source_, *tokenizer_, options_);
  const auto key = text::token_cache_key(source_, *tokenizer_, {}, 0);
  const auto path = std::filesystem::path(options_.dir) / ("tokens-" + util::to_hex(key) + ".bin");
  ASSERT_TRUE(std::filesystem::exists(path));
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 7);
  EXPECT_THROW(text::TokenizedCorpus::map_file(path.string()), DataError);
  const auto rebuilt = text::load_tokenized(source_, *tokenizer_, options_);
  EXPECT_FALSE(rebuilt.from_cache());
  EXPECT_TRUE(text::load_tokenized(source_, *tokenizer_, options_).from_cache());
}

TEST_F(TokenCache, LabelsSurviveTheCache) {
  testing::write_file(dir_ / "f/pos/a.txt", "the film was great.");
  testing::write_file(dir_ / "f/neg/b.txt", "the plot was boring.");
  config::DataSource folder;
  folder.path = {(dir_ / "f").string()};
  folder.format = "folder";
  text::load_tokenized(folder, *tokenizer_, options_);
  const auto cached = text::load_tokenized(folder, *tokenizer_, options_);
  ASSERT_TRUE(cached.from_cache());
  EXPECT_EQ(cached.label_names(), (std::vector<std::string>{"neg", "pos"}));
  EXPECT_EQ(cached.label(0), 0);
  EXPECT_EQ(cached.label(1), 1);
}

TEST_F(TokenCache, DisabledCacheWritesNothing) {
  options_.enabled = false;
  EXPECT_FALSE(text::load_tokenized(source_, *tokenizer_, options_).from_cache());
  EXPECT_FALSE(std::filesystem::exists(options_.dir));
}

}  // namespace
}  // namespace ulmfit
