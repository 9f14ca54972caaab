#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <set>

#include "ulmfit/text/corpus.h"
#include "ulmfit/text/normalize.h"
#include "ulmfit/util/error.h"
#include "ulmfit/util/files.h"
#include "ulmfit/util/log.h"
#include "ulmfit/util/utf8.h"

namespace ulmfit::text {
namespace {

namespace fs = std::filesystem;
using config::DataSource;

struct RawDocument {
  std::string text;
  std::optional<std::string> label;
  std::string file;  // where it came from, for errors found after reading
  long line = 0;
};

/// Collects documents from every reader and applies the source's error policy.
class DocumentSink {
 public:
  explicit DocumentSink(const DataSource& source) : source_(source) {}

  /// A malformed row or document: an error, or counted and dropped under skip.
  void bad(const std::string& file, long line, const std::string& problem) {
    const std::string message = at_location(file, line, problem);
    if (source_.on_error != "skip") throw DataError(message);
    if (skipped_ == 0) log::warn("skipping malformed input (on_error: skip): " + message);
    ++skipped_;
  }

  void add(std::string_view text, std::optional<std::string> label, const std::string& file,
           long line) {
    const std::size_t invalid = util::find_invalid_utf8(text);
    if (invalid != std::string_view::npos) {
      bad(file, line, "invalid UTF-8 at byte " + std::to_string(invalid) + " of the text");
      return;
    }
    if (label) {
      const std::size_t bad_label = util::find_invalid_utf8(*label);
      if (bad_label != std::string::npos) {
        bad(file, line, "invalid UTF-8 in the label");
        return;
      }
    }
    std::string clean = normalize_document(text, source_.clean_html);
    if (clean.empty()) {
      ++empty_;
      return;
    }
    documents_.push_back({std::move(clean), std::move(label), file, line});
  }

  std::vector<RawDocument>& documents() { return documents_; }
  std::size_t skipped() const { return skipped_; }
  std::size_t empty() const { return empty_; }

 private:
  const DataSource& source_;
  std::vector<RawDocument> documents_;
  std::size_t skipped_ = 0;
  std::size_t empty_ = 0;
};

/// Text never holds a NUL byte; a binary file (an archive, a model, an image)
/// given as data almost always does within its first few kilobytes.
void refuse_binary(const fs::path& path, std::string_view content) {
  const std::size_t nul = content.substr(0, 8192).find('\0');
  if (nul != std::string_view::npos) {
    throw DataError(path.string() + ": looks like a binary file (NUL byte at offset " + std::to_string(nul) +
                    "); data must be UTF-8 text");
  }
}

std::string read_nonempty(const fs::path& path) {
  std::string content = util::read_file(path);
  if (content.empty()) throw DataError(path.string() + ": file is empty");
  refuse_binary(path, content);
  return content;
}

/// Calls fn(line_view, line_number) for every line, CR stripped.
template <class Fn>
void for_each_line(std::string_view content, Fn fn) {
  long number = 0;
  std::size_t start = 0;
  while (start < content.size()) {
    std::size_t end = content.find('\n', start);
    if (end == std::string_view::npos) end = content.size();
    std::string_view line = content.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    fn(line, ++number);
    start = end + 1;
  }
}

void read_text(const fs::path& file, DocumentSink& sink) {
  const std::string content = read_nonempty(file);
  for_each_line(content, [&](std::string_view line, long number) {
    if (line.find_first_not_of(" \t") == std::string_view::npos) return;
    sink.add(line, std::nullopt, file.string(), number);
  });
}

/// WikiText: an article starts at a top-level heading " = Title = "; its lines
/// (paragraphs and sub-headings) form one document.
void read_wikitext(const fs::path& file, DocumentSink& sink) {
  const std::string content = read_nonempty(file);
  std::string article;
  long article_line = 0;
  auto flush = [&]() {
    if (!article.empty()) sink.add(article, std::nullopt, file.string(), article_line);
    article.clear();
  };
  for_each_line(content, [&](std::string_view line, long number) {
    const auto first = line.find_first_not_of(' ');
    if (first == std::string_view::npos) return;
    const auto last = line.find_last_not_of(' ');
    const std::string_view body = line.substr(first, last - first + 1);
    const bool top_heading = body.size() > 4 && body.rfind("= ", 0) == 0 &&
                             body.rfind("= = ", 0) != 0;
    if (top_heading) {
      flush();
      article_line = number;
    }
    if (article.empty()) article_line = number;
    if (!article.empty()) article += ' ';
    article.append(body.data(), body.size());
  });
  flush();
}

std::vector<fs::path> sorted_entries(const fs::path& dir, bool want_dirs) {
  std::vector<fs::path> out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (want_dirs ? entry.is_directory() : entry.is_regular_file()) out.push_back(entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

/// Sub-folders of a folder source to read, each with its label (none for
/// unlabelled ones).
std::vector<std::pair<fs::path, std::optional<std::string>>> folder_parts(
    const fs::path& root, const DataSource& source) {
  std::vector<std::pair<fs::path, std::optional<std::string>>> parts;
  const std::set<std::string> unlabelled(source.unlabelled.begin(), source.unlabelled.end());
  auto label_of = [&](const std::string& name) -> std::optional<std::string> {
    if (unlabelled.count(name)) return std::nullopt;
    return name;
  };
  if (!source.folders.empty()) {
    for (const auto& name : source.folders) {
      const fs::path dir = root / name;
      if (!fs::is_directory(dir)) throw DataError(dir.string() + ": folder not found");
      parts.emplace_back(dir, label_of(name));
    }
    return parts;
  }
  for (const auto& dir : sorted_entries(root, true)) {
    parts.emplace_back(dir, label_of(dir.filename().string()));
  }
  // A flat folder is a folder of unlabelled documents; beside sub-folders,
  // loose files are metadata (aclImdb's urls_*.txt) and are not read.
  if (parts.empty()) parts.emplace_back(root, std::nullopt);
  return parts;
}

void read_folder(const fs::path& root, const DataSource& source, DocumentSink& sink) {
  if (!fs::is_directory(root)) throw DataError(root.string() + ": not a folder (format: folder)");
  for (const auto& [dir, label] : folder_parts(root, source)) {
    for (const auto& file : sorted_entries(dir, false)) {
      const std::string content = util::read_file(file);
      refuse_binary(file, content);
      sink.add(content, label, file.string(), 0);
    }
  }
}

/// Delimited records, one per line. With `rfc4180`, quoted fields may hold
/// delimiters, doubled quotes and newlines; without it (TSV as IANA's
/// text/tab-separated-values, GLUE and `cut` write it) a quote is text.
/// Calls fn(fields, first_line_of_record).
template <class Fn>
void parse_delimited(const std::string& content, char delim, bool rfc4180, const std::string& file,
                     DocumentSink& sink, Fn fn) {
  std::vector<std::string> fields;
  std::string field;
  long line = 1;
  long record_line = 1;
  std::size_t i = 0;
  const std::size_t n = content.size();
  bool record_has_content = false;

  auto skip_to_next_line = [&]() {
    while (i < n && content[i] != '\n') ++i;
    if (i < n) ++i;
    ++line;
    fields.clear();
    field.clear();
    record_has_content = false;
    record_line = line;
  };

  while (i < n) {
    if (rfc4180 && content[i] == '"' && field.empty()) {
      // Quoted field.
      const long quote_line = line;
      ++i;
      bool closed = false;
      while (i < n) {
        const char c = content[i];
        if (c == '"') {
          if (i + 1 < n && content[i + 1] == '"') {
            field += '"';
            i += 2;
            continue;
          }
          ++i;
          closed = true;
          break;
        }
        if (c == '\n') ++line;
        field += c;
        ++i;
      }
      if (!closed) {
        sink.bad(file, quote_line, "unterminated quoted field");
        return;  // nothing after an unterminated quote can be trusted
      }
      record_has_content = true;
      if (i < n && content[i] != delim && content[i] != '\n' && content[i] != '\r') {
        sink.bad(file, line, "unexpected character after a closing quote");
        skip_to_next_line();
        continue;
      }
      continue;
    }
    const char c = content[i];
    if (c == delim) {
      fields.push_back(std::move(field));
      field.clear();
      record_has_content = true;
      ++i;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < n && content[i + 1] == '\n') ++i;
      ++i;
      if (record_has_content || !field.empty()) {
        fields.push_back(std::move(field));
        fn(fields, record_line);
      }
      fields.clear();
      field.clear();
      record_has_content = false;
      ++line;
      record_line = line;
    } else {
      field += c;
      record_has_content = true;
      ++i;
    }
  }
  if (record_has_content || !field.empty()) {
    fields.push_back(std::move(field));
    fn(fields, record_line);
  }
}

void read_delimited(const fs::path& file, const DataSource& source, char delim,
                    DocumentSink& sink) {
  const std::string content = read_nonempty(file);
  const std::string name = file.string();
  std::map<std::string, std::size_t> columns;
  std::size_t width = 0;
  std::size_t text_col = 0;
  std::optional<std::size_t> label_col;
  bool header_done = false;
  const bool rfc4180 = source.quoting == "rfc4180" || (source.quoting == "auto" && delim == ',');
  parse_delimited(content, delim, rfc4180, name, sink, [&](std::vector<std::string>& row, long line) {
    if (!header_done) {
      for (std::size_t c = 0; c < row.size(); ++c) columns[row[c]] = c;
      width = row.size();
      const auto t = columns.find(source.text_column);
      if (t == columns.end()) {
        throw DataError(at_location(name, line, "no column '" + source.text_column +
                                                    "' in the header (text_column)"));
      }
      text_col = t->second;
      if (!source.label_column.empty()) {
        const auto l = columns.find(source.label_column);
        if (l != columns.end()) label_col = l->second;
      }
      header_done = true;
      return;
    }
    if (row.size() != width) {
      sink.bad(name, line, "expected " + std::to_string(width) + " fields, found " +
                               std::to_string(row.size()));
      return;
    }
    std::optional<std::string> label;
    if (label_col) label = row[*label_col];
    sink.add(row[text_col], std::move(label), name, line);
  });
  if (!header_done) throw DataError(name + ": no header row");
}

void read_jsonl(const fs::path& file, const DataSource& source, DocumentSink& sink) {
  const std::string content = read_nonempty(file);
  const std::string name = file.string();
  for_each_line(content, [&](std::string_view line, long number) {
    if (line.find_first_not_of(" \t") == std::string_view::npos) return;
    nlohmann::json row;
    try {
      row = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      sink.bad(name, number, "not valid JSON");
      return;
    }
    if (!row.is_object()) {
      sink.bad(name, number, "expected a JSON object");
      return;
    }
    const auto text = row.find(source.text_field);
    if (text == row.end() || !text->is_string()) {
      sink.bad(name, number, "no string field '" + source.text_field + "' (text_field)");
      return;
    }
    std::optional<std::string> label;
    if (!source.label_field.empty()) {
      const auto l = row.find(source.label_field);
      if (l != row.end()) {
        if (l->is_string()) {
          label = l->get<std::string>();
        } else if (l->is_number_integer() || l->is_boolean()) {
          label = l->dump();
        } else {
          sink.bad(name, number, "label field '" + source.label_field + "' is not a string or integer");
          return;
        }
      }
    }
    sink.add(text->get_ref<const std::string&>(), std::move(label), name, number);
  });
}

void require_exists(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw DataError(path + ": file not found");
}

std::vector<std::size_t> pick_subset(std::size_t n, std::size_t k, std::uint64_t seed) {
  std::vector<std::size_t> idx(n);
  for (std::size_t i = 0; i < n; ++i) idx[i] = i;
  std::mt19937_64 rng(seed);
  for (std::size_t i = 0; i < k; ++i) {
    std::uniform_int_distribution<std::size_t> pick(i, n - 1);
    std::swap(idx[i], idx[pick(rng)]);
  }
  idx.resize(k);
  std::sort(idx.begin(), idx.end());
  return idx;
}

}  // namespace

std::vector<fs::path> list_input_files(const DataSource& source) {
  std::vector<fs::path> files;
  for (const auto& p : source.path) {
    require_exists(p);
    if (source.format == "folder") {
      for (const auto& part : folder_parts(p, source)) {
        for (auto& f : sorted_entries(part.first, false)) files.push_back(std::move(f));
      }
    } else {
      files.emplace_back(p);
    }
  }
  return files;
}

Corpus read_corpus(const DataSource& source, const std::vector<std::string>& fixed_labels,
                   std::uint64_t seed) {
  if (!source.given()) throw DataError("no data path given");
  DocumentSink sink(source);
  for (const auto& p : source.path) {
    require_exists(p);
    if (source.format == "text") {
      read_text(p, sink);
    } else if (source.format == "wikitext") {
      read_wikitext(p, sink);
    } else if (source.format == "folder") {
      read_folder(p, source, sink);
    } else if (source.format == "csv") {
      read_delimited(p, source, ',', sink);
    } else if (source.format == "tsv") {
      read_delimited(p, source, '\t', sink);
    } else if (source.format == "jsonl") {
      read_jsonl(p, source, sink);
    } else {
      throw DataError("unknown data format '" + source.format + "'");
    }
  }
  std::vector<RawDocument>& raw = sink.documents();
  const std::string what = source.path.front() + (source.path.size() > 1 ? " (and others)" : "");
  if (raw.empty()) throw DataError(what + ": no documents found");
  if (sink.skipped() > 0) log::warn(what + ": skipped " + std::to_string(sink.skipped()) + " malformed rows");

  if (source.limit > 0 && source.balanced) {
    // limit / labels documents of each label, each label's drawn like an
    // unbalanced subset; file order kept.
    std::map<std::string, std::vector<std::size_t>> by_label;
    for (std::size_t i = 0; i < raw.size(); ++i) by_label[raw[i].label.value_or("")].push_back(i);
    const auto per_label = static_cast<std::size_t>(source.limit) / by_label.size();
    std::vector<std::size_t> keep;
    for (const auto& [label, members] : by_label) {
      if (members.size() < per_label) {
        throw DataError(what + ": balanced: label '" + label + "' has " + std::to_string(members.size()) +
                        " documents, fewer than the " + std::to_string(per_label) + " asked of each label");
      }
      for (std::size_t j : pick_subset(members.size(), per_label, seed)) keep.push_back(members[j]);
    }
    std::sort(keep.begin(), keep.end());
    std::vector<RawDocument> subset;
    for (std::size_t i : keep) subset.push_back(std::move(raw[i]));
    raw.swap(subset);
  } else if (source.limit > 0 && static_cast<std::size_t>(source.limit) < raw.size()) {
    std::vector<RawDocument> subset;
    for (std::size_t i : pick_subset(raw.size(), static_cast<std::size_t>(source.limit), seed)) {
      subset.push_back(std::move(raw[i]));
    }
    raw.swap(subset);
  }

  Corpus corpus;
  corpus.skipped = sink.skipped();
  corpus.label_names = !fixed_labels.empty() ? fixed_labels : source.labels;
  const bool closed_set = !corpus.label_names.empty();
  if (!closed_set) {
    std::set<std::string> found;
    for (const auto& d : raw) {
      if (d.label) found.insert(*d.label);
    }
    corpus.label_names.assign(found.begin(), found.end());
  }
  std::map<std::string, std::int32_t> index;
  for (std::size_t i = 0; i < corpus.label_names.size(); ++i) {
    index[corpus.label_names[i]] = static_cast<std::int32_t>(i);
  }
  corpus.documents.reserve(raw.size());
  for (auto& d : raw) {
    std::int32_t label = -1;
    if (d.label) {
      const auto it = index.find(*d.label);
      if (it == index.end()) {
        std::string known;
        for (const auto& n : corpus.label_names) known += (known.empty() ? "" : ", ") + n;
        throw DataError(at_location(d.file, d.line,
                                    "unknown label '" + *d.label + "' (known: " + known + ")"));
      }
      label = it->second;
    }
    corpus.documents.push_back({std::move(d.text), label});
  }
  return corpus;
}

void check_data_paths(const config::Config& cfg) {
  const std::pair<const char*, const DataSource*> sources[] = {
      {"data.train.path", &cfg.data.train},
      {"data.valid.path", &cfg.data.valid},
      {"data.test.path", &cfg.data.test}};
  for (const auto& [key, source] : sources) {
    for (const auto& p : source->path) {
      std::error_code ec;
      if (!fs::exists(p, ec)) throw DataError(cfg.where(key) + ": not found: " + p);
    }
  }
}

}  // namespace ulmfit::text
