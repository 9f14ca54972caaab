// The CUDA path against the CPU one: the same weights and tokens give the same
// logits and gradients on both devices, for every backbone. These tests need a
// GPU and a build that links LibTorch's CUDA library (ULMFIT_CUDA=AUTO on a
// machine with a driver, or ON); elsewhere they are skipped, and say why.
#include <torch/torch.h>

#include "../test_helpers.h"
#include "ulmfit/nn/model_factory.h"
#include "ulmfit/train/precision.h"

namespace ulmfit {
namespace {

class CudaTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device (or a build without the CUDA path)";
    // Full fp32 on the GPU too, so the devices differ only by summation order.
    at::globalContext().setAllowTF32CuBLAS(false);
    at::globalContext().setAllowTF32CuDNN(false);
  }

  config::Config small_config() const {
    config::Config cfg;
    cfg.model.backbone = GetParam();
    cfg.model.emb_size = 32;
    cfg.model.hidden_size = 48;
    cfg.model.layers = 2;
    cfg.model.heads = 4;
    cfg.model.max_len = 64;
    cfg.model.dropout.mult = 0;
    if (GetParam() == "bert") cfg.model.type_vocab_size = 2;
    return cfg;
  }
};

constexpr int64_t kVocab = 97;

torch::Tensor random_tokens(int64_t batch, int64_t time) {
  return torch::randint(4, kVocab, {batch, time}, torch::TensorOptions().dtype(torch::kLong));
}

/// Two copies of one model, the same weights from the same seed: the first on
/// the CPU, the second on the GPU.
template <class Make>
auto on_cpu_and_gpu(std::uint64_t seed, Make make) {
  torch::manual_seed(seed);
  auto on_cpu = make();
  torch::manual_seed(seed);
  auto on_gpu = make();
  on_gpu->to(torch::kCUDA);
  return std::make_pair(on_cpu, on_gpu);
}

/// Explains a failed comparison: the largest absolute difference.
float max_difference(const torch::Tensor& on_gpu, const torch::Tensor& on_cpu) {
  return (on_gpu.cpu() - on_cpu).abs().max().item<float>();
}

TEST_P(CudaTest, ALanguageModelGivesTheSameLogitsAndGradientsOnBothDevices) {
  const auto cfg = small_config();
  auto [on_cpu, on_gpu] = on_cpu_and_gpu(3, [&] { return nn::make_language_model(cfg.model, kVocab); });
  // Training mode (cuDNN's LSTM has no backward pass in eval mode); every
  // dropout is off, so both devices compute the same function.
  on_cpu->train();
  on_gpu->train();

  const auto tokens = random_tokens(4, 24);
  nn::RecurrentState cpu_state, gpu_state;
  const auto cpu_logits = on_cpu->forward(tokens, cpu_state).logits;
  const auto gpu_logits = on_gpu->forward(tokens.to(torch::kCUDA), gpu_state).logits;
  ASSERT_TRUE(gpu_logits.is_cuda());
  EXPECT_TRUE(torch::allclose(gpu_logits.cpu(), cpu_logits, 1e-4, 1e-4))
      << "max difference " << max_difference(gpu_logits, cpu_logits);

  // One backward pass: every parameter's gradient agrees.
  const auto targets = random_tokens(4, 24);
  torch::nn::functional::cross_entropy(cpu_logits.reshape({-1, kVocab}), targets.reshape({-1})).backward();
  torch::nn::functional::cross_entropy(gpu_logits.reshape({-1, kVocab}), targets.reshape({-1}).to(torch::kCUDA))
      .backward();
  const auto cpu_params = on_cpu->named_parameters();
  const auto gpu_params = on_gpu->named_parameters();
  for (const auto& p : cpu_params) {
    if (!p.value().grad().defined()) continue;
    const auto g = gpu_params[p.key()].grad();
    ASSERT_TRUE(g.defined()) << p.key();
    EXPECT_TRUE(torch::allclose(g.cpu(), p.value().grad(), 1e-3, 1e-5))
        << p.key() << ": max difference " << max_difference(g, p.value().grad());
  }
}

TEST_P(CudaTest, AClassifierGivesTheSameLogitsOnBothDevicesWithPadding) {
  const auto cfg = small_config();
  auto [on_cpu, on_gpu] = on_cpu_and_gpu(5, [&] { return nn::make_classifier(cfg.model, cfg.train, kVocab, 3); });
  on_cpu->eval();
  on_gpu->eval();

  auto tokens = random_tokens(3, 40);
  auto mask = torch::ones({3, 40}, torch::kBool);
  mask.index_put_({1, torch::indexing::Slice(25, torch::indexing::None)}, false);  // a shorter document
  tokens.masked_fill_(~mask, 0);
  const auto cpu_logits = on_cpu->forward(tokens, mask);
  const auto gpu_logits = on_gpu->forward(tokens.to(torch::kCUDA), mask.to(torch::kCUDA));
  EXPECT_TRUE(torch::allclose(gpu_logits.cpu(), cpu_logits, 1e-4, 1e-4))
      << "max difference " << max_difference(gpu_logits, cpu_logits);
}

TEST_P(CudaTest, Bf16AutocastOnTheGpuStaysCloseToFp32) {
  const auto cfg = small_config();
  torch::manual_seed(7);
  auto lm = nn::make_language_model(cfg.model, kVocab);
  lm->to(torch::kCUDA);
  lm->eval();
  const auto tokens = random_tokens(4, 24).to(torch::kCUDA);
  nn::RecurrentState full_state, half_state;
  const auto full = torch::log_softmax(lm->forward(tokens, full_state).logits, -1);
  torch::Tensor half;
  {
    train::AutocastScope bf16("bf16", torch::Device(torch::kCUDA, 0));
    half = torch::log_softmax(lm->forward(tokens, half_state).logits.to(torch::kFloat), -1);
  }
  // bf16 keeps 8 bits of mantissa: a few hundredths in log-probabilities.
  EXPECT_LT((half - full).abs().max().item<float>(), 0.1F);
}

INSTANTIATE_TEST_SUITE_P(EveryBackbone, CudaTest, ::testing::Values("awd_lstm", "transformer", "bert"));

}  // namespace
}  // namespace ulmfit
