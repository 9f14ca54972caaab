#include "ulmfit/text/tokenizer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "ulmfit/text/byte_level_bpe.h"
#include "ulmfit/text/markers.h"
#include "ulmfit/text/wordpiece.h"
#include "ulmfit/util/error.h"
#include "ulmfit/util/files.h"

namespace ulmfit::text {
namespace {

/// Feeds documents to the trainer, splitting any longer than the trainer's
/// sentence limit at spaces so no text is silently dropped.
class DocumentIterator : public sentencepiece::SentenceIterator {
 public:
  DocumentIterator(const std::vector<std::string>& docs, std::size_t max_bytes)
      : docs_(docs), max_bytes_(max_bytes) {
    advance();
  }
  bool done() const override { return done_; }
  void Next() override { advance(); }
  const std::string& value() const override { return current_; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  void advance() {
    while (true) {
      if (doc_ < docs_.size() && offset_ < docs_[doc_].size()) {
        const std::string& d = docs_[doc_];
        std::size_t end = std::min(d.size(), offset_ + max_bytes_);
        if (end < d.size()) {
          const std::size_t space = d.rfind(' ', end);
          if (space != std::string::npos && space > offset_) end = space;
          // Never cut inside a UTF-8 sequence.
          while (end > offset_ + 1 && (static_cast<unsigned char>(d[end]) & 0xC0) == 0x80) --end;
        }
        current_.assign(d, offset_, end - offset_);
        offset_ = end;
        while (offset_ < d.size() && d[offset_] == ' ') ++offset_;
        if (!current_.empty()) return;
        continue;
      }
      if (doc_ >= docs_.size()) {
        done_ = true;
        return;
      }
      ++doc_;
      offset_ = 0;
      if (doc_ >= docs_.size()) {
        done_ = true;
        return;
      }
    }
  }

  const std::vector<std::string>& docs_;
  std::size_t max_bytes_;
  std::size_t doc_ = 0;
  std::size_t offset_ = 0;
  std::string current_;
  bool done_ = false;
};

void check_status(const sentencepiece::util::Status& status, const std::string& what) {
  if (!status.ok()) throw DataError(what + ": " + status.ToString());
}


class SentencePieceModel final : public TokenizerModel {
 public:
  SentencePieceModel(const std::string& model_proto, const std::string& origin) : serialized_(model_proto) {
    const auto status = processor_.LoadFromSerializedProto(model_proto);
    if (!status.ok()) throw CheckpointError(origin + ": not a SentencePiece model (" + status.ToString() + ")");
    // A model trained with tokenizer.markers has the four marker words as
    // (user-defined) pieces of their own: the model itself says whether to
    // apply them. (Bare, without SentencePiece's word-start mark, they would
    // otherwise be pieces only if the training text were full of them.)
    markers_ = true;
    for (const char* word : kMarkerWords) markers_ = markers_ && processor_.PieceToId(word) != processor_.unk_id();
    const auto& p = processor_;
    if (p.pad_id() != SpecialIds::kPad || p.unk_id() != SpecialIds::kUnk || p.bos_id() != SpecialIds::kBos ||
        p.eos_id() != SpecialIds::kEos || p.PieceToId("<mask>") != SpecialIds::kMask) {
      throw CheckpointError(origin + ": tokenizer lacks the toolkit's special ids "
                            "(pad 0, unk 1, bos 2, eos 3, <mask> 4); train it with `ulmfit tokenizer train`");
    }
  }
  std::vector<int> encode(std::string_view text) const override {
    std::vector<int> ids;
    check_status(markers_ ? processor_.Encode(add_markers(text), &ids) : processor_.Encode(text, &ids),
                 "encoding failed");
    return ids;
  }
  std::vector<std::string> encode_pieces(std::string_view text) const override {
    std::vector<std::string> pieces;
    check_status(markers_ ? processor_.Encode(add_markers(text), &pieces) : processor_.Encode(text, &pieces),
                 "encoding failed");
    return pieces;
  }
  std::string decode(const std::vector<int>& ids) const override {
    std::string text;
    check_status(processor_.Decode(ids, &text), "decoding failed");
    return markers_ ? remove_markers(text) : text;
  }
  int vocab_size() const override { return processor_.GetPieceSize(); }
  const std::string& piece(int id) const override { return processor_.IdToPiece(id); }
  const char* file_name() const override { return "tokenizer.model"; }
  const std::string& serialized() const override { return serialized_; }

 private:
  sentencepiece::SentencePieceProcessor processor_;
  std::string serialized_;
  bool markers_ = false;
};

/// Where the toolkit's five special tokens sit among a Hugging Face
/// tokenizer's ids: `slots[s]` is the file's id for special s, or -1 when the
/// file has none (then it gets a new id after the file's `file_size`). The
/// special ids trade places with the toolkit's 0-4: a permutation, which
/// import applies to the embedding rows and export undoes.
class SpecialIdLayout {
 public:
  SpecialIdLayout(int file_size, const std::array<int, SpecialIds::kCount>& slots) : file_size_(file_size) {
    int appended = file_size;
    for (int original : slots) appended += original < 0 ? 1 : 0;
    to_original_.resize(static_cast<std::size_t>(appended));
    for (int i = 0; i < appended; ++i) to_original_[static_cast<std::size_t>(i)] = i;
    int next_new = file_size;
    for (int slot = 0; slot < SpecialIds::kCount; ++slot) {
      const int original = slots[static_cast<std::size_t>(slot)] >= 0 ? slots[static_cast<std::size_t>(slot)] : next_new++;
      const auto at = std::find(to_original_.begin(), to_original_.end(), original) - to_original_.begin();
      std::swap(to_original_[static_cast<std::size_t>(slot)], to_original_[static_cast<std::size_t>(at)]);
    }
    from_original_.resize(to_original_.size());
    for (std::size_t i = 0; i < to_original_.size(); ++i) {
      from_original_[static_cast<std::size_t>(to_original_[i])] = static_cast<int>(i);
    }
  }
  int size() const { return static_cast<int>(to_original_.size()); }
  int file_size() const { return file_size_; }
  int to_original(int id) const { return to_original_.at(static_cast<std::size_t>(id)); }
  /// File ids to toolkit ids, in place.
  void from_original(std::vector<int>& ids) const {
    for (auto& id : ids) id = from_original_[static_cast<std::size_t>(id)];
  }
  /// Toolkit ids to file ids, leaving out the specials the file does not have.
  std::vector<int> to_file(const std::vector<int>& ids) const {
    std::vector<int> out;
    out.reserve(ids.size());
    for (int id : ids) {
      const int original = to_original(id);
      if (original < file_size_) out.push_back(original);
    }
    return out;
  }

 private:
  int file_size_;
  std::vector<int> to_original_, from_original_;
};

/// WordPiece: [PAD] [UNK] [CLS] [SEP] [MASK] become the toolkit's pad, unk,
/// bos, eos and mask.
class WordPieceModel final : public TokenizerModel {
 public:
  WordPieceModel(WordPiece wordpiece, const std::string& origin)
      : wp_(std::move(wordpiece)), layout_(wp_.vocab_size(), slots(wp_, origin)) {}
  std::vector<int> encode(std::string_view text) const override {
    auto ids = wp_.encode(text);
    layout_.from_original(ids);
    return ids;
  }
  std::vector<std::string> encode_pieces(std::string_view text) const override { return wp_.encode_pieces(text); }
  std::string decode(const std::vector<int>& ids) const override { return wp_.decode(layout_.to_file(ids)); }
  int vocab_size() const override { return layout_.size(); }
  const std::string& piece(int id) const override { return wp_.piece(original_id(id)); }
  const char* file_name() const override { return "tokenizer.json"; }
  const std::string& serialized() const override { return wp_.tokenizer_json(); }
  int original_id(int id) const override { return layout_.to_original(id); }

 private:
  static std::array<int, SpecialIds::kCount> slots(const WordPiece& wp, const std::string& origin) {
    if (wp.vocab_size() <= SpecialIds::kCount) throw CheckpointError(origin + ": vocabulary too small");
    std::array<int, SpecialIds::kCount> out{};
    const char* specials[SpecialIds::kCount] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    for (int slot = 0; slot < SpecialIds::kCount; ++slot) {
      out[static_cast<std::size_t>(slot)] = wp.id_of(specials[slot]);
      if (out[static_cast<std::size_t>(slot)] < 0) {
        throw CheckpointError(origin + ": the vocabulary has no " + specials[slot] + " token");
      }
    }
    return out;
  }
  WordPiece wp_;
  SpecialIdLayout layout_;
};

/// GPT-2's byte-level BPE. Its only special token, <|endoftext|>, separates
/// documents, which is the toolkit's bos; pad, unk, eos and mask do not exist
/// in the file and take four new ids after it (import adds their embedding
/// rows, export leaves them out).
class ByteLevelBpeModel final : public TokenizerModel {
 public:
  ByteLevelBpeModel(ByteLevelBpe bpe, const std::string& origin)
      : bpe_(std::move(bpe)), layout_(bpe_.vocab_size(), slots(bpe_, origin)) {}
  std::vector<int> encode(std::string_view text) const override {
    auto ids = bpe_.encode(text);
    layout_.from_original(ids);
    return ids;
  }
  std::vector<std::string> encode_pieces(std::string_view text) const override {
    std::vector<std::string> out;
    for (int id : encode(text)) out.push_back(piece(id));
    return out;
  }
  std::string decode(const std::vector<int>& ids) const override {
    std::vector<int> kept;  // the toolkit's own specials are not text
    for (int id : ids) {
      if (id >= SpecialIds::kCount) kept.push_back(id);
    }
    return bpe_.decode(layout_.to_file(kept));
  }
  int vocab_size() const override { return layout_.size(); }
  int original_vocab_size() const override { return layout_.file_size(); }
  const std::string& piece(int id) const override {
    static const std::string kNew[SpecialIds::kCount] = {"<pad>", "<unk>", "<s>", "</s>", "<mask>"};
    const int original = original_id(id);
    return original < layout_.file_size() ? bpe_.piece(original) : kNew[id];
  }
  const char* file_name() const override { return "tokenizer.json"; }
  const std::string& serialized() const override { return bpe_.tokenizer_json(); }
  int original_id(int id) const override { return layout_.to_original(id); }

 private:
  static std::array<int, SpecialIds::kCount> slots(const ByteLevelBpe& bpe, const std::string& origin) {
    if (bpe.vocab_size() <= 256) throw CheckpointError(origin + ": vocabulary too small for byte-level BPE");
    return {-1, -1, bpe.id_of("<|endoftext|>"), -1, -1};
  }
  ByteLevelBpe bpe_;
  SpecialIdLayout layout_;
};

/// A Hugging Face tokenizer.json, by its model.type.
std::unique_ptr<TokenizerModel> tokenizer_from_json(const std::string& bytes, const std::string& origin) {
  std::string type;
  try {
    // Only model.type is read here and the model's own reader parses the file
    // again: keep no other value, so the vocabulary (most of the file) is not
    // built twice.
    using Event = nlohmann::json::parse_event_t;
    const auto only_model_type = [](int depth, Event event, const nlohmann::json& parsed) {
      if (event != Event::key) return true;
      return (depth == 1 && parsed == "model") || (depth == 2 && parsed == "type");
    };
    const auto j = nlohmann::json::parse(bytes, only_model_type);
    if (j.is_object() && j.contains("model") && j["model"].is_object() && j["model"].contains("type") &&
        j["model"]["type"].is_string()) {
      type = j["model"]["type"].get<std::string>();
    }
  } catch (const nlohmann::json::exception& e) {
    throw CheckpointError(origin + ": not valid JSON (" + e.what() + ")");
  }
  if (type == "WordPiece") return std::make_unique<WordPieceModel>(WordPiece::from_tokenizer_json(bytes, origin), origin);
  if (type == "BPE") return std::make_unique<ByteLevelBpeModel>(ByteLevelBpe::from_tokenizer_json(bytes, origin), origin);
  throw CheckpointError(origin + ": model.type " + (type.empty() ? std::string("(missing)") : type) +
                        " is not supported (WordPiece, byte-level BPE)");
}

}  // namespace

void parallel_for(std::size_t n, int threads,
                  const std::function<void(std::size_t, std::size_t)>& fn) {
  const std::size_t workers =
      std::max<std::size_t>(1, std::min<std::size_t>(static_cast<std::size_t>(std::max(threads, 1)), n));
  if (workers == 1) {
    if (n > 0) fn(0, n);
    return;
  }
  std::vector<std::thread> pool;
  std::exception_ptr first_error;
  std::mutex error_mutex;
  for (std::size_t w = 0; w < workers; ++w) {
    const std::size_t begin = n * w / workers;
    const std::size_t end = n * (w + 1) / workers;
    pool.emplace_back([&, begin, end] {
      try {
        fn(begin, end);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!first_error) first_error = std::current_exception();
      }
    });
  }
  for (auto& t : pool) t.join();
  if (first_error) std::rethrow_exception(first_error);
}

Tokenizer::Tokenizer(std::unique_ptr<TokenizerModel> model)
    : model_(std::move(model)), fingerprint_(util::fnv1a(model_->serialized())) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::train(const config::TokenizerConfig& config,
                           const std::vector<std::string>& documents, int threads) {
  if (documents.empty()) throw DataError("cannot train a tokenizer on an empty corpus");
  if (config.markers && config.model_type == "word") {
    throw ConfigError("tokenizer.markers: the word tokenizer lower-cases by itself; markers are for SentencePiece");
  }
  if (config.model_type == "word") {
    std::unordered_map<std::string, std::int64_t> counts;
    std::mutex counts_mutex;
    parallel_for(documents.size(), threads, [&](std::size_t begin, std::size_t end) {
      std::unordered_map<std::string, std::int64_t> block;
      for (std::size_t i = begin; i < end; ++i) {
        for_each_bert_word(bert_normalize(documents[i], BertNormalizerOptions{}), [&](const std::string& w) { ++block[w]; });
      }
      std::lock_guard<std::mutex> lock(counts_mutex);
      for (const auto& [word, n] : block) counts[word] += n;
    });
    return Tokenizer(std::make_unique<WordPieceModel>(
        WordPiece::from_word_counts(counts, config.vocab_size, config.min_count), "trained word vocabulary"));
  }
  std::unordered_map<std::string, std::string> args = {
      {"model_type", config.model_type},
      {"vocab_size", std::to_string(config.vocab_size)},
      {"character_coverage", std::to_string(config.character_coverage)},
      {"input_sentence_size", std::to_string(config.input_sentence_size)},
      {"shuffle_input_sentence", "true"},
      {"max_sentence_length", std::to_string(config.max_sentence_length)},
      {"num_threads", std::to_string(std::max(threads, 1))},
      {"pad_id", std::to_string(SpecialIds::kPad)},
      {"unk_id", std::to_string(SpecialIds::kUnk)},
      {"bos_id", std::to_string(SpecialIds::kBos)},
      {"eos_id", std::to_string(SpecialIds::kEos)},
      {"pad_piece", "<pad>"},
      {"unk_piece", "<unk>"},
      {"bos_piece", "<s>"},
      {"eos_piece", "</s>"},
      {"control_symbols", "<mask>"},
      // A small corpus may not support the asked size: take what it supports.
      {"hard_vocab_limit", "false"},
      {"minloglevel", "2"},
  };
  std::vector<std::string> marked;
  if (config.markers) {
    // Each marker is a piece twice: with SentencePiece's word-start mark
    // ("\u2581xxmaj", the usual case, a word of its own: one token, as in
    // fastai) and bare (xxrep inside a word, "sxxrep 5 o"). With the bare
    // form alone, every " xxmaj" cost two tokens, a lone word-start piece
    // and the marker: 9 % more tokens for the LM to predict on IMDB reviews
    // (202,554 against 186,411 on bench/fastai_comparison.sh's 500).
    std::string words;
    for (const char* w : kMarkerWords) words += (words.empty() ? "" : ",") + std::string("\u2581") + w + "," + w;
    args["user_defined_symbols"] = words;
    marked.resize(documents.size());
    parallel_for(documents.size(), threads, [&](std::size_t begin, std::size_t end) {
      for (std::size_t i = begin; i < end; ++i) marked[i] = add_markers(documents[i]);
    });
  }
  DocumentIterator it(config.markers ? marked : documents, static_cast<std::size_t>(config.max_sentence_length));
  std::string model;
  check_status(sentencepiece::SentencePieceTrainer::Train(args, &it, &model),
               "tokenizer training failed");
  return from_serialized(model, "trained tokenizer");
}

Tokenizer Tokenizer::from_serialized(const std::string& model_proto, const std::string& origin) {
  return Tokenizer(std::make_unique<SentencePieceModel>(model_proto, origin));
}

Tokenizer Tokenizer::load(const std::string& path) {
  std::string bytes;
  try {
    bytes = util::read_file(path);
  } catch (const DataError&) {
    throw CheckpointError(path + ": tokenizer model not found");
  }
  const auto name = std::filesystem::path(path).filename().string();
  if (name.size() >= 5 && name.compare(name.size() - 5, 5, ".json") == 0) {
    return Tokenizer(tokenizer_from_json(bytes, path));
  }
  if (name == "vocab.txt") {
    return Tokenizer(std::make_unique<WordPieceModel>(WordPiece::from_vocab_txt(bytes, true, path), path));
  }
  return from_serialized(bytes, path);
}

Tokenizer Tokenizer::load_from_run(const std::string& run_dir) {
  const auto json_file = std::filesystem::path(run_dir) / "tokenizer.json";
  if (std::filesystem::is_regular_file(json_file)) return load(json_file.string());
  return load((std::filesystem::path(run_dir) / "tokenizer.model").string());
}

Tokenizer Tokenizer::load_hugging_face(const std::string& model_dir) {
  const std::filesystem::path dir(model_dir);
  if (std::filesystem::is_regular_file(dir / "tokenizer.json")) return load((dir / "tokenizer.json").string());
  const auto vocab = dir / "vocab.txt";
  if (!std::filesystem::is_regular_file(vocab)) {
    if (std::filesystem::is_regular_file(dir / "vocab.json") && std::filesystem::is_regular_file(dir / "merges.txt")) {
      const auto origin = (dir / "vocab.json").string();
      return Tokenizer(std::make_unique<ByteLevelBpeModel>(
          ByteLevelBpe::from_vocab_and_merges(util::read_file(dir / "vocab.json"), util::read_file(dir / "merges.txt"),
                                              origin),
          origin));
    }
    throw CheckpointError(model_dir + ": no tokenizer.json, vocab.txt, or vocab.json with merges.txt");
  }
  bool lowercase = true;
  const auto config_file = dir / "tokenizer_config.json";
  if (std::filesystem::is_regular_file(config_file)) {
    try {
      const auto j = nlohmann::json::parse(util::read_file(config_file));
      if (j.contains("do_lower_case") && j["do_lower_case"].is_boolean()) lowercase = j["do_lower_case"].get<bool>();
    } catch (const nlohmann::json::exception& e) {
      throw CheckpointError(config_file.string() + ": not valid JSON (" + e.what() + ")");
    }
  }
  return Tokenizer(std::make_unique<WordPieceModel>(
      WordPiece::from_vocab_txt(util::read_file(vocab), lowercase, vocab.string()), vocab.string()));
}

void Tokenizer::save(const std::string& path) const { util::write_file_atomic(path, serialized()); }

void Tokenizer::save_into_run(const std::string& run_dir) const {
  save((std::filesystem::path(run_dir) / file_name()).string());
}

std::vector<int> Tokenizer::encode(std::string_view text) const { return model_->encode(text); }

std::vector<std::string> Tokenizer::encode_pieces(std::string_view text) const { return model_->encode_pieces(text); }

std::vector<std::vector<int>> Tokenizer::encode_batch(const std::vector<std::string>& texts,
                                                      int threads) const {
  std::vector<std::vector<int>> out(texts.size());
  // Interleaved blocks balance long and short documents across threads.
  constexpr std::size_t kBlock = 64;
  const std::size_t blocks = (texts.size() + kBlock - 1) / kBlock;
  std::atomic<std::size_t> next{0};
  parallel_for(static_cast<std::size_t>(std::max(threads, 1)), threads, [&](std::size_t, std::size_t) {
    for (std::size_t b = next++; b < blocks; b = next++) {
      const std::size_t end = std::min(texts.size(), (b + 1) * kBlock);
      for (std::size_t i = b * kBlock; i < end; ++i) out[i] = encode(texts[i]);
    }
  });
  return out;
}

std::string Tokenizer::decode(const std::vector<int>& ids) const {
  for (int id : ids) {
    if (id < 0 || id >= vocab_size()) {
      throw DataError("token id " + std::to_string(id) + " outside the vocabulary (size " +
                      std::to_string(vocab_size()) + ")");
    }
  }
  return model_->decode(ids);
}

int Tokenizer::vocab_size() const { return model_->vocab_size(); }

std::vector<std::int64_t> Tokenizer::original_ids() const {
  std::vector<std::int64_t> ids(static_cast<std::size_t>(vocab_size()));
  for (int i = 0; i < vocab_size(); ++i) ids[static_cast<std::size_t>(i)] = original_id(i);
  return ids;
}

const std::string& Tokenizer::piece(int id) const { return model_->piece(id); }

}  // namespace ulmfit::text
