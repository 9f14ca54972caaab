#include "ulmfit/nn/forget_mult.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>

namespace ulmfit::nn {
namespace {

/// Hidden units per work item: a contiguous run the compiler vectorises, and
/// enough items (batch x hidden / kSpan) to keep every thread busy.
constexpr int64_t kSpan = 64;

torch::ScalarType compute_type(const torch::Tensor& t) {
  return t.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
}

/// c[b, t, :] = f * z + (1 - f) * c[b, t-1, :], c[b, -1, :] = c0[b, :].
template <class T>
void scan_forward(const T* z, const T* f, const T* c0, T* c, int64_t batch, int64_t time, int64_t hidden) {
  const int64_t spans = (hidden + kSpan - 1) / kSpan;
  at::parallel_for(0, batch * spans, 1, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / spans, h0 = (item % spans) * kSpan, h1 = std::min(hidden, h0 + kSpan);
      const T* prev = c0 + b * hidden;
      for (int64_t t = 0; t < time; ++t) {
        const int64_t row = (b * time + t) * hidden;
        for (int64_t h = h0; h < h1; ++h) c[row + h] = f[row + h] * z[row + h] + (1 - f[row + h]) * prev[h];
        prev = c + row;
      }
    }
  });
}

/// The adjoint of scan_forward, from the last step back: `carry` is dL/dc_t
/// reaching step t through step t+1.
template <class T>
void scan_backward(const T* z, const T* f, const T* c0, const T* c, const T* grad_c, T* grad_z, T* grad_f,
                   T* grad_c0, int64_t batch, int64_t time, int64_t hidden) {
  const int64_t spans = (hidden + kSpan - 1) / kSpan;
  at::parallel_for(0, batch * spans, 1, [&](int64_t begin, int64_t end) {
    T carry[kSpan];
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / spans, h0 = (item % spans) * kSpan, h1 = std::min(hidden, h0 + kSpan);
      std::fill(carry, carry + kSpan, T(0));
      for (int64_t t = time - 1; t >= 0; --t) {
        const int64_t row = (b * time + t) * hidden;
        const T* prev = t > 0 ? c + row - hidden : c0 + b * hidden;
        for (int64_t h = h0; h < h1; ++h) {
          const T g = grad_c[row + h] + carry[h - h0];
          grad_z[row + h] = g * f[row + h];
          grad_f[row + h] = g * (z[row + h] - prev[h]);
          carry[h - h0] = g * (1 - f[row + h]);
        }
      }
      for (int64_t h = h0; h < h1; ++h) grad_c0[b * hidden + h] = carry[h - h0];
    }
  });
}

class ForgetMultFunction : public torch::autograd::Function<ForgetMultFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& z_in,
                               const torch::Tensor& f_in, const torch::Tensor& c0_in) {
    const auto type = compute_type(z_in);
    const auto z = z_in.to(type).contiguous(), f = f_in.to(type).contiguous(), c0 = c0_in.to(type).contiguous();
    const int64_t batch = z.size(0), time = z.size(1), hidden = z.size(2);
    auto c = torch::empty_like(z);
    AT_DISPATCH_FLOATING_TYPES(type, "forget_mult", [&] {
      scan_forward<scalar_t>(z.data_ptr<scalar_t>(), f.data_ptr<scalar_t>(), c0.data_ptr<scalar_t>(),
                             c.data_ptr<scalar_t>(), batch, time, hidden);
    });
    ctx->save_for_backward({z, f, c0, c});
    ctx->saved_data["z_type"] = static_cast<int64_t>(z_in.scalar_type());
    ctx->saved_data["f_type"] = static_cast<int64_t>(f_in.scalar_type());
    ctx->saved_data["c0_type"] = static_cast<int64_t>(c0_in.scalar_type());
    return c;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &z = saved[0], &f = saved[1], &c0 = saved[2], &c = saved[3];
    const auto grad_c = grads[0].to(z.scalar_type()).contiguous();
    const int64_t batch = z.size(0), time = z.size(1), hidden = z.size(2);
    auto grad_z = torch::empty_like(z), grad_f = torch::empty_like(f), grad_c0 = torch::empty_like(c0);
    AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "forget_mult_backward", [&] {
      scan_backward<scalar_t>(z.data_ptr<scalar_t>(), f.data_ptr<scalar_t>(), c0.data_ptr<scalar_t>(),
                              c.data_ptr<scalar_t>(), grad_c.data_ptr<scalar_t>(), grad_z.data_ptr<scalar_t>(),
                              grad_f.data_ptr<scalar_t>(), grad_c0.data_ptr<scalar_t>(), batch, time, hidden);
    });
    auto as = [&](const torch::Tensor& t, const char* key) {
      return t.to(static_cast<torch::ScalarType>(ctx->saved_data[key].toInt()));
    };
    return {as(grad_z, "z_type"), as(grad_f, "f_type"), as(grad_c0, "c0_type")};
  }
};

torch::Tensor initial_state(const torch::Tensor& z, const torch::Tensor& c0) {
  if (c0.defined()) return c0;
  return torch::zeros({z.size(0), z.size(2)}, z.options().dtype(compute_type(z)));
}

}  // namespace

torch::Tensor forget_mult(const torch::Tensor& z, const torch::Tensor& f, const torch::Tensor& c0) {
  TORCH_CHECK(z.dim() == 3 && z.sizes() == f.sizes(), "forget_mult: z and f must be [batch, time, hidden]");
  const auto start = initial_state(z, c0);
  TORCH_CHECK(start.dim() == 2 && start.size(0) == z.size(0) && start.size(1) == z.size(2),
              "forget_mult: c0 must be [batch, hidden]");
  if (!z.device().is_cpu()) return forget_mult_reference(z, f, start);
  return ForgetMultFunction::apply(z, f, start);
}

torch::Tensor forget_mult_reference(const torch::Tensor& z, const torch::Tensor& f, const torch::Tensor& c0) {
  auto prev = initial_state(z, c0).to(compute_type(z));
  std::vector<torch::Tensor> steps;
  steps.reserve(static_cast<std::size_t>(z.size(1)));
  for (int64_t t = 0; t < z.size(1); ++t) {
    const auto ft = f.select(1, t).to(prev.scalar_type());
    prev = ft * z.select(1, t).to(prev.scalar_type()) + (1 - ft) * prev;
    steps.push_back(prev);
  }
  return torch::stack(steps, 1);
}

}  // namespace ulmfit::nn
