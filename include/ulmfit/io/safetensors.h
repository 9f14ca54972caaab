#pragma once
/// safetensors files (the Hugging Face weight format): an 8-byte little-endian
/// header length, a JSON header naming each tensor's dtype, shape and byte
/// range, then the raw bytes. Reading memory-maps the file and checks every
/// entry against it before any tensor is made, so a lying header is an error
/// that names the file and the tensor, never a crash.
///
///   TensorMap weights = read_safetensors("model/model.safetensors");   // fp32 copies
///   write_safetensors("out/model.safetensors", weights, {{"format", "pt"}});
///   TensorMap all = read_checkpoint_dir("model");  // model.safetensors, or its sharded index
#include <torch/torch.h>

#include <map>
#include <string>

namespace ulmfit::io {

/// Tensors by name, in name order (the order safetensors headers list them).
using TensorMap = std::map<std::string, torch::Tensor>;

/// Reads every tensor of one file as an fp32 (floating types) or int64
/// (integer types) CPU tensor. F32, F16, BF16, F64, I64, I32 and BOOL are
/// understood. CheckpointError naming `path` (and the tensor) when the file is
/// missing, truncated, or its header is malformed or disagrees with the bytes.
TensorMap read_safetensors(const std::string& path);

/// Writes `tensors` (contiguous fp32 copies of floating tensors) atomically,
/// with `metadata` as the header's __metadata__.
void write_safetensors(const std::string& path, const TensorMap& tensors,
                       const std::map<std::string, std::string>& metadata = {});

/// A Hugging Face model directory's weights: model.safetensors, or the shards
/// that model.safetensors.index.json lists. CheckpointError naming the folder
/// when it has neither (a pytorch_model.bin alone is named in the message).
TensorMap read_checkpoint_dir(const std::string& dir);

}  // namespace ulmfit::io
