#include "ulmfit/text/tokenizer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <unordered_map>

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

Tokenizer::Tokenizer() : processor_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::train(const config::TokenizerConfig& config,
                           const std::vector<std::string>& documents, int threads) {
  if (documents.empty()) throw DataError("cannot train a tokenizer on an empty corpus");
  const std::unordered_map<std::string, std::string> args = {
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
  DocumentIterator it(documents, static_cast<std::size_t>(config.max_sentence_length));
  std::string model;
  check_status(sentencepiece::SentencePieceTrainer::Train(args, &it, &model),
               "tokenizer training failed");
  return from_serialized(model, "trained tokenizer");
}

Tokenizer Tokenizer::from_serialized(const std::string& model_proto, const std::string& origin) {
  Tokenizer tok;
  const auto status = tok.processor_->LoadFromSerializedProto(model_proto);
  if (!status.ok()) throw CheckpointError(origin + ": not a SentencePiece model (" + status.ToString() + ")");
  const auto& p = *tok.processor_;
  if (p.pad_id() != SpecialIds::kPad || p.unk_id() != SpecialIds::kUnk ||
      p.bos_id() != SpecialIds::kBos || p.eos_id() != SpecialIds::kEos ||
      p.PieceToId("<mask>") != SpecialIds::kMask) {
    throw CheckpointError(origin + ": tokenizer lacks the toolkit's special ids "
                          "(pad 0, unk 1, bos 2, eos 3, <mask> 4); train it with `ulmfit tokenizer train`");
  }
  tok.serialized_ = model_proto;
  tok.fingerprint_ = util::fnv1a(model_proto);
  return tok;
}

Tokenizer Tokenizer::load(const std::string& path) {
  std::string bytes;
  try {
    bytes = util::read_file(path);
  } catch (const DataError&) {
    throw CheckpointError(path + ": tokenizer model not found");
  }
  return from_serialized(bytes, path);
}

void Tokenizer::save(const std::string& path) const { util::write_file_atomic(path, serialized_); }

std::vector<int> Tokenizer::encode(std::string_view text) const {
  std::vector<int> ids;
  check_status(processor_->Encode(text, &ids), "encoding failed");
  return ids;
}

std::vector<std::string> Tokenizer::encode_pieces(std::string_view text) const {
  std::vector<std::string> pieces;
  check_status(processor_->Encode(text, &pieces), "encoding failed");
  return pieces;
}

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
  std::string text;
  check_status(processor_->Decode(ids, &text), "decoding failed");
  return text;
}

int Tokenizer::vocab_size() const { return processor_->GetPieceSize(); }

const std::string& Tokenizer::piece(int id) const { return processor_->IdToPiece(id); }

}  // namespace ulmfit::text
