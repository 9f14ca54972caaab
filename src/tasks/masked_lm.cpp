#include "ulmfit/tasks/masked_lm.h"

#include "ulmfit/text/lm_stream.h"
#include "ulmfit/text/tokenizer.h"

namespace ulmfit::tasks {

MaskedTokens mask_tokens(const torch::Tensor& tokens, int64_t vocab_size, double probability,
                         std::optional<at::Generator> generator) {
  TORCH_CHECK(vocab_size > text::SpecialIds::kCount, "mask_tokens: the vocabulary has no ordinary tokens");
  const auto cpu = tokens.to(torch::kCPU, torch::kLong);
  const auto uniform = [&](const torch::Tensor& like) { return torch::rand(like.sizes(), generator, torch::kFloat); };
  const auto ordinary = cpu >= text::SpecialIds::kCount;
  const auto chosen = (uniform(cpu) < probability) & ordinary;
  // One draw decides what a chosen position becomes: [0, .8) mask, [.8, .9) random, [.9, 1) kept.
  const auto fate = uniform(cpu);
  const auto to_mask = chosen & (fate < 0.8);
  const auto to_random = chosen & (fate >= 0.8) & (fate < 0.9);
  const auto random_ids = torch::randint(text::SpecialIds::kCount, vocab_size, cpu.sizes(), generator, torch::kLong);
  auto input = cpu.masked_fill(to_mask, text::SpecialIds::kMask);
  input = torch::where(to_random, random_ids, input);
  const auto target = cpu.masked_fill(chosen.logical_not(), text::kIgnoreIndex);
  return {input, target};
}

}  // namespace ulmfit::tasks
