// The one translation unit that names c10d::ProcessGroupGloo.
//
// The PyPI wheel ships c10d's headers and exports ProcessGroupGloo's
// constructor, Options and device factories from libtorch_cpu, but not gloo's
// own headers, which ProcessGroupGloo.hpp includes. They come from Debian's
// libgloo-dev (an older gloo), and only as declarations: no gloo library is
// linked, so the gloo code that runs is the one copy inside libtorch_cpu. This
// is sound because what this file compiles does not depend on gloo's
// definitions:
// - the wheel's ProcessGroupGloo.hpp is the header libtorch_cpu was built
//   with, and gloo types appear in ProcessGroupGloo and its Options only
//   behind shared_ptr / unique_ptr, so the object sizes this file allocates
//   match libtorch's;
// - the calls made here (Options' and ProcessGroupGloo's constructors, the
//   device factories) are out-of-line functions in libtorch_cpu, and the
//   virtual ones go through libtorch's vtables (the class's key function,
//   its destructor, is out of line, so no vtable is emitted here);
// - GlooStore, the one class derived from a gloo type (whose virtual
//   interface did change between the two gloo versions), is constructed
//   only inside libtorch_cpu; nothing here instantiates it.
// CMake checks that the binaries do not load a libgloo.
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>

#include <cstdlib>

#include "backends.h"

namespace ulmfit::dist::detail {

c10::intrusive_ptr<c10d::Backend> make_gloo(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                            std::chrono::milliseconds timeout, const std::string& hostname) {
  auto options = c10d::ProcessGroupGloo::Options::create(timeout);
  const char* interface = std::getenv("GLOO_SOCKET_IFNAME");
  options->devices.push_back(interface != nullptr && *interface != '\0'
                                 ? c10d::ProcessGroupGloo::createDeviceForInterface(interface)
                                 : c10d::ProcessGroupGloo::createDeviceForHostname(hostname));
  options->threads = 1;  // one collective at a time: the training step waits for it
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, options);
}

}  // namespace ulmfit::dist::detail
