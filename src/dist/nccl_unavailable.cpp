// make_nccl for builds without the CUDA path (or without nccl.h).
#include "backends.h"
#include "ulmfit/util/error.h"

namespace ulmfit::dist::detail {

c10::intrusive_ptr<c10d::Backend> make_nccl(const c10::intrusive_ptr<c10d::Store>&, int, int,
                                            std::chrono::milliseconds) {
  throw RuntimeFailure("distributed training on CUDA needs NCCL, and this build of ulmfit has none; "
                       "build with -DULMFIT_CUDA=ON against a LibTorch that ships nccl.h");
}

}  // namespace ulmfit::dist::detail
