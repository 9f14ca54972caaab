// make_nccl for builds with the CUDA path: c10d::ProcessGroupNCCL from
// libtorch_cuda, compiled against the CUDA runtime and NCCL headers that the
// wheel's nvidia-* packages ship (the same versions libtorch_cuda was built
// with), so no CUDA toolkit is needed. Only this file sees them.
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>

#include "backends.h"

namespace ulmfit::dist::detail {

c10::intrusive_ptr<c10d::Backend> make_nccl(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                            std::chrono::milliseconds timeout) {
  auto options = c10d::ProcessGroupNCCL::Options::create();
  options->timeout = timeout;
  return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, options);
}

}  // namespace ulmfit::dist::detail
