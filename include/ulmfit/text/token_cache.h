#pragma once
/// Tokenised corpora: documents as token-id spans with labels, cached on disk
/// as binary files keyed by the input files (path, size, modification time),
/// the reader options and the tokenizer, and memory-mapped on reuse.
///
///   TokenizedCorpus train = load_tokenized(cfg.data.train, tok, cache_options(cfg));
///   for (std::size_t i = 0; i < train.size(); ++i) use(train.doc(i), train.label(i));
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ulmfit/config/config.h"
#include "ulmfit/text/tokenizer.h"
#include "ulmfit/util/files.h"

namespace ulmfit::text {

/// A document's token ids, owned by its TokenizedCorpus.
struct TokenSpan {
  const std::int32_t* data = nullptr;
  std::size_t size = 0;
  const std::int32_t* begin() const { return data; }
  const std::int32_t* end() const { return data + size; }
  std::int32_t operator[](std::size_t i) const { return data[i]; }
};

class TokenizedCorpus {
 public:
  /// An in-memory corpus (tests, predict input).
  static TokenizedCorpus from_documents(const std::vector<std::vector<int>>& docs,
                                        std::vector<std::int32_t> labels = {},
                                        std::vector<std::string> label_names = {});
  /// The documents at `indices`, copied into a new in-memory corpus.
  TokenizedCorpus subset(const std::vector<std::size_t>& indices) const;
  /// Maps a cache file; throws DataError when it is not a valid one.
  static TokenizedCorpus map_file(const std::string& path);

  std::size_t size() const { return count_; }
  TokenSpan doc(std::size_t i) const {
    return {tokens_ + offsets_[i], static_cast<std::size_t>(offsets_[i + 1] - offsets_[i])};
  }
  std::int32_t label(std::size_t i) const { return labels_[i]; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  std::size_t total_tokens() const { return static_cast<std::size_t>(offsets_[count_]); }
  bool from_cache() const { return from_cache_; }

  /// Writes the cache file format atomically.
  void write(const std::string& path, std::uint64_t key) const;

 private:
  TokenizedCorpus() = default;
  // Either mapped_ backs the pointers, or the owned vectors do.
  util::MappedFile mapped_;
  std::vector<std::uint64_t> owned_offsets_;
  std::vector<std::int32_t> owned_tokens_;
  std::vector<std::int32_t> owned_labels_;
  const std::uint64_t* offsets_ = nullptr;
  const std::int32_t* tokens_ = nullptr;
  const std::int32_t* labels_ = nullptr;
  std::size_t count_ = 0;
  std::vector<std::string> label_names_;
  bool from_cache_ = false;
};

struct TokenCacheOptions {
  std::string dir;          // empty = default_cache_dir()
  bool enabled = true;
  int threads = 1;          // encoding threads
  std::uint64_t seed = 0;   // picks a source's `limit` subset
};

/// $ULMFIT_CACHE, else $XDG_CACHE_HOME/ulmfit, else ~/.cache/ulmfit.
std::string default_cache_dir();

/// The cache key of a source read with a tokenizer.
std::uint64_t token_cache_key(const config::DataSource& source, const Tokenizer& tokenizer,
                              const std::vector<std::string>& fixed_labels, std::uint64_t seed);

/// Reads and tokenises a source, or maps its cached token ids. A corpus that
/// yields no tokens is a DataError.
TokenizedCorpus load_tokenized(const config::DataSource& source, const Tokenizer& tokenizer,
                               const TokenCacheOptions& options,
                               const std::vector<std::string>& fixed_labels = {});

}  // namespace ulmfit::text
