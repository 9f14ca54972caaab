// libFuzzer target: arbitrary bytes as data in each reader format. The first
// byte picks the format, the error policy, a limit and the quoting; the rest is the file (for the
// folder format: split at the first NUL into one file under pos/ and one
// under neg/).
// Every rejection must be a DataError naming the file; anything else escaping,
// or a crash, is a bug.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include "ulmfit/text/corpus.h"
#include "ulmfit/util/error.h"
#include "ulmfit/util/log.h"

namespace {

const char* const kFormats[] = {"text", "wikitext", "tsv", "csv", "jsonl", "folder"};
constexpr int kFormatCount = 6;

std::string scratch_path() {
  static const std::string path = "/tmp/ulmfit-fuzz-readers-" + std::to_string(::getpid());
  return path;
}

void write(const std::string& path, const std::uint8_t* data, std::size_t size) {
  if (std::FILE* f = std::fopen(path.c_str(), "wb")) {
    std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
}

/// pos/a.txt and neg/b.txt under a fresh folder: the aclImdb layout.
std::string write_folder(const std::uint8_t* data, std::size_t size) {
  namespace fs = std::filesystem;
  const std::string root = scratch_path() + ".d";
  fs::remove_all(root);
  fs::create_directories(root + "/pos");
  fs::create_directories(root + "/neg");
  const auto* split = static_cast<const std::uint8_t*>(std::memchr(data, 0, size));
  const std::size_t first = split ? static_cast<std::size_t>(split - data) : size;
  write(root + "/pos/a.txt", data, first);
  if (split) write(root + "/neg/b.txt", split + 1, size - first - 1);
  return root;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  ulmfit::log::set_level(ulmfit::log::Level::kQuiet);
  ulmfit::config::DataSource source;
  source.format = kFormats[data[0] % kFormatCount];
  source.on_error = (data[0] / kFormatCount) % 2 ? "skip" : "fail";
  source.limit = (data[0] / (2 * kFormatCount)) % 2 ? 3 : 0;
  // tsv / csv: their default quoting, or the other one (plain csv, RFC 4180 tsv).
  if ((data[0] / (4 * kFormatCount)) % 2) source.quoting = source.format == "csv" ? "none" : "rfc4180";
  if (source.format == "folder") {
    source.path = {write_folder(data + 1, size - 1)};
  } else {
    source.path = {scratch_path()};
    write(scratch_path(), data + 1, size - 1);
  }
  try {
    const auto corpus = ulmfit::text::read_corpus(source, {}, 1);
    for (const auto& d : corpus.documents) {
      // Readers promise non-empty, valid UTF-8 documents with known labels.
      if (d.text.empty()) __builtin_trap();
      if (d.label >= static_cast<std::int32_t>(corpus.label_names.size())) __builtin_trap();
    }
  } catch (const ulmfit::DataError&) {
  }
  return 0;
}
