// evaluate, predict and generate: loading a run and using its model.
#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "stage_support.h"
#include "ulmfit/nn/model_factory.h"
#include "ulmfit/pipeline/stages.h"
#include "ulmfit/tasks/classification.h"
#include "ulmfit/tasks/language_modeling.h"
#include "ulmfit/text/corpus.h"
#include "ulmfit/text/normalize.h"
#include "ulmfit/train/precision.h"
#include "ulmfit/util/error.h"
#include "ulmfit/util/log.h"

namespace ulmfit::pipeline {
namespace {

/// A run's model, tokenizer and config, ready for inference.
struct LoadedRun {
  RunDir run;
  config::Config cfg;
  text::Tokenizer tokenizer;
  torch::Device device;
};

LoadedRun load_run(const std::string& dir, const util::RuntimeInfo& runtime) {
  RunDir run = RunDir::open(dir);
  auto cfg = run.read_config();
  auto tokenizer = text::Tokenizer::load_from_run(run.path());
  if (tokenizer.vocab_size() != run.meta().vocab_size) {
    throw CheckpointError(run.file(tokenizer.file_name()) + ": has " + std::to_string(tokenizer.vocab_size()) +
                          " pieces but the run's model expects " + std::to_string(run.meta().vocab_size));
  }
  torch::manual_seed(0);
  return {std::move(run), std::move(cfg), std::move(tokenizer), torch::Device(runtime.device)};
}

/// The dtype a classifier's weights take for inference. Under autocast a
/// Transformer with fp32 weights converts every block's bf16 products back to
/// fp32 for the residual sum and LayerNorm, and casts the weights again each
/// batch; holding the encoder's weights in bf16 keeps its forward pass in bf16
/// (LibTorch's CPU LayerNorm and softmax accumulate in fp32 internally).
/// AWD-LSTM and the n-grams bag stay fp32: their recurrence and sums are the
/// parts that lose precision, and their products are a small share of the time.
torch::Dtype inference_dtype(const config::ModelConfig& model, const std::string& precision) {
  if (model.backbone == "awd_lstm" || model.backbone == "ngrams") return torch::kFloat;
  if (precision == "bf16") return torch::kBFloat16;
  if (precision == "fp16") return torch::kHalf;
  return torch::kFloat;
}

nn::SequenceClassifier load_classifier(const LoadedRun& r, const std::string& precision) {
  auto model = nn::make_classifier(r.cfg.model, r.cfg.train, r.tokenizer.vocab_size(),
                                   static_cast<int64_t>(r.run.meta().labels.size()));
  r.run.load_weights(*model, "model.pt");
  model->to(r.device);
  // The head stays fp32: CPU BatchNorm takes bf16 inputs only with fp32 parameters.
  model->encoder->to(inference_dtype(r.cfg.model, precision));
  model->eval();
  return model;
}

nn::LanguageModel load_language_model(const LoadedRun& r) {
  auto model = nn::make_language_model(r.cfg.model, r.tokenizer.vocab_size());
  r.run.load_weights(*model, "model.pt");
  model->to(r.device);
  model->eval();
  return model;
}

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

namespace {
/// Documents per inference batch. Transformers run fastest in small batches
/// on CPU (MiniLM, 500 IMDB reviews of 256 tokens, 2 cores, bf16: 12.5 s in
/// batches of 16, 15.9 s of 32, 17.5 s of 64: the activations of a larger
/// batch outgrow the caches); AWD-LSTM's recurrence wants wide batches.
int inference_batch_size(const config::ModelConfig& model, int requested, int awd_lstm_default) {
  if (requested > 0) return requested;
  return model.backbone == "awd_lstm" ? awd_lstm_default : 16;
}
}  // namespace

Evaluation evaluate(const std::string& run_dir, const DataSpec& data, const util::RuntimeInfo& runtime) {
  const auto r = load_run(run_dir, runtime);
  Evaluation e;
  e.task = r.run.meta().task;
  torch::NoGradGuard no_grad;
  train::AutocastScope autocast(runtime.precision, r.device);
  if (e.task == "lm") {
    auto model = load_language_model(r);
    const auto corpus = text::load_tokenized(source_for(r.cfg, data, "text"), r.tokenizer, inference_cache(r.cfg, runtime));
    e.documents = corpus.size();
    e.metrics = tasks::evaluate_language_model(*model, corpus, r.cfg.train.batch_size, r.cfg.train.bptt, r.device,
                                               detail::lm_task_options(r.cfg, r.device).objective);
    return e;
  }
  auto model = load_classifier(r, runtime.precision);
  e.labels = r.run.meta().labels;
  const auto corpus = text::load_tokenized(source_for(r.cfg, data, "text"), r.tokenizer, inference_cache(r.cfg, runtime),
                                           e.labels);
  std::vector<std::int64_t> truth;
  for (std::size_t i = 0; i < corpus.size(); ++i) {
    if (corpus.label(i) < 0) throw DataError(data.path + ": evaluate needs labelled documents; found unlabelled ones");
    truth.push_back(corpus.label(i));
  }
  const auto probs =
      tasks::predict_probabilities(*model, corpus, inference_batch_size(r.cfg.model, 0, r.cfg.train.batch_size * 2),
                                   r.cfg.train.bptt, r.device);
  const auto argmax = probs.argmax(1).contiguous();
  std::vector<std::int64_t> predicted(argmax.data_ptr<std::int64_t>(), argmax.data_ptr<std::int64_t>() + argmax.numel());
  e.documents = corpus.size();
  e.report = train::classification_report(truth, predicted, static_cast<int>(e.labels.size()));
  e.metrics = {{"accuracy", e.report.accuracy}, {"macro_f1", e.report.macro_f1}};
  return e;
}

std::size_t predict(const std::string& run_dir, const std::string& input, const std::string& output,
                    const DataSpec& format, int batch_size, const util::RuntimeInfo& runtime) {
  const auto r = load_run(run_dir, runtime);
  if (r.run.meta().task != "classifier") throw CheckpointError(run_dir + ": predict needs a classifier run");
  auto model = load_classifier(r, runtime.precision);
  const auto& labels = r.run.meta().labels;

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
    auto source = source_for(r.cfg, spec, fmt);
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
  torch::NoGradGuard no_grad;
  train::AutocastScope autocast(runtime.precision, r.device);
  // Blocks bound memory; within a block, documents are batched by length.
  constexpr std::size_t kBlock = 4096;
  for (std::size_t start = 0; start < texts.size(); start += kBlock) {
    const std::vector<std::string> block(texts.begin() + static_cast<std::ptrdiff_t>(start),
                                         texts.begin() + static_cast<std::ptrdiff_t>(std::min(texts.size(), start + kBlock)));
    const auto corpus = text::TokenizedCorpus::from_documents(r.tokenizer.encode_batch(block, runtime.threads));
    const auto probs = tasks::predict_probabilities(*model, corpus, inference_batch_size(r.cfg.model, batch_size, 64),
                                                    r.cfg.train.bptt, r.device);
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
  const auto r = load_run(run_dir, runtime);
  if (r.run.meta().task != "lm") throw CheckpointError(run_dir + ": generate needs a language model run");
  if (nn::is_masked_lm(r.cfg.model)) {
    throw CheckpointError(run_dir + ": is a masked language model (model.backbone: bert), which cannot generate "
                          "text left to right; use an awd_lstm or transformer run");
  }
  if (options.max_tokens < 0) throw UsageError("--max-tokens must be >= 0");
  auto model = load_language_model(r);
  std::vector<int> ids{text::SpecialIds::kBos};
  for (int id : r.tokenizer.encode(options.prompt)) ids.push_back(id);
  const std::size_t prompt_length = ids.size();
  torch::NoGradGuard no_grad;
  train::AutocastScope autocast(runtime.precision, r.device);
  ids = sample_tokens(*model, std::move(ids), options, r.device, true);
  log::debug("generated " + std::to_string(ids.size() - prompt_length) + " tokens");
  return r.tokenizer.decode(std::vector<int>(ids.begin() + 1, ids.end()));
}

}  // namespace ulmfit::pipeline
