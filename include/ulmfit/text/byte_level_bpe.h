#pragma once
/// GPT-2's tokenizer, read from a Hugging Face `tokenizer.json` (or a
/// `vocab.json` + `merges.txt` pair): special tokens matched in the raw text,
/// GPT-2's pre-tokenisation pattern (contractions, letters, numbers, other
/// symbols, whitespace; on PCRE2 with Unicode properties), every byte mapped
/// to a printable character, then merges applied lowest rank first. The ids
/// are the `tokenizers` library's, without its special-token template.
///
///   ByteLevelBpe bpe = ByteLevelBpe::from_tokenizer_json(util::read_file("tokenizer.json"), "tokenizer.json");
///   std::vector<int> ids = bpe.encode("Hello world");   // Hugging Face ids
///   std::string same = bpe.decode(ids);                  // "Hello world"
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ulmfit::text {

class ByteLevelBpe {
 public:
  /// CheckpointError naming `origin` and the field when the JSON is not a BPE
  /// model with GPT-2's byte-level pre-tokeniser.
  static ByteLevelBpe from_tokenizer_json(const std::string& json_text, const std::string& origin);
  /// vocab.json (token -> id) and merges.txt ("a b" a line, an optional
  /// "#version" first line); `<|endoftext|>` is special when present.
  static ByteLevelBpe from_vocab_and_merges(const std::string& vocab_json, const std::string& merges_txt,
                                            const std::string& origin);

  ByteLevelBpe(ByteLevelBpe&&) noexcept;
  ByteLevelBpe& operator=(ByteLevelBpe&&) noexcept;
  ~ByteLevelBpe();

  std::vector<int> encode(std::string_view text) const;
  /// The bytes back: pieces joined and unmapped, special tokens left out.
  std::string decode(const std::vector<int>& ids) const;

  /// One past the largest id (vocabulary and added tokens).
  int vocab_size() const { return static_cast<int>(pieces_.size()); }
  const std::string& piece(int id) const { return pieces_.at(static_cast<std::size_t>(id)); }
  /// The id of `token`, or -1.
  int id_of(const std::string& token) const;
  /// A tokenizer.json that loads back into this tokenizer (the original text
  /// when it was read from one).
  const std::string& tokenizer_json() const { return json_; }

 private:
  ByteLevelBpe();
  struct AddedToken {
    std::string content;
    int id;
    bool special;
  };
  struct Merge {
    int rank;
    int merged;
  };
  void add_merge(const std::string& left, const std::string& right, const std::string& origin);
  void finish(const std::string& origin);
  void append_piece(std::string_view piece, std::vector<int>& ids) const;
  void encode_plain(std::string_view text, std::vector<int>& ids) const;

  std::vector<std::string> pieces_;
  std::unordered_map<std::string, int> ids_;
  std::unordered_map<std::uint64_t, Merge> merges_;  // (left id, right id) -> rank and result
  std::vector<AddedToken> added_;                    // longest first
  std::vector<std::string> byte_chars_;              // byte -> its printable character (UTF-8)
  std::vector<int> byte_ids_;                        // byte -> the id of that character, or -1
  std::unordered_map<std::string, unsigned char> char_bytes_;  // inverse of byte_chars_
  bool add_prefix_space_ = false;
  bool ignore_merges_ = false;
  std::string json_;
  struct Regex;
  std::unique_ptr<Regex> regex_;  // GPT-2's pattern, compiled (PCRE2)
};

}  // namespace ulmfit::text
