#include "ulmfit/text/token_cache.h"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "ulmfit/text/corpus.h"
#include "ulmfit/util/error.h"
#include "ulmfit/util/log.h"

namespace ulmfit::text {
namespace {

namespace fs = std::filesystem;

constexpr char kMagic[8] = {'U', 'L', 'M', 'F', 'T', 'O', 'K', '1'};
constexpr std::uint32_t kFormatVersion = 1;

/// Fixed-size header at the start of a cache file; the label names, offsets,
/// labels and tokens follow, each section starting on an 8-byte boundary.
struct Header {
  char magic[8];
  std::uint32_t version;
  std::uint32_t reserved;
  std::uint64_t key;
  std::uint64_t documents;
  std::uint64_t tokens;
  std::uint64_t label_bytes;
};

std::size_t pad8(std::size_t n) { return (n + 7) & ~static_cast<std::size_t>(7); }

std::string join_labels(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += n + '\n';
  return out;
}

std::uint64_t hash_strings(const std::vector<std::string>& items, std::uint64_t h) {
  for (const auto& s : items) h = util::fnv1a(s + '\x1f', h);
  return util::fnv1a("\x1e", h);
}

}  // namespace

TokenizedCorpus TokenizedCorpus::from_documents(const std::vector<std::vector<int>>& docs,
                                                std::vector<std::int32_t> labels,
                                                std::vector<std::string> label_names) {
  TokenizedCorpus c;
  c.count_ = docs.size();
  c.owned_offsets_.resize(docs.size() + 1, 0);
  std::size_t total = 0;
  for (std::size_t i = 0; i < docs.size(); ++i) {
    total += docs[i].size();
    c.owned_offsets_[i + 1] = total;
  }
  c.owned_tokens_.reserve(total);
  for (const auto& d : docs) c.owned_tokens_.insert(c.owned_tokens_.end(), d.begin(), d.end());
  if (labels.empty()) labels.assign(docs.size(), -1);
  if (labels.size() != docs.size()) throw DataError("labels and documents differ in number");
  c.owned_labels_ = std::move(labels);
  c.label_names_ = std::move(label_names);
  c.offsets_ = c.owned_offsets_.data();
  c.tokens_ = c.owned_tokens_.data();
  c.labels_ = c.owned_labels_.data();
  return c;
}

TokenizedCorpus TokenizedCorpus::subset(const std::vector<std::size_t>& indices) const {
  std::vector<std::vector<int>> docs;
  std::vector<std::int32_t> labels;
  docs.reserve(indices.size());
  for (std::size_t i : indices) {
    const TokenSpan d = doc(i);
    docs.emplace_back(d.begin(), d.end());
    labels.push_back(label(i));
  }
  return from_documents(docs, std::move(labels), label_names_);
}

TokenizedCorpus TokenizedCorpus::map_file(const std::string& path) {
  TokenizedCorpus c;
  c.mapped_ = util::MappedFile(path);
  const std::uint8_t* base = c.mapped_.data();
  const std::size_t size = c.mapped_.size();
  auto invalid = [&](const std::string& why) { return DataError(path + ": not a valid token cache (" + why + ")"); };
  if (size < sizeof(Header)) throw invalid("too short");
  Header h;
  std::memcpy(&h, base, sizeof h);
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0) throw invalid("bad magic");
  if (h.version != kFormatVersion) throw invalid("format version " + std::to_string(h.version));
  std::size_t pos = sizeof(Header);
  const std::size_t need = pos + pad8(h.label_bytes) + (h.documents + 1) * 8 +
                           pad8(h.documents * 4) + h.tokens * 4;
  if (h.documents > size || h.tokens > size || need != size) throw invalid("truncated or padded");
  std::string labels(reinterpret_cast<const char*>(base + pos), h.label_bytes);
  pos += pad8(h.label_bytes);
  std::istringstream names(labels);
  for (std::string line; std::getline(names, line);) c.label_names_.push_back(line);
  c.offsets_ = reinterpret_cast<const std::uint64_t*>(base + pos);
  pos += (h.documents + 1) * 8;
  c.labels_ = reinterpret_cast<const std::int32_t*>(base + pos);
  pos += pad8(h.documents * 4);
  c.tokens_ = reinterpret_cast<const std::int32_t*>(base + pos);
  c.count_ = h.documents;
  if (c.offsets_[0] != 0 || c.offsets_[h.documents] != h.tokens) throw invalid("bad offsets");
  c.from_cache_ = true;
  return c;
}

void TokenizedCorpus::write(const std::string& path, std::uint64_t key) const {
  const std::string labels = join_labels(label_names_);
  Header h{};
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.version = kFormatVersion;
  h.key = key;
  h.documents = count_;
  h.tokens = total_tokens();
  h.label_bytes = labels.size();
  const char zeros[8] = {};
  util::AtomicFileWriter out(path);
  out.write(&h, sizeof h);
  out.write(labels.data(), labels.size());
  out.write(zeros, pad8(labels.size()) - labels.size());
  out.write(offsets_, (count_ + 1) * sizeof(std::uint64_t));
  out.write(labels_, count_ * sizeof(std::int32_t));
  out.write(zeros, pad8(count_ * 4) - count_ * 4);
  out.write(tokens_, total_tokens() * sizeof(std::int32_t));
  out.commit();
}

std::string default_cache_dir() { return util::user_cache_dir().string(); }

std::uint64_t token_cache_key(const config::DataSource& source, const Tokenizer& tokenizer,
                              const std::vector<std::string>& fixed_labels, std::uint64_t seed) {
  std::uint64_t h = util::fnv1a("ulmfit-token-cache-v" + std::to_string(kFormatVersion));
  h = util::fnv1a(util::to_hex(tokenizer.fingerprint()), h);
  h = hash_strings({source.format, source.text_column, source.label_column, source.text_field,
                    source.label_field, source.on_error, source.clean_html ? "html" : "raw",
                    std::to_string(source.limit), std::to_string(source.limit > 0 ? seed : 0)},
                   h);
  if (source.balanced) h = util::fnv1a("balanced", h);  // unbalanced keys stay as they were
  h = hash_strings(source.folders, h);
  h = hash_strings(source.unlabelled, h);
  h = hash_strings(source.labels, h);
  h = hash_strings(fixed_labels, h);
  for (const auto& file : list_input_files(source)) h = util::stat_fingerprint(file, h);
  return h;
}

TokenizedCorpus load_tokenized(const config::DataSource& source, const Tokenizer& tokenizer,
                               const TokenCacheOptions& options,
                               const std::vector<std::string>& fixed_labels) {
  const std::string name = source.path.empty() ? "<none>" : source.path.front();
  std::string cache_path;
  std::uint64_t key = 0;
  if (options.enabled) {
    key = token_cache_key(source, tokenizer, fixed_labels, options.seed);
    const fs::path dir = options.dir.empty() ? default_cache_dir() : options.dir;
    cache_path = (dir / ("tokens-" + util::to_hex(key) + ".bin")).string();
    std::error_code ec;
    if (fs::is_regular_file(cache_path, ec)) {
      try {
        TokenizedCorpus cached = TokenizedCorpus::map_file(cache_path);
        log::info(name + ": " + std::to_string(cached.size()) + " documents, " +
                  std::to_string(cached.total_tokens()) + " tokens (cache " + cache_path + ")");
        return cached;
      } catch (const DataError& e) {
        log::warn(std::string(e.what()) + "; tokenising again");
      }
    }
  }

  const auto start = std::chrono::steady_clock::now();
  Corpus corpus = read_corpus(source, fixed_labels, options.seed);
  std::vector<std::string> texts;
  std::vector<std::int32_t> labels;
  texts.reserve(corpus.documents.size());
  labels.reserve(corpus.documents.size());
  for (auto& d : corpus.documents) {
    texts.push_back(std::move(d.text));
    labels.push_back(d.label);
  }
  corpus.documents.clear();
  const auto ids = tokenizer.encode_batch(texts, options.threads);
  TokenizedCorpus result = TokenizedCorpus::from_documents(ids, std::move(labels), corpus.label_names);
  if (result.total_tokens() == 0) throw DataError(name + ": the corpus yields no tokens");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  log::info(name + ": " + std::to_string(result.size()) + " documents, " +
            std::to_string(result.total_tokens()) + " tokens, tokenised in " +
            std::to_string(seconds).substr(0, 6) + " s on " + std::to_string(options.threads) +
            " threads");
  if (options.enabled) {
    try {
      result.write(cache_path, key);
    } catch (const RuntimeFailure& e) {
      log::warn(std::string("could not write the token cache: ") + e.what());
    }
  }
  return result;
}

}  // namespace ulmfit::text
