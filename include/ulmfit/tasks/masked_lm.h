#pragma once
/// BERT's masked-LM corruption (Devlin et al. 2019): a share `probability` of
/// the non-special positions is chosen; of those, 80 % become <mask>, 10 % a
/// random ordinary token and 10 % stay as they are. The loss reads only the
/// chosen positions; special tokens (<pad>, <unk>, <s>, </s>, <mask>) are never chosen.
///
///   auto masked = mask_tokens(batch.input, vocab_size, 0.15);   // the global generator
///   auto loss = lm_loss(model(masked.input).logits, masked.target);
#include <torch/torch.h>

#include <optional>

namespace ulmfit::tasks {

struct MaskedTokens {
  torch::Tensor input;   // the corrupted tokens the model reads
  torch::Tensor target;  // the original token at chosen positions, kIgnoreIndex elsewhere
};

/// `generator` empty: LibTorch's default CPU generator (so a resumed run draws
/// the same masks). Runs on the CPU and returns tensors there.
MaskedTokens mask_tokens(const torch::Tensor& tokens, int64_t vocab_size, double probability,
                         std::optional<at::Generator> generator = std::nullopt);

}  // namespace ulmfit::tasks
