#pragma once
/// Data-parallel training across processes on PyTorch's c10d: the process
/// group the training stages share, started from the variables torchrun sets
/// (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT). Gloo carries CPU
/// tensors, NCCL CUDA ones. Without those variables the process is a group of
/// one and every collective is a no-op, so callers never branch on the rank.
///
///   dist::join(*dist::launch_from_environment(), device);   // once, in main
///   dist::Group& group = dist::world();
///   group.all_reduce_sum(gradients);                        // every rank, same order
///   if (group.is_main()) write_files();
#include <torch/nn/module.h>
#include <torch/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ulmfit::dist {

/// Where this process sits in a torchrun-style launch.
struct Launch {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
};

/// The launch described by the environment; nullopt when WORLD_SIZE is unset.
/// UsageError (exit 2) naming the variable when one is missing or malformed.
std::optional<Launch> launch_from_environment();

class Group {
 public:
  virtual ~Group() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  bool is_main() const { return rank() == 0; }
  bool distributed() const { return size() > 1; }
  /// Description for logs: "rank 1 of 2 (gloo)".
  virtual std::string describe() const = 0;

  /// Sums `tensor` over the ranks, in place. Each call is a collective: every
  /// rank makes the same calls in the same order. A rank that died or stopped
  /// answering makes it throw RuntimeFailure naming that rank when it can.
  virtual void all_reduce_sum(torch::Tensor& tensor) = 0;
  /// Copies rank `root`'s tensor into every rank's (same shape and dtype).
  virtual void broadcast(torch::Tensor& tensor, int root = 0) = 0;
  /// Every rank's tensor (same shape and dtype everywhere), in rank order.
  virtual std::vector<torch::Tensor> all_gather(const torch::Tensor& tensor) = 0;
  virtual void barrier() = 0;
  /// Rank 0 runs `work` first and the others wait for it (without the
  /// collective timeout: tokenising a corpus can take long), then run theirs,
  /// which then finds what rank 0 cached. A failure on rank 0 stops the others.
  virtual void main_first(const std::string& what, const std::function<void()>& work) = 0;

  /// Rank 0's string on every rank.
  std::string broadcast_string(const std::string& text, int root = 0);
  /// Throws RuntimeFailure naming the first rank whose `text` differs from
  /// rank 0's ("the resolved config", say).
  void check_same_everywhere(const std::string& what, const std::string& text);
};

/// The process's group: a group of one until join() is called.
Group& world();

/// Joins the group described by `launch` (a TCPStore at MASTER_ADDR:MASTER_PORT,
/// then Gloo for a CPU device or NCCL for a CUDA one) and makes it world().
void join(const Launch& launch, const torch::Device& device);
/// Leaves the group (at exit); world() is a group of one again.
void leave();

/// A sum across ranks that autograd can pass through: the backward pass sums
/// the incoming gradients across ranks too. What synchronised BatchNorm needs.
torch::Tensor differentiable_all_reduce_sum(const torch::Tensor& tensor);

/// The step-level collective the Learner makes after each backward pass.
struct StepTotals {
  double loss = 0;      // the weighted mean of every rank's loss
  double items = 0;     // tokens or documents, all ranks together
  bool finite = true;   // every rank's loss was finite
  bool interrupt = false;  // some rank received SIGINT / SIGTERM: all stop after this step
};
/// Averages the gradients of `params` across ranks, each rank's weighted by
/// `weight` (the targets or documents its loss is a mean over), so the result
/// is the gradient of the loss over the whole global batch. A parameter
/// without a gradient counts as zeros. The step's figures and `interrupt`
/// ride along in the same collective. One process: returns its own figures
/// and leaves the gradients alone.
StepTotals average_gradients(const std::vector<torch::Tensor>& params, double weight, double loss, double items,
                             bool finite, bool interrupt);

/// Whether `flag` holds on any rank (a signal reached one of them, say), so
/// that all ranks stop at the same step.
bool any_rank(bool flag);

/// Seconds spent in average_gradients' communication so far, and calls.
std::pair<double, std::int64_t> gradient_sync_time();

/// Copies every parameter and buffer of `module` from rank 0 to the others,
/// and says whether they already agreed (a mismatch means the ranks started
/// differently; the copy fixes the weights but the caller may warn).
bool broadcast_module(torch::nn::Module& module);

}  // namespace ulmfit::dist
