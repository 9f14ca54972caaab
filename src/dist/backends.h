#pragma once
// The c10d backends, each in its own translation unit: Gloo's header needs
// gloo's headers (see gloo_backend.cpp), NCCL's needs nccl.h. Internal to dist.
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <chrono>
#include <string>

namespace ulmfit::dist::detail {

/// Gloo over TCP, bound to `hostname`'s address (the loopback one for a
/// one-machine group), or to the interface named by $GLOO_SOCKET_IFNAME.
c10::intrusive_ptr<c10d::Backend> make_gloo(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                            std::chrono::milliseconds timeout, const std::string& hostname);

/// NCCL on the current CUDA device; RuntimeFailure when this build has no NCCL.
c10::intrusive_ptr<c10d::Backend> make_nccl(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                            std::chrono::milliseconds timeout);

}  // namespace ulmfit::dist::detail
