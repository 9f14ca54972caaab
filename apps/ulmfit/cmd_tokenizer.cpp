// `ulmfit tokenizer train|encode|decode`: work with tokenizers directly.
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "cli_common.h"
#include "ulmfit/config/loader.h"
#include "ulmfit/text/corpus.h"
#include "ulmfit/text/token_cache.h"
#include "ulmfit/text/tokenizer.h"
#include "ulmfit/util/error.h"
#include "ulmfit/util/log.h"

namespace ulmfit::cli {
namespace {

struct TokenizerArgs {
  ConfigArgs config;
  std::string model;
  std::string out;
  std::string input = "-";
  std::string split;
  bool pieces = false;
  bool no_cache = false;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// Calls fn(line) for each line of a file or of stdin ("-").
template <class Fn>
void for_each_input_line(const std::string& input, Fn fn) {
  std::ifstream file;
  if (input != "-") {
    file.open(input);
    if (!file) throw DataError(input + ": cannot open file");
  }
  std::istream& in = input == "-" ? std::cin : file;
  for (std::string line; std::getline(in, line);) fn(line);
}

const config::DataSource& split_source(const config::Config& cfg, const std::string& split) {
  if (split == "train") return cfg.data.train;
  if (split == "valid") return cfg.data.valid;
  if (split == "test") return cfg.data.test;
  throw UsageError("--split must be train, valid or test, got '" + split + "'");
}

int train(const TokenizerArgs& args) {
  const config::Config cfg = load_config(args.config);
  if (args.config.dump_config) {
    std::cout << config::dump_config(cfg);
    return 0;
  }
  if (args.out.empty()) throw UsageError("tokenizer train needs --out PATH");
  if (cfg.tokenizer.model_type == "word" && std::filesystem::path(args.out).extension() != ".json") {
    throw UsageError("tokenizer train: a word tokenizer is saved as a tokenizer.json; give --out a name ending in .json");
  }
  text::check_data_paths(cfg);
  const auto runtime = start_runtime(cfg);
  if (!cfg.data.train.given()) throw ConfigError("data.train.path: no training data given");
  const auto start = std::chrono::steady_clock::now();
  text::Corpus corpus = text::read_corpus(cfg.data.train, {}, static_cast<std::uint64_t>(cfg.seed));
  std::vector<std::string> docs;
  docs.reserve(corpus.documents.size());
  for (auto& d : corpus.documents) docs.push_back(std::move(d.text));
  log::info("training a " + cfg.tokenizer.model_type + " tokenizer (" +
            std::to_string(cfg.tokenizer.vocab_size) + " pieces) on " +
            std::to_string(docs.size()) + " documents");
  const auto tok = text::Tokenizer::train(cfg.tokenizer, docs, runtime.threads);
  tok.save(args.out);
  log::info("wrote " + args.out + " (" + std::to_string(tok.vocab_size()) + " pieces) in " +
            std::to_string(seconds_since(start)).substr(0, 6) + " s");
  return 0;
}

int encode(const TokenizerArgs& args) {
  const auto tok = text::Tokenizer::load(args.model);
  if (!args.split.empty()) {
    // Corpus mode: tokenise a config's data split through the token cache.
    const config::Config cfg = load_config(args.config);
    text::check_data_paths(cfg);
    const auto runtime = start_runtime(cfg);
    const auto& source = split_source(cfg, args.split);
    if (!source.given()) throw ConfigError("data." + args.split + ".path: not given");
    text::TokenCacheOptions cache{cfg.data.cache_dir, !args.no_cache, runtime.threads,
                                  static_cast<std::uint64_t>(cfg.seed)};
    const auto start = std::chrono::steady_clock::now();
    const auto corpus = text::load_tokenized(source, tok, cache);
    const nlohmann::json report = {{"documents", corpus.size()},
                                   {"tokens", corpus.total_tokens()},
                                   {"labels", corpus.label_names()},
                                   {"seconds", seconds_since(start)},
                                   {"cache_hit", corpus.from_cache()},
                                   {"threads", runtime.threads}};
    std::cout << report.dump() << "\n";
    return 0;
  }
  for_each_input_line(args.input, [&](const std::string& line) {
    std::ostringstream out;
    if (args.pieces) {
      for (const auto& p : tok.encode_pieces(line)) out << (out.tellp() > 0 ? " " : "") << p;
    } else {
      for (int id : tok.encode(line)) out << (out.tellp() > 0 ? " " : "") << id;
    }
    std::cout << out.str() << "\n";
  });
  return 0;
}

int decode(const TokenizerArgs& args) {
  const auto tok = text::Tokenizer::load(args.model);
  long number = 0;
  for_each_input_line(args.input, [&](const std::string& line) {
    ++number;
    std::istringstream in(line);
    std::vector<int> ids;
    std::string word;
    while (in >> word) {
      try {
        std::size_t used = 0;
        ids.push_back(std::stoi(word, &used));
        if (used != word.size()) throw std::invalid_argument(word);
      } catch (const std::logic_error&) {
        throw DataError(at_location(args.input == "-" ? "<stdin>" : args.input, number,
                                    "not a token id: '" + word + "'"));
      }
    }
    std::cout << tok.decode(ids) << "\n";
  });
  return 0;
}

}  // namespace

void add_tokenizer_commands(CLI::App& app, const Runner& on_run) {
  auto args = std::make_shared<TokenizerArgs>();
  auto* group = app.add_subcommand("tokenizer", "Train, apply and invert SentencePiece tokenizers");
  group->require_subcommand(1);

  auto* train_cmd = group->add_subcommand("train", "Train a tokenizer on a config's data.train");
  add_config_options(train_cmd, args->config, /*config_required=*/false);
  train_cmd->add_option("--out", args->out, "Where to write the model (.model)");
  train_cmd->callback([args, on_run] { on_run([args] { return train(*args); }); });

  auto* encode_cmd = group->add_subcommand(
      "encode", "Text lines to token ids; or, with --split, a config's corpus through the cache");
  encode_cmd->add_option("--model", args->model, "Tokenizer model")->required();
  encode_cmd->add_option("--input", args->input, "Text file, or - for stdin")->capture_default_str();
  encode_cmd->add_flag("--pieces", args->pieces, "Print pieces instead of ids");
  encode_cmd->add_option("--split", args->split, "Tokenise data.<split> of --config (train|valid|test)");
  encode_cmd->add_flag("--no-cache", args->no_cache, "With --split: neither read nor write the cache");
  add_config_options(encode_cmd, args->config, /*config_required=*/false);
  encode_cmd->callback([args, on_run] { on_run([args] { return encode(*args); }); });

  auto* decode_cmd = group->add_subcommand("decode", "Lines of token ids back to text");
  decode_cmd->add_option("--model", args->model, "Tokenizer model")->required();
  decode_cmd->add_option("--input", args->input, "Id file, or - for stdin")->capture_default_str();
  decode_cmd->callback([args, on_run] { on_run([args] { return decode(*args); }); });
}

}  // namespace ulmfit::cli
