// evaluate, predict and generate: loading a run and using its model.
#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "stage_support.h"
#include "ulmfit/pipeline/loaded_model.h"
#include "ulmfit/pipeline/stages.h"
#include "ulmfit/text/corpus.h"
#include "ulmfit/text/normalize.h"
#include "ulmfit/util/error.h"
#include "ulmfit/util/log.h"

namespace ulmfit::pipeline {
namespace {

config::DataSource source_for(const config::Config& cfg, const DataSpec& spec, const std::string& fallback_format) {
  config::DataSource s = cfg.data.train;
  s.path = {spec.path};
  s.format = !spec.format.empty() ? spec.format : (s.format.empty() ? fallback_format : s.format);
  if (!spec.text_column.empty()) s.text_column = s.text_field = spec.text_column;
  if (!spec.label_column.empty()) s.label_column = s.label_field = spec.label_column;
  s.limit = spec.limit;
  s.balanced = spec.balanced;
  s.labels.clear();
  return s;
}

text::TokenCacheOptions inference_cache(const config::Config& cfg, const util::RuntimeInfo& runtime) {
  return {cfg.data.cache_dir, true, runtime.threads, 0};
}

std::string fixed(double x, int digits = 4) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << x;
  return s.str();
}

}  // namespace

std::string Evaluation::to_json() const {
  nlohmann::json j{{"task", task}, {"documents", documents}};
  for (const auto& [k, v] : metrics) j[k] = v;
  if (task == "classifier") {
    nlohmann::json classes = nlohmann::json::object();
    for (std::size_t c = 0; c < labels.size(); ++c) {
      classes[labels[c]] = {{"precision", report.precision[c]},
                            {"recall", report.recall[c]},
                            {"f1", report.f1[c]},
                            {"support", report.support[c]}};
    }
    j["per_class"] = classes;
    j["labels"] = labels;
    j["confusion"] = report.confusion;
  }
  return j.dump();
}

std::string Evaluation::to_table() const {
  std::ostringstream out;
  if (task == "lm") {
    out << "documents   " << documents << "\nloss        " << fixed(metrics.at("loss")) << "\nperplexity  "
        << fixed(metrics.at("perplexity"), 2) << "\n";
    return out.str();
  }
  out << "documents " << documents << "   accuracy " << fixed(report.accuracy) << "   macro-F1 "
      << fixed(report.macro_f1) << "\n\n";
  std::size_t width = 5;
  for (const auto& l : labels) width = std::max(width, l.size());
  out << std::left << std::setw(static_cast<int>(width)) << "class" << "  precision  recall  f1      support\n";
  for (std::size_t c = 0; c < labels.size(); ++c) {
    out << std::left << std::setw(static_cast<int>(width)) << labels[c] << "  " << fixed(report.precision[c])
        << "     " << fixed(report.recall[c]) << "  " << fixed(report.f1[c]) << "  " << report.support[c] << "\n";
  }
  out << "\nconfusion (rows: true, columns: predicted)\n" << std::setw(static_cast<int>(width)) << "";
  for (const auto& l : labels) out << "  " << std::right << std::setw(static_cast<int>(width)) << l;
  out << "\n";
  for (std::size_t r = 0; r < labels.size(); ++r) {
    out << std::left << std::setw(static_cast<int>(width)) << labels[r];
    for (std::size_t c = 0; c < labels.size(); ++c) {
      out << "  " << std::right << std::setw(static_cast<int>(width)) << report.confusion[r][c];
    }
    out << "\n";
  }
  return out.str();
}


Evaluation evaluate(const std::string& run_dir, const DataSpec& data, const util::RuntimeInfo& runtime) {
  const LoadedModel model(run_dir, runtime);
  const auto& cfg = model.config();
  Evaluation e;
  e.task = model.meta().task;
  if (e.task == "lm") {
    const auto corpus = text::load_tokenized(source_for(cfg, data, "text"), model.tokenizer(), inference_cache(cfg, runtime));
    e.documents = corpus.size();
    e.metrics = model.evaluate_language_model(corpus);
    return e;
  }
  e.labels = model.meta().labels;
  const auto corpus =
      text::load_tokenized(source_for(cfg, data, "text"), model.tokenizer(), inference_cache(cfg, runtime), e.labels);
  std::vector<std::int64_t> truth;
  for (std::size_t i = 0; i < corpus.size(); ++i) {
    if (corpus.label(i) < 0) throw DataError(data.path + ": evaluate needs labelled documents; found unlabelled ones");
    truth.push_back(corpus.label(i));
  }
  const auto argmax = model.classify(corpus).argmax(1).contiguous();
  std::vector<std::int64_t> predicted(argmax.data_ptr<std::int64_t>(), argmax.data_ptr<std::int64_t>() + argmax.numel());
  e.documents = corpus.size();
  e.report = train::classification_report(truth, predicted, static_cast<int>(e.labels.size()));
  e.metrics = {{"accuracy", e.report.accuracy}, {"macro_f1", e.report.macro_f1}};
  return e;
}

std::size_t predict(const std::string& run_dir, const std::string& input, const std::string& output,
                    const DataSpec& format, int batch_size, const util::RuntimeInfo& runtime) {
  const LoadedModel model(run_dir, runtime);
  if (model.meta().task != "classifier") throw CheckpointError(run_dir + ": predict needs a classifier run");
  const auto& labels = model.meta().labels;

  std::vector<std::string> texts;
  const std::string fmt = format.format.empty() ? "text" : format.format;
  if (fmt == "text") {
    // Every line is a document, empty ones included, so output lines match input lines.
    std::ifstream file;
    if (input != "-") {
      file.open(input);
      if (!file) throw DataError(input + ": cannot open file");
    }
    std::istream& in = input == "-" ? std::cin : file;
    for (std::string line; std::getline(in, line);) texts.push_back(text::normalize_document(line, true));
  } else {
    if (input == "-") throw UsageError("predict: --format " + fmt + " reads a file, not stdin");
    DataSpec spec = format;
    spec.path = input;
    auto source = source_for(model.config(), spec, fmt);
    source.label_column.clear();
    source.label_field.clear();
    for (auto& d : text::read_corpus(source).documents) texts.push_back(std::move(d.text));
  }

  std::ofstream file_out;
  if (output != "-") {
    file_out.open(output);
    if (!file_out) throw RuntimeFailure(output + ": cannot write");
  }
  std::ostream& out = output == "-" ? std::cout : file_out;
  // Blocks bound memory; within a block, documents are batched by length.
  constexpr std::size_t kBlock = 4096;
  for (std::size_t start = 0; start < texts.size(); start += kBlock) {
    const std::vector<std::string> block(texts.begin() + static_cast<std::ptrdiff_t>(start),
                                         texts.begin() + static_cast<std::ptrdiff_t>(std::min(texts.size(), start + kBlock)));
    const auto probs = model.classify(block, batch_size);
    for (std::int64_t i = 0; i < probs.size(0); ++i) {
      nlohmann::json p = nlohmann::json::object();
      for (std::size_t c = 0; c < labels.size(); ++c) p[labels[c]] = probs[i][static_cast<std::int64_t>(c)].item<double>();
      out << nlohmann::json{{"label", labels[static_cast<std::size_t>(probs[i].argmax().item<std::int64_t>())]},
                            {"probabilities", p}}
                 .dump()
          << "\n";
    }
  }
  out.flush();
  if (!out) throw RuntimeFailure(output + ": write failed");
  return texts.size();
}

torch::Tensor sampling_distribution(const torch::Tensor& logits, double temperature, int top_k, double top_p) {
  if (temperature <= 0) throw UsageError("--temperature must be > 0");
  if (top_p <= 0 || top_p > 1) throw UsageError("--top-p must be in (0, 1]");
  auto probs = torch::softmax(logits.to(torch::kFloat) / temperature, -1);
  auto [sorted, order] = probs.sort(-1, /*descending=*/true);
  auto keep = torch::ones_like(sorted, torch::kBool);
  if (top_k > 0 && top_k < sorted.size(-1)) keep.slice(-1, top_k).fill_(false);
  if (top_p < 1) {
    // Keep a token while the mass before it is below top_p: the first always stays.
    const auto before = sorted.cumsum(-1) - sorted;
    keep = keep & (before < top_p);
  }
  auto filtered = torch::zeros_like(probs).scatter(-1, order, sorted * keep.to(sorted.dtype()));
  return filtered / filtered.sum(-1, true);
}

std::vector<int> sample_tokens(nn::LanguageModelImpl& model, std::vector<int> ids, const GenerateOptions& options,
                               const torch::Device& device, bool use_cache) {
  const auto context = static_cast<std::size_t>(model.encoder->max_context());
  auto generator = at::make_generator<at::CPUGeneratorImpl>(static_cast<std::uint64_t>(options.seed));
  const auto tail = [&](std::size_t n) {
    const std::vector<std::int64_t> last(ids.end() - static_cast<std::ptrdiff_t>(std::min(n, ids.size())), ids.end());
    return torch::tensor(last).unsqueeze(0).to(device);
  };
  nn::RecurrentState state;
  std::size_t in_state = 0;  // tokens the state (LSTM memory or key/value cache) has read
  auto input = tail(ids.size());
  for (int step = 0; step < options.max_tokens; ++step) {
    if (!use_cache) {
      state.reset();
      input = tail(context > 0 ? context : ids.size());
      in_state = 0;
    } else if (context > 0 && in_state + static_cast<std::size_t>(input.size(1)) > context) {
      // The cache is full: start again from the most recent half context.
      state.reset();
      input = tail(context / 2);
      in_state = 0;
    }
    const auto out = model.forward(input, state);
    in_state += static_cast<std::size_t>(input.size(1));
    const auto logits = out.logits.index({0, -1}).to(torch::kCPU);
    const auto probs = sampling_distribution(logits, options.temperature, options.top_k, options.top_p);
    const int next = static_cast<int>(torch::multinomial(probs, 1, false, generator).item<std::int64_t>());
    if (next == text::SpecialIds::kBos || next == text::SpecialIds::kEos) break;
    ids.push_back(next);
    // The state already holds everything before: feed only the new token.
    input = torch::tensor({static_cast<std::int64_t>(next)}).view({1, 1}).to(device);
  }
  return ids;
}

std::string generate(const std::string& run_dir, const GenerateOptions& options, const util::RuntimeInfo& runtime) {
  return LoadedModel(run_dir, runtime).generate(options).text;
}

}  // namespace ulmfit::pipeline
