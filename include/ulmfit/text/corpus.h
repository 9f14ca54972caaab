#pragma once
/// Corpus readers: every format the config accepts, read into documents with
/// optional labels. Malformed input throws DataError naming the file and line,
/// or is skipped and counted when the source says `on_error: skip`.
///
///   Corpus c = read_corpus(cfg.data.train, /*fixed_labels=*/{}, cfg.seed);
///   for (const auto& d : c.documents) use(d.text, d.label);
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "ulmfit/config/config.h"

namespace ulmfit::text {

struct Document {
  std::string text;
  std::int32_t label = -1;  // class index, -1 = unlabelled
};

struct Corpus {
  std::vector<Document> documents;
  std::vector<std::string> label_names;  // class index -> name
  std::size_t skipped = 0;               // malformed rows dropped under on_error: skip
};

/// Reads a source. Labels map to class indices through `fixed_labels` when
/// given (a trained model's label set), else the source's `labels`, else the
/// sorted set of names found. A label outside a given set is an error.
/// `seed` picks the random subset when the source has a `limit`.
Corpus read_corpus(const config::DataSource& source,
                   const std::vector<std::string>& fixed_labels = {}, std::uint64_t seed = 0);

/// Every file the source reads, in reading order (folder sources are listed,
/// not read). Throws DataError when a path does not exist.
std::vector<std::filesystem::path> list_input_files(const config::DataSource& source);

/// Checks that every given data path of the config exists; the error names the
/// config file, line and key.
void check_data_paths(const config::Config& cfg);

}  // namespace ulmfit::text
