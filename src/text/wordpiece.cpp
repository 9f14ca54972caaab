#include "ulmfit/text/wordpiece.h"

#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <nlohmann/json.hpp>

#include "ulmfit/util/error.h"
#include "ulmfit/util/json_fields.h"
#include "ulmfit/util/utf8.h"

namespace ulmfit::text {
namespace {
using nlohmann::json;

// Rust's char::is_whitespace (the Unicode White_Space property), which the
// tokenizers library uses; utf8proc has categories but not this property.
bool is_white_space(utf8proc_int32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// "Other" (Cc, Cf, Cn, Co, Cs) apart from tab and the line breaks: removed by clean_text.
bool is_control(utf8proc_int32_t c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CS:
      return true;
    default:
      return false;
  }
}

bool is_punctuation(utf8proc_int32_t c) {
  if (c < 0x80) return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
  switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_PC:
    case UTF8PROC_CATEGORY_PD:
    case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE:
    case UTF8PROC_CATEGORY_PI:
    case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
      return true;
    default:
      return false;
  }
}

// The CJK Unified Ideograph blocks that BERT surrounds with spaces.
bool is_chinese_char(utf8proc_int32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

}  // namespace

void for_each_bert_word(const std::string& normal, const std::function<void(const std::string&)>& fn) {
  std::string word;
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(normal.data());
  auto left = static_cast<utf8proc_ssize_t>(normal.size());
  auto flush = [&] {
    if (!word.empty()) fn(word);
    word.clear();
  };
  while (left > 0) {
    utf8proc_int32_t c = 0;
    auto n = utf8proc_iterate(p, left, &c);
    if (n <= 0) {  // not UTF-8 (bert_normalize's output always is): one byte, replaced
      c = 0xFFFD;
      n = 1;
    }
    if (is_white_space(c)) {
      flush();
    } else if (is_punctuation(c)) {
      flush();
      word.assign(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n));
      flush();
    } else {
      word.append(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n));
    }
    p += n;
    left -= n;
  }
  flush();
}

std::string bert_normalize(std::string_view text, const BertNormalizerOptions& o) {
  std::vector<utf8proc_int32_t> cps = util::decode_utf8(text);
  std::vector<utf8proc_int32_t> next;
  next.reserve(cps.size());
  if (o.clean_text) {
    for (auto c : cps) {
      if (c == 0 || c == 0xFFFD || is_control(c)) continue;
      next.push_back(is_white_space(c) ? ' ' : c);
    }
    cps.swap(next);
    next.clear();
  }
  if (o.handle_chinese_chars) {
    for (auto c : cps) {
      if (is_chinese_char(c)) {
        next.insert(next.end(), {' ', c, ' '});
      } else {
        next.push_back(c);
      }
    }
    cps.swap(next);
    next.clear();
  }
  if (o.strip_accents) {
    // NFD, then drop the nonspacing marks. The canonical reordering of marks
    // that full NFD does cannot matter: every reordered mark is dropped.
    std::array<utf8proc_int32_t, 32> buf{};
    for (auto c : cps) {
      utf8proc_int32_t last = 0;
      const auto n = utf8proc_decompose_char(c, buf.data(), static_cast<utf8proc_ssize_t>(buf.size()),
                                             UTF8PROC_DECOMPOSE, &last);
      if (n < 0 || n > static_cast<utf8proc_ssize_t>(buf.size())) {
        next.push_back(c);
        continue;
      }
      for (utf8proc_ssize_t i = 0; i < n; ++i) {
        if (utf8proc_category(buf[static_cast<std::size_t>(i)]) != UTF8PROC_CATEGORY_MN) {
          next.push_back(buf[static_cast<std::size_t>(i)]);
        }
      }
    }
    cps.swap(next);
    next.clear();
  }
  std::string out;
  out.reserve(cps.size());
  for (auto c : cps) util::append_utf8(o.lowercase ? utf8proc_tolower(c) : c, out);
  return out;
}

WordPiece WordPiece::from_tokenizer_json(const std::string& json_text, const std::string& origin) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::exception& e) {
    throw CheckpointError(origin + ": not valid JSON (" + e.what() + ")");
  }
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object()) {
    throw CheckpointError(origin + ": has no model object");
  }
  const auto& model = j["model"];
  const std::string type = json_fields::string(model, "type", "", origin, "model");
  if (type != "WordPiece") {
    throw CheckpointError(origin + ": model.type " + (type.empty() ? "(none)" : type) +
                          " is not supported here (this tokenizer reads WordPiece)");
  }
  WordPiece wp;
  const auto& vocab = json_fields::member(model, "vocab");
  if (!vocab.is_object() || vocab.empty()) {
    throw CheckpointError(origin + ": model.vocab must be a non-empty object of token -> id");
  }
  wp.pieces_.assign(vocab.size(), std::string());
  std::vector<bool> seen(vocab.size(), false);
  for (const auto& [token, id] : vocab.items()) {
    if (!id.is_number_integer() || id.get<std::int64_t>() < 0 || id.get<std::uint64_t>() >= wp.pieces_.size() ||
        seen[id.get<std::size_t>()]) {
      throw CheckpointError(origin + ": model.vocab." + token + ": ids must be 0..size-1, each once");
    }
    seen[id.get<std::size_t>()] = true;
    wp.pieces_[id.get<std::size_t>()] = token;
  }
  wp.unk_token_ = json_fields::string(model, "unk_token", "[UNK]", origin, "model");
  wp.continuation_ = json_fields::string(model, "continuing_subword_prefix", "##", origin, "model");
  wp.max_word_chars_ =
      static_cast<std::size_t>(json_fields::count(model, "max_input_chars_per_word", 100, 1 << 20, origin, "model"));

  const auto& norm = json_fields::member(j, "normalizer");
  if (!norm.is_null()) {
    const std::string ntype = json_fields::string(norm, "type", "", origin, "normalizer");
    if (ntype != "BertNormalizer") {
      throw CheckpointError(origin + ": normalizer.type " + ntype + " is not supported (BertNormalizer is)");
    }
    wp.normalizer_.clean_text = json_fields::boolean(norm, "clean_text", true, origin, "normalizer");
    wp.normalizer_.handle_chinese_chars = json_fields::boolean(norm, "handle_chinese_chars", true, origin, "normalizer");
    wp.normalizer_.lowercase = json_fields::boolean(norm, "lowercase", true, origin, "normalizer");
    wp.normalizer_.strip_accents =
        json_fields::boolean(norm, "strip_accents", wp.normalizer_.lowercase, origin, "normalizer");
  } else {
    wp.normalizer_ = {false, false, false, false};
  }
  const auto& pre = json_fields::member(j, "pre_tokenizer");
  const std::string ptype = json_fields::string(pre, "type", "", origin, "pre_tokenizer");
  if (ptype != "BertPreTokenizer") {
    throw CheckpointError(origin + ": pre_tokenizer.type " + (ptype.empty() ? "(none)" : ptype) +
                          " is not supported (BertPreTokenizer is)");
  }
  const auto& added = json_fields::member(j, "added_tokens");
  if (added.is_array()) {
    for (const auto& t : added) {
      // Tokens marked `normalized` would be matched after normalisation; BERT's are all raw.
      const auto content = json_fields::string(t, "content", "", origin, "added_tokens[]");
      const auto id = json_fields::count(t, "id", -1, 1 << 24, origin, "added_tokens[]");
      if (json_fields::boolean(t, "normalized", false, origin, "added_tokens[]") || content.empty() || id < 0) continue;
      wp.added_.push_back({content, static_cast<int>(id)});
    }
  }
  wp.json_ = json_text;
  wp.finish(origin);
  return wp;
}

WordPiece WordPiece::from_word_counts(const std::unordered_map<std::string, std::int64_t>& counts, int vocab_size,
                                      int min_count) {
  std::vector<std::pair<std::string, std::int64_t>> words;
  for (const auto& [word, n] : counts) {
    if (n >= min_count) words.emplace_back(word, n);
  }
  // Most frequent first; ties alphabetical, so the vocabulary does not depend on the thread count.
  std::sort(words.begin(), words.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  std::string vocab_txt = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";
  const std::size_t room = static_cast<std::size_t>(std::max(vocab_size - 5, 0));
  for (std::size_t i = 0; i < std::min(room, words.size()); ++i) vocab_txt += words[i].first + "\n";
  vocab_txt.pop_back();
  return from_vocab_txt(vocab_txt, /*lowercase=*/true, "trained word vocabulary");
}

WordPiece WordPiece::from_vocab_txt(const std::string& text, bool lowercase, const std::string& origin) {
  WordPiece wp;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    wp.pieces_.push_back(line);
    start = end + 1;
  }
  if (wp.pieces_.empty()) throw CheckpointError(origin + ": empty vocabulary");
  wp.normalizer_ = {true, true, lowercase, lowercase};
  for (const char* special : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) {
    const auto it = std::find(wp.pieces_.begin(), wp.pieces_.end(), special);
    if (it != wp.pieces_.end()) wp.added_.push_back({special, static_cast<int>(it - wp.pieces_.begin())});
  }
  // The same tokenizer written as a tokenizer.json, so a run holds one format.
  json vocab = json::object();
  for (std::size_t i = 0; i < wp.pieces_.size(); ++i) vocab[wp.pieces_[i]] = i;
  json added = json::array();
  for (const auto& a : wp.added_) {
    added.push_back({{"id", a.id}, {"content", a.content}, {"special", true}, {"single_word", false},
                     {"lstrip", false}, {"rstrip", false}, {"normalized", false}});
  }
  const json j = {{"version", "1.0"},
                  {"truncation", nullptr},
                  {"padding", nullptr},
                  {"added_tokens", added},
                  {"normalizer",
                   {{"type", "BertNormalizer"}, {"clean_text", true}, {"handle_chinese_chars", true},
                    {"strip_accents", nullptr}, {"lowercase", lowercase}}},
                  {"pre_tokenizer", {{"type", "BertPreTokenizer"}}},
                  {"post_processor", nullptr},
                  {"decoder", {{"type", "WordPiece"}, {"prefix", "##"}, {"cleanup", true}}},
                  {"model",
                   {{"type", "WordPiece"}, {"unk_token", "[UNK]"}, {"continuing_subword_prefix", "##"},
                    {"max_input_chars_per_word", 100}, {"vocab", vocab}}}};
  wp.json_ = j.dump(2);
  wp.finish(origin);
  return wp;
}

void WordPiece::finish(const std::string& origin) {
  ids_.reserve(pieces_.size());
  for (std::size_t i = 0; i < pieces_.size(); ++i) ids_.emplace(pieces_[i], static_cast<int>(i));
  unk_id_ = id_of(unk_token_);
  if (unk_id_ < 0) throw CheckpointError(origin + ": the unknown token " + unk_token_ + " is not in the vocabulary");
  for (const auto& a : added_) {
    if (a.id < 0 || a.id >= vocab_size()) {
      throw CheckpointError(origin + ": added token " + a.content + " has id " + std::to_string(a.id) +
                            " outside the vocabulary");
    }
  }
  // Longer tokens first, so that of two tokens starting at one place the longest wins.
  std::stable_sort(added_.begin(), added_.end(),
                   [](const AddedToken& a, const AddedToken& b) { return a.content.size() > b.content.size(); });
}

int WordPiece::id_of(const std::string& token) const {
  const auto it = ids_.find(token);
  return it == ids_.end() ? -1 : it->second;
}

void WordPiece::append_word(const std::string& word, std::vector<int>& ids) const {
  const auto chars = static_cast<std::size_t>(
      std::count_if(word.begin(), word.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
  if (chars > max_word_chars_) {
    ids.push_back(unk_id_);
    return;
  }
  const std::size_t first = ids.size();
  std::size_t start = 0;
  std::string candidate;
  while (start < word.size()) {
    std::size_t end = word.size();
    int found = -1;
    while (end > start) {
      candidate.assign(start > 0 ? continuation_ : std::string());
      candidate.append(word, start, end - start);
      found = id_of(candidate);
      if (found >= 0) break;
      // Step back one whole UTF-8 character.
      do {
        --end;
      } while (end > start && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80);
    }
    if (found < 0) {  // no piece fits: the whole word is unknown
      ids.resize(first);
      ids.push_back(unk_id_);
      return;
    }
    ids.push_back(found);
    start = end;
  }
}

std::vector<int> WordPiece::encode(std::string_view text) const {
  std::vector<int> ids;
  auto encode_plain = [&](std::string_view part) {
    for_each_bert_word(bert_normalize(part, normalizer_), [&](const std::string& word) { append_word(word, ids); });
  };
  // Special tokens in the raw text ("[SEP]") are matched before normalisation.
  std::array<bool, 256> starts{};
  for (const auto& a : added_) starts[static_cast<unsigned char>(a.content.front())] = true;
  std::size_t done = 0;
  for (std::size_t i = 0; i < text.size();) {
    const AddedToken* hit = nullptr;
    if (starts[static_cast<unsigned char>(text[i])]) {
      for (const auto& a : added_) {
        if (text.compare(i, a.content.size(), a.content) == 0) {
          hit = &a;
          break;
        }
      }
    }
    if (hit == nullptr) {
      ++i;
      continue;
    }
    encode_plain(text.substr(done, i - done));
    ids.push_back(hit->id);
    i += hit->content.size();
    done = i;
  }
  encode_plain(text.substr(done));
  return ids;
}

std::vector<std::string> WordPiece::encode_pieces(std::string_view text) const {
  std::vector<std::string> out;
  for (int id : encode(text)) out.push_back(piece(id));
  return out;
}

std::string WordPiece::decode(const std::vector<int>& ids) const {
  std::string out;
  for (int id : ids) {
    const std::string& p = piece(id);
    const bool special = std::any_of(added_.begin(), added_.end(), [&](const AddedToken& a) { return a.id == id; });
    if (special) continue;
    if (p.compare(0, continuation_.size(), continuation_) == 0) {
      out.append(p, continuation_.size(), std::string::npos);
    } else {
      if (!out.empty()) out.push_back(' ');
      out += p;
    }
  }
  // The tokenizers library's clean-up of tokenisation spaces.
  static const std::pair<const char*, const char*> kCleanups[] = {
      {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
      {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& [from, to] : kCleanups) {
    const std::size_t from_len = std::strlen(from);
    for (auto pos = out.find(from); pos != std::string::npos; pos = out.find(from, pos + std::strlen(to))) {
      out.replace(pos, from_len, to);
    }
  }
  return out;
}

}  // namespace ulmfit::text
