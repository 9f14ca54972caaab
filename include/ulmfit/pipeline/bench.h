#pragma once
/// Throughput of the config's model and training shapes on synthetic token
/// ids (no data files), through the same Learner, tasks and predict code the
/// stages use: LM training tokens/s, classifier training documents/s and
/// predict documents/s, plus the machine's matrix-product peak.
///
///   auto result = pipeline::bench(cfg, runtime, {.steps = 20, .warmup = 3});
///   std::cout << result.to_json();
#include <string>

#include "ulmfit/config/config.h"
#include "ulmfit/util/system_info.h"

namespace ulmfit::pipeline {

struct BenchOptions {
  int steps = 20;          // timed training steps (and predict batches)
  int warmup = 3;          // untimed steps first
  int doc_tokens = 400;    // classifier documents' length (IMDB's median is about 300 tokens)
  bool lm = true, classifier = true, predict = true;
};

struct BenchResult {
  double lm_train_tokens_per_s = 0;
  double clf_train_docs_per_s = 0;
  double predict_docs_per_s = 0;
  double lm_train_gflops = 0;       // model FLOP/s of LM training (6 x matmul parameters per token)
  double matmul_peak_gflops = 0;    // 2048^3 product at the run's precision and threads
  double matmul_peak_fp32_gflops = 0;
  double matmul_peak_bf16_gflops = 0;
  std::string precision, device, libtorch;
  int threads = 0;
  std::string backbone;
  // hidden: the LSTM width (awd_lstm) or the feed-forward width (4 x emb, Transformers)
  std::int64_t vocab = 0, emb = 0, hidden = 0, layers = 0, heads = 0, bptt = 0, batch = 0;
  int steps = 0, warmup = 0, doc_tokens = 0;
  std::string to_json() const;
};

BenchResult bench(const config::Config& cfg, const util::RuntimeInfo& runtime, const BenchOptions& options);

/// GFLOP/s of an n x n x n matrix product in `dtype` ("fp32" | "bf16") on the
/// current threads and device: the best of several runs.
double matmul_gflops(const std::string& dtype, int n, const std::string& device);

}  // namespace ulmfit::pipeline
