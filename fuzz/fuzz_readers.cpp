// libFuzzer target: arbitrary bytes as a data file in each reader format.
// The first byte picks the format and the error policy; the rest is the file.
// Every rejection must be a DataError naming the file; anything else escaping,
// or a crash, is a bug.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "ulmfit/text/corpus.h"
#include "ulmfit/util/error.h"
#include "ulmfit/util/log.h"

namespace {

const char* const kFormats[] = {"text", "wikitext", "tsv", "csv", "jsonl"};

std::string scratch_path() {
  static const std::string path = "/tmp/ulmfit-fuzz-readers-" + std::to_string(::getpid());
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  ulmfit::log::set_level(ulmfit::log::Level::kQuiet);
  ulmfit::config::DataSource source;
  source.format = kFormats[data[0] % 5];
  source.on_error = (data[0] / 5) % 2 ? "skip" : "fail";
  source.limit = (data[0] / 10) % 2 ? 3 : 0;
  source.path = {scratch_path()};
  if (std::FILE* f = std::fopen(scratch_path().c_str(), "wb")) {
    std::fwrite(data + 1, 1, size - 1, f);
    std::fclose(f);
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
