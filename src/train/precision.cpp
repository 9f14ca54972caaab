#include "ulmfit/train/precision.h"

#include <ATen/autocast_mode.h>

namespace ulmfit::train {

torch::Dtype precision_dtype(const std::string& precision) {
  if (precision == "bf16") return torch::kBFloat16;
  if (precision == "fp16") return torch::kHalf;
  return torch::kFloat;
}

AutocastScope::AutocastScope(const std::string& precision, const torch::Device& device) {
  if (precision == "fp32") return;
  device_type_ = device.type();
  active_ = true;
  was_enabled_ = at::autocast::is_autocast_enabled(device_type_);
  previous_dtype_ = at::autocast::get_autocast_dtype(device_type_);
  at::autocast::set_autocast_dtype(device_type_, precision_dtype(precision));
  at::autocast::set_autocast_enabled(device_type_, true);
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  at::autocast::set_autocast_enabled(device_type_, was_enabled_);
  at::autocast::set_autocast_dtype(device_type_, previous_dtype_);
  if (!was_enabled_) at::autocast::clear_cache();
}

}  // namespace ulmfit::train
