#pragma once
/// A QRNN layer's pooling (Bradbury et al. 2017, "fo-pooling"), from the
/// gates' pre-activations to the layer's output:
///   z, f, o = tanh, sigmoid, sigmoid of gates[..., 0:H], [H:2H], [2H:3H]
///   c_t = f_t z_t + (1 - f_t) c_{t-1};  h_t = o_t c_t
/// Everything else in a QRNN layer is one matrix product over all time
/// steps. Done as separate tensor operations, the activations, casts and the
/// output gate are a dozen passes over [batch, time, hidden] with their
/// backward passes; fused, the forward is the activations (ATen's vectorised
/// kernels, in place) and one scan, and the backward one loop that writes the
/// gates' gradient in their own dtype. The state is fp32 whatever the gates'
/// dtype (double for double gates); work is threaded over batch x hidden.
///
///   auto [h, c_last] = fo_pool(gates, c0);            // gates [B, T, 3H]; c0 [B, H] or undefined (zeros)
///   auto [h2, c2] = fo_pool_reference(gates, c0);      // a plain loop of tensor ops, for tests
#include <torch/torch.h>

#include <utility>

namespace ulmfit::nn {

/// Returns h [B, T, H] and the last step's c [B, H], both in the compute type
/// (fp32, or double for double gates), differentiable in gates and c0. CPU
/// tensors; CUDA tensors go through the reference loop.
std::pair<torch::Tensor, torch::Tensor> fo_pool(const torch::Tensor& gates, const torch::Tensor& c0);

/// The same as a loop over time of tensor operations, which autograd
/// differentiates by itself.
std::pair<torch::Tensor, torch::Tensor> fo_pool_reference(const torch::Tensor& gates, const torch::Tensor& c0);

}  // namespace ulmfit::nn
