#include "ulmfit/nn/fo_pool.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

namespace ulmfit::nn {
namespace {

/// Hidden units per work item: a contiguous run the compiler vectorises, and
/// enough items (batch x hidden / kSpan) to keep every thread busy.
constexpr int64_t kSpan = 64;

torch::ScalarType compute_type(const torch::Tensor& t) {
  return t.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
}

/// Where one batch row's gates and states sit: gates (and activations) are
/// rows of 3 * hidden, states rows of hidden.
struct Shape {
  int64_t batch, time, hidden;
  int64_t spans() const { return (hidden + kSpan - 1) / kSpan; }
};

/// acts holds z, f, o (activated) per row. Writes c and h = o c; `prev`
/// starts at c0.
template <class T>
void scan_forward(const T* acts, const T* c0, T* c, T* h, Shape s) {
  at::parallel_for(0, s.batch * s.spans(), 1, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / s.spans(), h0 = (item % s.spans()) * kSpan, h1 = std::min(s.hidden, h0 + kSpan);
      const T* prev = c0 + b * s.hidden;
      for (int64_t t = 0; t < s.time; ++t) {
        const int64_t row = (b * s.time + t) * s.hidden;
        const T* z = acts + 3 * row;
        const T *f = z + s.hidden, *o = f + s.hidden;
        for (int64_t k = h0; k < h1; ++k) {
          const T next = f[k] * z[k] + (1 - f[k]) * prev[k];
          c[row + k] = next;
          h[row + k] = o[k] * next;
        }
        prev = c + row;
      }
    }
  });
}

/// The adjoint of the activations and scan_forward, from the last step back:
/// `carry` is dL/dc_t reaching step t through step t+1 (the last step's
/// through c_last). grad_h or grad_last may be null (no gradient).
template <class T, class G>
void scan_backward(const T* acts, const T* c0, const T* c, const T* grad_h, const T* grad_last, G* grad_gates,
                   T* grad_c0, Shape s) {
  at::parallel_for(0, s.batch * s.spans(), 1, [&](int64_t begin, int64_t end) {
    T carry[kSpan];
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / s.spans(), h0 = (item % s.spans()) * kSpan, h1 = std::min(s.hidden, h0 + kSpan);
      for (int64_t k = h0; k < h1; ++k) carry[k - h0] = grad_last ? grad_last[b * s.hidden + k] : T(0);
      for (int64_t t = s.time - 1; t >= 0; --t) {
        const int64_t row = (b * s.time + t) * s.hidden;
        const T* z = acts + 3 * row;
        const T *f = z + s.hidden, *o = f + s.hidden;
        const T* prev = t > 0 ? c + row - s.hidden : c0 + b * s.hidden;
        G* gz = grad_gates + 3 * row;
        G *gf = gz + s.hidden, *go = gf + s.hidden;
        for (int64_t k = h0; k < h1; ++k) {
          const T dh = grad_h ? grad_h[row + k] : T(0);
          const T g = dh * o[k] + carry[k - h0];
          gz[k] = static_cast<G>(g * f[k] * (1 - z[k] * z[k]));
          gf[k] = static_cast<G>(g * (z[k] - prev[k]) * f[k] * (1 - f[k]));
          go[k] = static_cast<G>(dh * c[row + k] * o[k] * (1 - o[k]));
          carry[k - h0] = g * (1 - f[k]);
        }
      }
      for (int64_t k = h0; k < h1; ++k) grad_c0[b * s.hidden + k] = carry[k - h0];
    }
  });
}

class FoPoolFunction : public torch::autograd::Function<FoPoolFunction> {
 public:
  static torch::autograd::tensor_list forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& gates,
                                              const torch::Tensor& c0_in) {
    const auto type = compute_type(gates);
    const Shape s{gates.size(0), gates.size(1), gates.size(2) / 3};
    // One cast, then the activations in place: f and o sit side by side, so
    // one sigmoid covers both.
    auto acts = gates.to(type, /*non_blocking=*/false, /*copy=*/true).contiguous();
    acts.narrow(2, 0, s.hidden).tanh_();
    acts.narrow(2, s.hidden, 2 * s.hidden).sigmoid_();
    const auto c0 = c0_in.to(type).contiguous();
    auto c = torch::empty({s.batch, s.time, s.hidden}, acts.options()), h = torch::empty_like(c);
    AT_DISPATCH_FLOATING_TYPES(type, "fo_pool", [&] {
      scan_forward<scalar_t>(acts.data_ptr<scalar_t>(), c0.data_ptr<scalar_t>(), c.data_ptr<scalar_t>(),
                             h.data_ptr<scalar_t>(), s);
    });
    ctx->save_for_backward({acts, c0, c});
    ctx->saved_data["gates_type"] = static_cast<int64_t>(gates.scalar_type());
    ctx->saved_data["c0_type"] = static_cast<int64_t>(c0_in.scalar_type());
    ctx->set_materialize_grads(false);  // c_last's gradient is usually none: no zeros to allocate
    return {h, c.select(1, s.time - 1).clone()};
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &acts = saved[0], &c0 = saved[1], &c = saved[2];
    const Shape s{acts.size(0), acts.size(1), acts.size(2) / 3};
    const auto type = acts.scalar_type();
    const auto grad_h = grads[0].defined() ? grads[0].to(type).contiguous() : torch::Tensor();
    const auto grad_last = grads[1].defined() ? grads[1].to(type).contiguous() : torch::Tensor();
    const auto gates_type = static_cast<torch::ScalarType>(ctx->saved_data["gates_type"].toInt());
    auto grad_gates = torch::empty(acts.sizes(), acts.options().dtype(gates_type));
    auto grad_c0 = torch::empty_like(c0);
    AT_DISPATCH_FLOATING_TYPES(type, "fo_pool_backward", [&] {
      using T = scalar_t;
      const T* gh = grad_h.defined() ? grad_h.data_ptr<T>() : nullptr;
      const T* gl = grad_last.defined() ? grad_last.data_ptr<T>() : nullptr;
      AT_DISPATCH_FLOATING_TYPES_AND2(torch::kBFloat16, torch::kHalf, gates_type, "fo_pool_backward_gates", [&] {
        scan_backward<T, scalar_t>(acts.data_ptr<T>(), c0.data_ptr<T>(), c.data_ptr<T>(), gh, gl,
                                   grad_gates.data_ptr<scalar_t>(), grad_c0.data_ptr<T>(), s);
      });
    });
    return {grad_gates, grad_c0.to(static_cast<torch::ScalarType>(ctx->saved_data["c0_type"].toInt()))};
  }
};

torch::Tensor initial_state(const torch::Tensor& gates, const torch::Tensor& c0) {
  if (c0.defined()) return c0;
  return torch::zeros({gates.size(0), gates.size(2) / 3}, gates.options().dtype(compute_type(gates)));
}

}  // namespace

std::pair<torch::Tensor, torch::Tensor> fo_pool(const torch::Tensor& gates, const torch::Tensor& c0) {
  TORCH_CHECK(gates.dim() == 3 && gates.size(2) % 3 == 0 && gates.size(1) > 0,
              "fo_pool: gates must be [batch, time > 0, 3 x hidden]");
  const auto start = initial_state(gates, c0);
  TORCH_CHECK(start.dim() == 2 && start.size(0) == gates.size(0) && start.size(1) == gates.size(2) / 3,
              "fo_pool: c0 must be [batch, hidden]");
  if (!gates.device().is_cpu()) return fo_pool_reference(gates, start);
  const auto out = FoPoolFunction::apply(gates, start);
  return {out[0], out[1]};
}

std::pair<torch::Tensor, torch::Tensor> fo_pool_reference(const torch::Tensor& gates, const torch::Tensor& c0) {
  const auto type = compute_type(gates);
  const auto parts = gates.to(type).chunk(3, 2);
  const auto z = parts[0].tanh(), f = parts[1].sigmoid(), o = parts[2].sigmoid();
  auto prev = initial_state(gates, c0).to(type);
  std::vector<torch::Tensor> steps;
  steps.reserve(static_cast<std::size_t>(gates.size(1)));
  for (int64_t t = 0; t < gates.size(1); ++t) {
    const auto ft = f.select(1, t);
    prev = ft * z.select(1, t) + (1 - ft) * prev;
    steps.push_back(prev);
  }
  return {o * torch::stack(steps, 1), prev};
}

}  // namespace ulmfit::nn
