#pragma once
/// QRNN's recurrence (Bradbury et al. 2017), "fo-pooling" as fastai writes it:
///   c_t = f_t * z_t + (1 - f_t) * c_{t-1}
/// over [batch, time, hidden] gates. Everything else in a QRNN layer is one
/// matrix product over all time steps; this elementwise scan is the only
/// sequential part, so it runs as one fused loop (forward and backward), in
/// fp32 whatever the gates' dtype, threaded over batch x hidden.
///
///   auto c = forget_mult(z, f, c0);          // [B, T, H]; c0 [B, H] or undefined (zeros)
///   auto same = forget_mult_reference(z, f, c0);   // a plain loop of tensor ops, for tests
#include <torch/torch.h>

namespace ulmfit::nn {

/// The fused scan, differentiable in z, f and c0. CPU tensors (any floating
/// dtype); CUDA tensors go through the reference loop.
torch::Tensor forget_mult(const torch::Tensor& z, const torch::Tensor& f, const torch::Tensor& c0);

/// The same recurrence as a loop over time of tensor operations, which
/// autograd differentiates by itself.
torch::Tensor forget_mult_reference(const torch::Tensor& z, const torch::Tensor& f, const torch::Tensor& c0);

}  // namespace ulmfit::nn
