#pragma once
/// SentencePiece tokenizer with fixed special ids, trained by the toolkit and
/// saved into every run directory.
///
///   Tokenizer tok = Tokenizer::train(cfg.tokenizer, documents, /*threads=*/2);
///   tok.save(run / "tokenizer.model");
///   std::vector<int> ids = tok.encode("A fine film.");
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ulmfit/config/config.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace ulmfit::text {

/// Ids every tokenizer of the toolkit reserves, so models and batches agree.
struct SpecialIds {
  static constexpr int kPad = 0;
  static constexpr int kUnk = 1;
  static constexpr int kBos = 2;
  static constexpr int kEos = 3;
  static constexpr int kMask = 4;  // masked-LM objective
  static constexpr int kCount = 5;
};

class Tokenizer {
 public:
  /// Trains on `documents` (sampled down to config.input_sentence_size).
  static Tokenizer train(const config::TokenizerConfig& config,
                         const std::vector<std::string>& documents, int threads);
  /// Loads a saved model; throws CheckpointError when it is missing or not a
  /// SentencePiece model, or lacks the toolkit's special ids.
  static Tokenizer load(const std::string& path);
  static Tokenizer from_serialized(const std::string& model_proto, const std::string& origin);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  /// Writes the model atomically.
  void save(const std::string& path) const;

  std::vector<int> encode(std::string_view text) const;
  std::vector<std::string> encode_pieces(std::string_view text) const;
  /// Encodes many documents on `threads` threads; output order = input order.
  std::vector<std::vector<int>> encode_batch(const std::vector<std::string>& texts,
                                             int threads) const;
  std::string decode(const std::vector<int>& ids) const;

  int vocab_size() const;
  const std::string& piece(int id) const;
  /// Hash of the serialized model: names caches built with this tokenizer.
  std::uint64_t fingerprint() const { return fingerprint_; }
  const std::string& serialized() const { return serialized_; }

 private:
  Tokenizer();
  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
  std::string serialized_;
  std::uint64_t fingerprint_ = 0;
};

/// Runs fn(begin, end) over [0, n) split into contiguous blocks on `threads`
/// threads; the first exception thrown is rethrown.
void parallel_for(std::size_t n, int threads,
                  const std::function<void(std::size_t, std::size_t)>& fn);

}  // namespace ulmfit::text
