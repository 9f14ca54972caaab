// libFuzzer target: the Hugging Face tokenizer readers and encoders. The
// first byte picks the mode:
//   0: the rest is a tokenizer.json, read as WordPiece; then a fixed text is encoded
//   1: the same for byte-level BPE
//   2: the rest is text for a small byte-level BPE built here (every byte in
//      its alphabet, a few merges): decode(encode(text)) must give the bytes back
//   3: the rest is text for a small WordPiece built here: every id in range
//   4: the rest is text for the case and repetition markers: removing them
//      must give the text back (valid UTF-8 that holds no marker word itself)
// A rejected tokenizer must be a CheckpointError; anything else escaping, an
// id outside the vocabulary, a lossy BPE round trip, or a crash is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "ulmfit/text/byte_level_bpe.h"
#include "ulmfit/text/markers.h"
#include "ulmfit/text/wordpiece.h"
#include "ulmfit/util/error.h"

namespace {
using ulmfit::text::ByteLevelBpe;
using ulmfit::text::WordPiece;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_tokenizers: %s\n", what);
  std::abort();
}

template <class Tokenizer>
void check_ids(const Tokenizer& tok, const std::vector<int>& ids) {
  for (int id : ids) {
    if (id < 0 || id >= tok.vocab_size()) fail("an id outside the vocabulary");
  }
}

std::string utf8(std::uint32_t c) {
  std::string out;
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
  return out;
}

/// GPT-2's byte alphabet, written out independently of the implementation,
/// and merges that make " the", "th", "he", "in" and "ing".
const ByteLevelBpe& small_bpe() {
  static const ByteLevelBpe bpe = [] {
    nlohmann::json vocab = nlohmann::json::object();
    std::uint32_t next = 256;
    for (std::uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      vocab[utf8(printable ? b : next++)] = static_cast<int>(b);
    }
    const std::string space = utf8(256 + 32);  // the byte ' ' maps to U+0120
    const std::vector<std::pair<std::string, std::string>> merges = {
        {"t", "h"}, {"h", "e"}, {"th", "e"}, {space, "the"}, {"i", "n"}, {"in", "g"}};
    std::string merges_txt = "#version: 0.2\n";
    int id = 256;
    for (const auto& [a, b] : merges) {
      if (!vocab.contains(a + b)) vocab[a + b] = id++;
      merges_txt += a + " " + b + "\n";
    }
    vocab["<|endoftext|>"] = id;
    return ByteLevelBpe::from_vocab_and_merges(vocab.dump(), merges_txt, "fuzz");
  }();
  return bpe;
}

const WordPiece& small_wordpiece() {
  static const WordPiece wp = WordPiece::from_vocab_txt(
      "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\nfilm\n##s\nwas\ngood\n##ing\n!\n,\n.\na\nb\nc\n##a\n##b\n", true, "fuzz");
  return wp;
}

const char kText[] = "The films were good, weren't they? Ça va: 10/10 \xf0\x9f\x98\x8d [SEP] <|endoftext|>";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const int mode = data[0] % 5;
  const std::string rest(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    if (mode == 0) {
      const auto wp = WordPiece::from_tokenizer_json(rest, "fuzz.json");
      const auto ids = wp.encode(kText);
      check_ids(wp, ids);
      wp.decode(ids);
    } else if (mode == 1) {
      const auto bpe = ByteLevelBpe::from_tokenizer_json(rest, "fuzz.json");
      const auto ids = bpe.encode(kText);
      check_ids(bpe, ids);
      bpe.decode(ids);
    } else if (mode == 2) {
      const auto& bpe = small_bpe();
      const auto ids = bpe.encode(rest);
      check_ids(bpe, ids);
      // <|endoftext|> is special: decoding leaves it out, so compare without it.
      std::string expected = rest;
      // One left-to-right pass, as the tokenizer matches: "<|en<|endoftext|>doftext|>" decodes to "<|endoftext|>".
      for (auto at = expected.find("<|endoftext|>"); at != std::string::npos; at = expected.find("<|endoftext|>", at)) {
        expected.erase(at, 13);
      }
      if (bpe.decode(ids) != expected) fail("byte-level BPE lost bytes in a round trip");
    } else if (mode == 4) {
      bool literal = false;
      for (const char* word : ulmfit::text::kMarkerWords) literal = literal || rest.find(word) != std::string::npos;
      const auto marked = ulmfit::text::add_markers(rest);
      if (!literal && ulmfit::text::remove_markers(marked) != rest) fail("removing the markers did not give the text back");
    } else {
      const auto& wp = small_wordpiece();
      const auto ids = wp.encode(rest);
      check_ids(wp, ids);
      wp.decode(ids);
    }
  } catch (const ulmfit::CheckpointError&) {
    if (mode >= 2) fail("the built-in tokenizer refused text");
  }
  return 0;
}
