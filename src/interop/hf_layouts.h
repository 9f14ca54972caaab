#pragma once
// The Hugging Face architectures import and export know: for each, how
// config.json maps to the toolkit's model section and how checkpoint tensor
// names map to the toolkit's Transformer (one implementation, with options).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ulmfit/config/config.h"

namespace ulmfit::interop {

/// One tensor in both namings: the toolkit's (inside the backbone) and the
/// checkpoint's (without the task model's prefix). Several checkpoint names
/// are stacked along dim 0 (query, key, value into one projection);
/// `transposed` marks GPT-2's Conv1D weights, stored [in, out].
struct TensorName {
  std::string toolkit;
  std::vector<std::string> hugging_face;
  bool transposed = false;
};

struct Layout {
  std::string model_type;          // config.json's model_type
  std::string prefix;              // the encoder's prefix inside task models ("bert.")
  std::vector<TensorName> tensors;  // every encoder tensor
  std::string output_bias;         // the LM head's bias, "" when the head has none
  /// Checkpoint tensors this architecture has but the toolkit's model does
  /// not use (BERT's pooler, GPT-2's attention-mask buffers).
  std::function<bool(const std::string&)> known_unused;
  /// model.pooling: hugging_face's head: toolkit name (inside the head) ->
  /// checkpoint name in `classifier_architecture`.
  std::vector<std::pair<std::string, std::string>> classifier_head;
  std::string classifier_architecture;
};

/// The layout of `model_type` with `layers` blocks (bert, distilbert, gpt2).
Layout layout_for(const std::string& model_type, std::int64_t layers);

/// config.json -> the toolkit's model section. CheckpointError naming
/// `origin` and the field for a model_type or option the toolkit lacks.
config::ModelConfig model_config_from(const nlohmann::json& hf_config, const std::string& origin);
/// config.json's vocab_size.
std::int64_t config_vocab_size(const nlohmann::json& hf_config, const std::string& origin);

/// config.json for a run's model section in `model_type`'s layout.
nlohmann::json config_json_for(const std::string& model_type, const config::ModelConfig& model,
                               std::int64_t vocab_size, int pad_id, int bos_id);

}  // namespace ulmfit::interop
