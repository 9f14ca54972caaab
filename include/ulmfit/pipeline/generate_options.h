#pragma once
/// How `generate` samples (and /v1/generate, which parses the same options
/// from JSON). No LibTorch here, so the request parser's fuzz target stays light.
#include <cstdint>
#include <string>

namespace ulmfit::pipeline {

struct GenerateOptions {
  std::string prompt;
  int max_tokens = 100;
  double temperature = 1.0;
  int top_k = 0;       // 0 = no cut
  double top_p = 1.0;  // 1 = no cut
  std::int64_t seed = 42;
};

}  // namespace ulmfit::pipeline
