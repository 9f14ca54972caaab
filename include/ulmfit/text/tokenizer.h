#pragma once
/// A run's tokenizer: a SentencePiece model the toolkit trains, or a Hugging
/// Face tokenizer (tokenizer.json: BERT's WordPiece or GPT-2's byte-level BPE)
/// that came with an imported model.
/// Either way it is saved inside the run, and its ids put the toolkit's five
/// special tokens at 0-4 (SpecialIds), so batches, masks and models agree.
///
///   Tokenizer tok = Tokenizer::train(cfg.tokenizer, documents, /*threads=*/2);
///   tok.save_into_run("runs/lm");                 // runs/lm/tokenizer.model
///   Tokenizer same = Tokenizer::load_from_run("runs/lm");
///   std::vector<int> ids = tok.encode("A fine film.");
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ulmfit/config/config.h"

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

/// One tokenizer implementation. Ids are the toolkit's (specials at 0-4).
class TokenizerModel {
 public:
  virtual ~TokenizerModel() = default;
  virtual std::vector<int> encode(std::string_view text) const = 0;
  virtual std::vector<std::string> encode_pieces(std::string_view text) const = 0;
  virtual std::string decode(const std::vector<int>& ids) const = 0;
  virtual int vocab_size() const = 0;
  virtual const std::string& piece(int id) const = 0;
  /// The file it is saved as inside a run: tokenizer.model or tokenizer.json.
  virtual const char* file_name() const = 0;
  /// That file's bytes.
  virtual const std::string& serialized() const = 0;
  /// The id the tokenizer's own file gives toolkit id `id` (the identity for
  /// SentencePiece; WordPiece moves [PAD] [UNK] [CLS] [SEP] [MASK] to 0-4).
  virtual int original_id(int id) const { return id; }
  /// How many ids the tokenizer's own file has: original_id(i) at or above
  /// it are special tokens the toolkit added (GPT-2's BPE has no pad, unk,
  /// eos or mask).
  virtual int original_vocab_size() const { return vocab_size(); }
};

class Tokenizer {
 public:
  /// Trains on `documents` (sampled down to config.input_sentence_size).
  static Tokenizer train(const config::TokenizerConfig& config,
                         const std::vector<std::string>& documents, int threads);
  /// Loads a saved model: a Hugging Face tokenizer.json or vocab.txt (by name),
  /// else a SentencePiece model; CheckpointError when it is missing, malformed,
  /// or lacks the toolkit's special ids.
  static Tokenizer load(const std::string& path);
  /// The tokenizer saved inside a run directory (tokenizer.json or tokenizer.model).
  static Tokenizer load_from_run(const std::string& run_dir);
  /// The tokenizer of a Hugging Face model directory: tokenizer.json, else
  /// vocab.txt (WordPiece, with tokenizer_config.json's do_lower_case), else
  /// vocab.json + merges.txt (byte-level BPE).
  static Tokenizer load_hugging_face(const std::string& model_dir);
  static Tokenizer from_serialized(const std::string& model_proto, const std::string& origin);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  /// Writes the model atomically.
  void save(const std::string& path) const;
  /// Writes it into a run directory under its own file name.
  void save_into_run(const std::string& run_dir) const;

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
  const std::string& serialized() const { return model_->serialized(); }
  const char* file_name() const { return model_->file_name(); }
  /// See TokenizerModel::original_id.
  int original_id(int id) const { return model_->original_id(id); }
  /// See TokenizerModel::original_vocab_size.
  int original_vocab_size() const { return model_->original_vocab_size(); }
  /// original_id of every toolkit id, in toolkit order (how import and export
  /// permute embedding rows).
  std::vector<std::int64_t> original_ids() const;

 private:
  explicit Tokenizer(std::unique_ptr<TokenizerModel> model);
  std::unique_ptr<TokenizerModel> model_;
  std::uint64_t fingerprint_ = 0;
};

/// Runs fn(begin, end) over [0, n) split into contiguous blocks on `threads`
/// threads; the first exception thrown is rethrown.
void parallel_for(std::size_t n, int threads,
                  const std::function<void(std::size_t, std::size_t)>& fn);

}  // namespace ulmfit::text
