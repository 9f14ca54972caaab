// `ulmfit bench`: the stages' own training and predict code timed on
// synthetic token ids of the config's shapes.
#include "ulmfit/pipeline/bench.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <random>

#include "stage_support.h"
#include "ulmfit/nn/model_factory.h"
#include "ulmfit/tasks/classification.h"
#include "ulmfit/tasks/language_modeling.h"
#include "ulmfit/train/precision.h"
#include "ulmfit/util/error.h"
#include "ulmfit/util/log.h"

namespace ulmfit::pipeline {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<int> random_ids(std::size_t n, std::int64_t vocab, std::mt19937_64& rng) {
  // Ids from the first non-special one up: any text the tokenizer produces.
  std::uniform_int_distribution<int> id(text::SpecialIds::kMask + 1, static_cast<int>(vocab) - 1);
  std::vector<int> out(n);
  for (auto& x : out) x = id(rng);
  return out;
}

/// Runs the Learner for one epoch over `task` and returns items/s over the
/// steps after the warm-up, timed at each step's metrics line.
double timed_fit(train::Task& task, const config::Config& cfg, const util::RuntimeInfo& runtime,
                 const torch::Device& device, const BenchOptions& options, double items_per_step) {
  auto fit = detail::fit_options(cfg, runtime, device, "bench", task.layer_groups().size());
  fit.epochs = 1;
  fit.freeze_plan = {0};  // every group trains: the most work per step
  fit.log_every = 1;
  fit.checkpoint_every = 0;
  fit.eval_every = 0;
  fit.patience = 0;
  std::vector<Clock::time_point> stamps;
  train::FitCallbacks callbacks;
  callbacks.metrics = [&stamps](const std::string& line) {
    if (line.find("\"eval\"") == std::string::npos) stamps.push_back(Clock::now());
  };
  train::Learner(task, fit, callbacks).fit();
  const auto timed = static_cast<std::size_t>(options.steps);
  if (stamps.size() < timed + 1) throw RuntimeFailure("bench: fewer steps ran than asked for");
  const auto start = stamps[stamps.size() - timed - 1];
  const double seconds = std::chrono::duration<double>(stamps.back() - start).count();
  return items_per_step * static_cast<double>(timed) / std::max(seconds, 1e-9);
}

/// Multiply-adds per token in the LM's matrix products: the LSTMs' input and
/// hidden matrices, or a Transformer's projections (12 d^2 per block) and its
/// attention scores and mixing (2 x window x d per block, the usual count for
/// model FLOPs utilisation); then the tied decoder (the embedding is a lookup).
double lm_matmul_params(const config::ModelConfig& m, std::int64_t vocab, int window) {
  double params = 0;
  const double d = m.emb_size;
  for (int l = 0; l < m.layers; ++l) {
    if (m.backbone == "awd_lstm") {
      const double in = l == 0 ? m.emb_size : m.hidden_size;
      const double out = l == m.layers - 1 ? m.emb_size : m.hidden_size;
      params += 4.0 * out * (in + out);
    } else if (m.backbone == "qrnn") {  // three gates over a window of 2 inputs (first layer) or 1
      const double in = l == 0 ? 2.0 * m.emb_size : m.hidden_size;
      const double out = l == m.layers - 1 ? m.emb_size : m.hidden_size;
      params += 3.0 * out * in;
    } else {
      params += 12.0 * d * d + 2.0 * window * d;
    }
  }
  return params + d * static_cast<double>(vocab);
}

}  // namespace

double matmul_gflops(const std::string& dtype, int n, const std::string& device) {
  torch::NoGradGuard no_grad;
  const auto options = torch::TensorOptions().device(device).dtype(train::precision_dtype(dtype));
  const auto a = torch::rand({n, n}, options), b = torch::rand({n, n}, options);
  auto c = torch::mm(a, b);
  double best = 1e30;
  for (int i = 0; i < 5; ++i) {
    const auto start = Clock::now();
    c = torch::mm(a, b);
    (void)c.sum().item<float>();  // waits for a GPU
    best = std::min(best, std::chrono::duration<double>(Clock::now() - start).count());
  }
  return 2.0 * n * n * static_cast<double>(n) / best / 1e9;
}

BenchResult bench(const config::Config& cfg, const util::RuntimeInfo& runtime, const BenchOptions& options) {
  if (options.steps < 1 || options.warmup < 0) throw UsageError("bench: --steps must be >= 1 and --warmup >= 0");
  nn::check_architecture(cfg, true);
  const auto device = detail::prepare_runtime(cfg, runtime);
  const std::int64_t vocab = cfg.tokenizer.vocab_size;
  const int batch = cfg.train.batch_size, bptt = cfg.train.bptt;
  const auto total_steps = static_cast<std::size_t>(options.steps + options.warmup);
  std::mt19937_64 rng(static_cast<std::uint64_t>(cfg.seed));

  BenchResult r;
  r.precision = runtime.precision;
  r.device = runtime.device;
  r.threads = runtime.threads;
  r.libtorch = TORCH_VERSION;
  r.vocab = vocab;
  r.emb = cfg.model.emb_size;
  const bool lstm = nn::is_recurrent(cfg.model);
  r.backbone = cfg.model.backbone;
  r.hidden = lstm ? cfg.model.hidden_size : 4 * cfg.model.emb_size;
  r.heads = lstm ? 0 : cfg.model.heads;
  r.layers = cfg.model.layers;
  r.bptt = bptt;
  r.batch = batch;
  r.steps = options.steps;
  r.warmup = options.warmup;
  r.doc_tokens = options.doc_tokens;

  if (options.lm) {
    // One document exactly batch x steps x bptt targets long: every window is full.
    const auto corpus = text::TokenizedCorpus::from_documents(
        {random_ids(static_cast<std::size_t>(batch) * total_steps * static_cast<std::size_t>(bptt), vocab, rng)});
    auto model = nn::make_language_model(cfg.model, vocab);
    model->to(device);
    auto task_options = detail::lm_task_options(cfg, device);
    task_options.train_stream.variable_bptt = false;  // fixed shapes, as the reference script
    tasks::LanguageModelingTask task(model, corpus, nullptr, task_options);
    log::info("bench: LM training, " + std::to_string(total_steps) + " steps of " + std::to_string(batch) + " x " +
              std::to_string(bptt) + " tokens");
    r.lm_train_tokens_per_s = timed_fit(task, cfg, runtime, device, options, static_cast<double>(batch) * bptt);
    r.lm_train_gflops = r.lm_train_tokens_per_s * 6.0 * lm_matmul_params(cfg.model, vocab, bptt) / 1e9;
  }
  if (options.classifier || options.predict) {
    std::vector<std::vector<int>> docs;
    std::vector<std::int32_t> labels;
    for (std::size_t d = 0; d < total_steps * static_cast<std::size_t>(batch); ++d) {
      docs.push_back(random_ids(static_cast<std::size_t>(options.doc_tokens), vocab, rng));
      labels.push_back(static_cast<std::int32_t>(d % 2));
    }
    const auto corpus = text::TokenizedCorpus::from_documents(docs, labels, {"a", "b"});
    auto model = nn::make_classifier(cfg.model, cfg.train, vocab, 2);
    model->to(device);
    if (options.classifier) {
      tasks::ClassificationTask task(model, corpus, nullptr, detail::classification_task_options(cfg, device));
      log::info("bench: classifier training, " + std::to_string(total_steps) + " steps of " + std::to_string(batch) +
                " documents of " + std::to_string(options.doc_tokens) + " tokens");
      r.clf_train_docs_per_s = timed_fit(task, cfg, runtime, device, options, batch);
    }
    if (options.predict) {
      model->eval();
      torch::NoGradGuard no_grad;
      train::AutocastScope autocast(runtime.precision, device);
      const auto warm = corpus.subset({0, 1});
      (void)tasks::predict_probabilities(*model, warm, batch * 2, bptt, device);
      const auto start = Clock::now();
      (void)tasks::predict_probabilities(*model, corpus, batch * 2, bptt, device);
      r.predict_docs_per_s =
          static_cast<double>(corpus.size()) / std::chrono::duration<double>(Clock::now() - start).count();
    }
  }
  const std::string dev = device.str();
  r.matmul_peak_fp32_gflops = matmul_gflops("fp32", 2048, dev);
  r.matmul_peak_bf16_gflops = runtime.precision == "bf16" || runtime.cpu.bf16() || device.is_cuda()
                                  ? matmul_gflops("bf16", 2048, dev)
                                  : 0.0;
  r.matmul_peak_gflops = runtime.precision == "bf16" ? r.matmul_peak_bf16_gflops : r.matmul_peak_fp32_gflops;
  return r;
}

std::string BenchResult::to_json() const {
  nlohmann::json j{{"lm_train_tokens_per_s", lm_train_tokens_per_s},
                   {"clf_train_docs_per_s", clf_train_docs_per_s},
                   {"predict_docs_per_s", predict_docs_per_s},
                   {"lm_train_gflops", lm_train_gflops},
                   {"matmul_peak_gflops", matmul_peak_gflops},
                   {"matmul_peak_fp32_gflops", matmul_peak_fp32_gflops},
                   {"matmul_peak_bf16_gflops", matmul_peak_bf16_gflops},
                   {"lm_peak_fraction", matmul_peak_gflops > 0 ? lm_train_gflops / matmul_peak_gflops : 0.0},
                   {"precision", precision},
                   {"threads", threads},
                   {"device", device},
                   {"libtorch", libtorch},
                   {"vocab", vocab},
                   {"emb", emb},
                   {"backbone", backbone},
                   {"hidden", hidden},
                   {"layers", layers},
                   {"heads", heads},
                   {"bptt", bptt},
                   {"batch", batch},
                   {"steps", steps},
                   {"warmup", warmup},
                   {"doc_tokens", doc_tokens}};
  return j.dump();
}

}  // namespace ulmfit::pipeline
