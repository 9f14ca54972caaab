#pragma once
/// Mixed precision: inside an AutocastScope, matrix products (and the LSTM
/// where LibTorch's autocast covers it) run in bf16 / fp16 while parameters,
/// optimizer state and losses stay fp32.
#include <torch/torch.h>

#include <string>

namespace ulmfit::train {

/// The dtype a resolved precision names: fp32 -> float, bf16 -> bfloat16,
/// fp16 -> half.
torch::Dtype precision_dtype(const std::string& precision);

class AutocastScope {
 public:
  /// precision: "fp32" (no-op), "bf16" or "fp16"; device: "cpu" or "cuda:N".
  AutocastScope(const std::string& precision, const torch::Device& device);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false;
  bool was_enabled_ = false;
  c10::DeviceType device_type_ = c10::DeviceType::CPU;
  at::ScalarType previous_dtype_ = at::kFloat;
};

}  // namespace ulmfit::train
