#pragma once
/// BERT's tokenizer, read from a Hugging Face `tokenizer.json` (or a
/// `vocab.txt`): the BertNormalizer (clean text, CJK padding, accent
/// stripping, lower case), the BertPreTokenizer (whitespace and punctuation)
/// and greedy longest-match WordPiece with `##` continuations, giving the
/// same ids as the `tokenizers` library without its special-token template.
///
///   WordPiece wp = WordPiece::from_tokenizer_json(util::read_file("tokenizer.json"), "tokenizer.json");
///   std::vector<int> ids = wp.encode("Un film très réussi");   // Hugging Face ids
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ulmfit::text {

struct BertNormalizerOptions {
  bool clean_text = true;
  bool handle_chinese_chars = true;
  bool strip_accents = true;  // tokenizer.json's null follows lowercase
  bool lowercase = true;
};

/// The normalised text (UTF-8) that WordPiece sees.
std::string bert_normalize(std::string_view text, const BertNormalizerOptions& options);

/// BERT's pre-tokeniser: calls `fn` with each word of normalised text, split
/// at white space and around every punctuation character.
void for_each_bert_word(const std::string& normal, const std::function<void(const std::string&)>& fn);

class WordPiece {
 public:
  /// CheckpointError naming `origin` and the field when the JSON is not a
  /// WordPiece tokenizer with BERT's normaliser and pre-tokeniser.
  static WordPiece from_tokenizer_json(const std::string& json_text, const std::string& origin);
  /// A word-level vocabulary (the `word` tokenizer) from the counts of the
  /// words for_each_bert_word found in bert_normalize()d text: the
  /// `vocab_size` - 5 most frequent words seen at least `min_count` times
  /// after [PAD] [UNK] [CLS] [SEP] [MASK]. With no `##` pieces, WordPiece maps
  /// every other word to [UNK], so this is a word-level tokenizer that any
  /// BERT tokenizer reader loads.
  static WordPiece from_word_counts(const std::unordered_map<std::string, std::int64_t>& counts, int vocab_size,
                                    int min_count);
  /// One token a line, ids in line order; `lowercase` as tokenizer_config.json's do_lower_case.
  static WordPiece from_vocab_txt(const std::string& text, bool lowercase, const std::string& origin);

  std::vector<int> encode(std::string_view text) const;
  std::vector<std::string> encode_pieces(std::string_view text) const;
  /// Joins pieces (`##` glued to the previous one), leaving out special tokens,
  /// with the tokenizers library's clean-up of spaces before punctuation.
  std::string decode(const std::vector<int>& ids) const;

  int vocab_size() const { return static_cast<int>(pieces_.size()); }
  const std::string& piece(int id) const { return pieces_.at(static_cast<std::size_t>(id)); }
  /// The id of `token`, or -1.
  int id_of(const std::string& token) const;
  /// A tokenizer.json that loads back into this tokenizer (the original text
  /// when it was read from one).
  const std::string& tokenizer_json() const { return json_; }

 private:
  struct AddedToken {
    std::string content;
    int id;
  };
  void append_word(const std::string& word, std::vector<int>& ids) const;
  void finish(const std::string& origin);

  std::vector<std::string> pieces_;
  std::unordered_map<std::string, int> ids_;
  std::vector<AddedToken> added_;  // special tokens matched in the raw text
  BertNormalizerOptions normalizer_;
  std::string continuation_ = "##";
  std::string unk_token_ = "[UNK]";
  int unk_id_ = -1;
  std::size_t max_word_chars_ = 100;
  std::string json_;
};

}  // namespace ulmfit::text
