#include "ulmfit/text/byte_level_bpe.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <climits>
#include <nlohmann/json.hpp>

#include "ulmfit/util/error.h"
#include "ulmfit/util/json_fields.h"

namespace ulmfit::text {
namespace {
using nlohmann::json;

// The largest id read: far above GPT-2's 50,257, and id + 1 cannot overflow.
constexpr std::int64_t kMaxId = 1 << 24;

// GPT-2's pre-tokenisation (Radford et al. 2019, the released encoder.py),
// which the tokenizers library's ByteLevel pre-tokeniser applies verbatim.
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

void append_utf8(std::uint32_t c, std::string& out) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

/// GPT-2's byte -> character table: printable Latin-1 bytes stand for
/// themselves, the other 68 take the code points from 256 on, in byte order.
std::vector<std::string> byte_characters() {
  std::vector<std::string> chars(256);
  std::uint32_t next = 256;
  for (std::uint32_t b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    append_utf8(printable ? b : next++, chars[b]);
  }
  return chars;
}

std::uint64_t pair_key(int left, int right) {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32) | static_cast<std::uint32_t>(right);
}

}  // namespace

struct ByteLevelBpe::Regex {
  pcre2_code* code = nullptr;
  Regex() {
    int error = 0;
    PCRE2_SIZE offset = 0;
    // Invalid UTF-8 is never matched (instead of failing the whole text): the
    // bytes between matches still become pieces.
    code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(kGpt2Pattern), PCRE2_ZERO_TERMINATED,
                         PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error, &offset, nullptr);
    if (code == nullptr) throw RuntimeFailure("PCRE2 could not compile GPT-2's pattern (error " + std::to_string(error) + ")");
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter when JIT is unavailable
  }
  ~Regex() { pcre2_code_free(code); }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
};

ByteLevelBpe::ByteLevelBpe() : byte_chars_(byte_characters()), regex_(std::make_unique<Regex>()) {
  for (int b = 0; b < 256; ++b) char_bytes_[byte_chars_[static_cast<std::size_t>(b)]] = static_cast<unsigned char>(b);
}
ByteLevelBpe::ByteLevelBpe(ByteLevelBpe&&) noexcept = default;
ByteLevelBpe& ByteLevelBpe::operator=(ByteLevelBpe&&) noexcept = default;
ByteLevelBpe::~ByteLevelBpe() = default;

int ByteLevelBpe::id_of(const std::string& token) const {
  const auto it = ids_.find(token);
  return it == ids_.end() ? -1 : it->second;
}

void ByteLevelBpe::add_merge(const std::string& left, const std::string& right, const std::string& origin) {
  const int l = id_of(left), r = id_of(right), merged = id_of(left + right);
  if (l < 0 || r < 0 || merged < 0) {
    throw CheckpointError(origin + ": merge \"" + left + " " + right + "\" uses a token outside the vocabulary");
  }
  merges_.emplace(pair_key(l, r), Merge{static_cast<int>(merges_.size()), merged});
}

void ByteLevelBpe::finish(const std::string& origin) {
  // Ids must be 0 .. n-1, each once, for n tokens: then every slot of an
  // n-long table is filled, and an id too large or given twice leaves a gap.
  const std::size_t n = ids_.size();
  pieces_.assign(n, std::string());
  std::vector<bool> seen(n, false);
  for (const auto& [token, id] : ids_) {
    if (id < 0) throw CheckpointError(origin + ": token " + token + " has a negative id");
    if (static_cast<std::size_t>(id) >= n) continue;
    pieces_[static_cast<std::size_t>(id)] = token;
    seen[static_cast<std::size_t>(id)] = true;
  }
  const auto gap = std::find(seen.begin(), seen.end(), false);
  if (gap != seen.end()) {
    throw CheckpointError(origin + ": no token has id " + std::to_string(gap - seen.begin()) + " (ids must be 0 to " +
                          std::to_string(n) + " - 1, each once)");
  }
  byte_ids_.assign(256, -1);
  for (int b = 0; b < 256; ++b) byte_ids_[static_cast<std::size_t>(b)] = id_of(byte_chars_[static_cast<std::size_t>(b)]);
  std::stable_sort(added_.begin(), added_.end(),
                   [](const AddedToken& a, const AddedToken& b) { return a.content.size() > b.content.size(); });
}

ByteLevelBpe ByteLevelBpe::from_tokenizer_json(const std::string& json_text, const std::string& origin) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::exception& e) {
    throw CheckpointError(origin + ": not valid JSON (" + e.what() + ")");
  }
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object()) {
    throw CheckpointError(origin + ": no model object");
  }
  const auto& model = j["model"];
  const std::string type = json_fields::string(model, "type", "(missing)", origin, "model");
  if (type != "BPE") throw CheckpointError(origin + ": model.type " + type + " is not BPE");
  auto refuse_set = [&](const char* key) {
    const auto& v = json_fields::member(model, key);
    if (!v.is_null() && !(v.is_string() && v.get<std::string>().empty())) {
      throw CheckpointError(origin + ": model." + key + " " + v.dump() +
                            " is not supported (GPT-2's byte-level BPE has none)");
    }
  };
  refuse_set("dropout");
  refuse_set("continuing_subword_prefix");
  refuse_set("end_of_word_suffix");
  if (json_fields::boolean(model, "byte_fallback", false, origin, "model")) {
    throw CheckpointError(origin + ": model.byte_fallback true is not supported");
  }
  const auto& normalizer = json_fields::member(j, "normalizer");
  if (!normalizer.is_null()) {
    throw CheckpointError(origin + ": normalizer " + normalizer.dump() + " is not supported with BPE (GPT-2 has none)");
  }
  const auto& pre = json_fields::member(j, "pre_tokenizer");
  const std::string pre_type = json_fields::string(pre, "type", pre.is_null() ? "null" : "?", origin, "pre_tokenizer");
  if (pre_type != "ByteLevel" || !json_fields::boolean(pre, "use_regex", true, origin, "pre_tokenizer")) {
    throw CheckpointError(origin + ": pre_tokenizer " + pre_type +
                          " is not supported with BPE (GPT-2's ByteLevel with its pattern is)");
  }

  ByteLevelBpe bpe;
  bpe.add_prefix_space_ = json_fields::boolean(pre, "add_prefix_space", false, origin, "pre_tokenizer");
  bpe.ignore_merges_ = json_fields::boolean(model, "ignore_merges", false, origin, "model");
  bpe.json_ = json_text;
  const auto& vocab = json_fields::member(model, "vocab");
  if (!vocab.is_object()) throw CheckpointError(origin + ": model.vocab is missing");
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const auto id = json_fields::count(vocab, it.key().c_str(), -1, kMaxId, origin, "model.vocab");
    bpe.ids_[it.key()] = static_cast<int>(id);
  }
  const auto& added = json_fields::member(j, "added_tokens");
  if (added.is_array()) {
    for (const auto& t : added) {
      const auto content = json_fields::string(t, "content", "", origin, "added_tokens[]");
      const auto id = json_fields::count(t, "id", -1, kMaxId, origin, "added_tokens[]");
      if (content.empty()) continue;
      if (id < 0) throw CheckpointError(origin + ": added_tokens entry " + t.dump() + " has no id");
      const bool special = json_fields::boolean(t, "special", false, origin, "added_tokens[]");
      bpe.ids_[content] = static_cast<int>(id);
      bpe.added_.push_back({content, static_cast<int>(id), special});
    }
  }
  if (!model.contains("merges") || !model["merges"].is_array()) throw CheckpointError(origin + ": model.merges is missing");
  for (const auto& m : model["merges"]) {
    // "a b" (tokenizers before 0.20) or ["a", "b"].
    if (m.is_string()) {
      const auto s = m.get<std::string>();
      const auto space = s.find(' ');
      if (space == std::string::npos) throw CheckpointError(origin + ": merge \"" + s + "\" is not two tokens");
      bpe.add_merge(s.substr(0, space), s.substr(space + 1), origin);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      bpe.add_merge(m[0].get<std::string>(), m[1].get<std::string>(), origin);
    } else {
      throw CheckpointError(origin + ": merge " + m.dump() + " is not two tokens");
    }
  }
  bpe.finish(origin);
  return bpe;
}

ByteLevelBpe ByteLevelBpe::from_vocab_and_merges(const std::string& vocab_json, const std::string& merges_txt,
                                                 const std::string& origin) {
  json vocab;
  try {
    vocab = json::parse(vocab_json);
  } catch (const json::exception& e) {
    throw CheckpointError(origin + ": vocab.json is not valid JSON (" + e.what() + ")");
  }
  if (!vocab.is_object()) throw CheckpointError(origin + ": vocab.json is not an object");
  json merges = json::array();
  std::size_t begin = 0;
  while (begin < merges_txt.size()) {
    auto end = merges_txt.find('\n', begin);
    if (end == std::string::npos) end = merges_txt.size();
    std::string line = merges_txt.substr(begin, end - begin);
    begin = end + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line.rfind("#version", 0) == 0) continue;
    merges.push_back(line);
  }
  json added = json::array();
  if (vocab.contains("<|endoftext|>")) {
    added.push_back({{"id", vocab["<|endoftext|>"]}, {"content", "<|endoftext|>"}, {"special", true}});
  }
  // The equivalent tokenizer.json, which is what a run saves.
  const json j = {{"version", "1.0"},
                  {"added_tokens", added},
                  {"normalizer", nullptr},
                  {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
                                     {"use_regex", true}}},
                  {"post_processor", nullptr},
                  {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true},
                               {"use_regex", true}}},
                  {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr},
                             {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr},
                             {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", false},
                             {"vocab", vocab}, {"merges", merges}}}};
  return from_tokenizer_json(j.dump(), origin);
}

void ByteLevelBpe::append_piece(std::string_view piece, std::vector<int>& ids) const {
  std::vector<int> symbols;
  symbols.reserve(piece.size());
  for (char c : piece) {
    const int id = byte_ids_[static_cast<unsigned char>(c)];
    if (id >= 0) symbols.push_back(id);  // like the tokenizers library without an unk token: dropped
  }
  if (ignore_merges_ && symbols.size() > 1) {
    std::string mapped;
    for (char c : piece) mapped += byte_chars_[static_cast<unsigned char>(c)];
    const int whole = id_of(mapped);
    if (whole >= 0) {
      ids.push_back(whole);
      return;
    }
  }
  // The pair of lowest rank merges first, the leftmost among equals, until
  // no adjacent pair has a merge (what the library's heap does).
  while (symbols.size() > 1) {
    int best_rank = INT_MAX, best_merged = -1;
    std::size_t best_at = 0;
    for (std::size_t i = 0; i + 1 < symbols.size(); ++i) {
      const auto it = merges_.find(pair_key(symbols[i], symbols[i + 1]));
      if (it != merges_.end() && it->second.rank < best_rank) {
        best_rank = it->second.rank;
        best_merged = it->second.merged;
        best_at = i;
      }
    }
    if (best_merged < 0) break;
    symbols[best_at] = best_merged;
    symbols.erase(symbols.begin() + static_cast<std::ptrdiff_t>(best_at) + 1);
  }
  ids.insert(ids.end(), symbols.begin(), symbols.end());
}

void ByteLevelBpe::encode_plain(std::string_view text, std::vector<int>& ids) const {
  std::string prefixed;
  if (add_prefix_space_ && !text.empty() && text.front() != ' ') {
    prefixed = " " + std::string(text);
    text = prefixed;
  }
  pcre2_match_data* match = pcre2_match_data_create_from_pattern(regex_->code, nullptr);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  std::size_t at = 0;
  while (at < text.size()) {
    const int rc = pcre2_match(regex_->code, subject, text.size(), at, 0, match, nullptr);
    if (rc < 0) {  // nothing more matches (only invalid UTF-8 is left)
      append_piece(text.substr(at), ids);
      break;
    }
    const PCRE2_SIZE* span = pcre2_get_ovector_pointer(match);
    if (span[0] > at) append_piece(text.substr(at, span[0] - at), ids);  // bytes no match covered
    if (span[1] == span[0]) {  // cannot happen with this pattern; never loop on an empty match
      append_piece(text.substr(span[0], 1), ids);
      at = span[0] + 1;
      continue;
    }
    append_piece(text.substr(span[0], span[1] - span[0]), ids);
    at = span[1];
  }
  pcre2_match_data_free(match);
}

std::vector<int> ByteLevelBpe::encode(std::string_view text) const {
  std::vector<int> ids;
  std::size_t done = 0;
  for (std::size_t i = 0; i < text.size();) {
    const AddedToken* hit = nullptr;
    for (const auto& a : added_) {
      if (text.compare(i, a.content.size(), a.content) == 0) {
        hit = &a;
        break;
      }
    }
    if (hit == nullptr) {
      ++i;
      continue;
    }
    encode_plain(text.substr(done, i - done), ids);
    ids.push_back(hit->id);
    i += hit->content.size();
    done = i;
  }
  encode_plain(text.substr(done), ids);
  return ids;
}

std::string ByteLevelBpe::decode(const std::vector<int>& ids) const {
  std::string out;
  for (int id : ids) {
    const bool special =
        std::any_of(added_.begin(), added_.end(), [&](const AddedToken& a) { return a.id == id && a.special; });
    if (special) continue;
    const std::string& p = piece(id);
    // Character by character back to bytes; a token with a character outside
    // the table (an added token) is copied as it is, as the library does.
    std::string bytes;
    bool mapped = true;
    for (std::size_t i = 0; i < p.size() && mapped;) {
      const auto lead = static_cast<unsigned char>(p[i]);
      const std::size_t len = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
      const auto it = char_bytes_.find(p.substr(i, len));
      if (it == char_bytes_.end()) {
        mapped = false;
      } else {
        bytes.push_back(static_cast<char>(it->second));
      }
      i += len;
    }
    out += mapped ? bytes : p;
  }
  return out;
}

}  // namespace ulmfit::text
