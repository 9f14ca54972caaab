#pragma once
/// Where the training loop stands, and the pieces of a checkpoint the Learner
/// owns: loop position, optimizer, random number generators and the task's
/// carried state. The model's weights are added by whoever writes the file.
///
///   torch::serialize::OutputArchive archive;
///   save_training_state(archive, position, optimizer, task.carried_state(), device);
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "ulmfit/train/task.h"

namespace ulmfit::train {

/// Bumped when the layout of the training state changes.
constexpr int kTrainingStateVersion = 1;

struct LoopPosition {
  int epoch = 0;                     // epoch under way (0-based); == epochs when finished
  std::int64_t step_in_epoch = 0;    // batches of that epoch already trained
  std::int64_t stage_step = 0;       // steps into the unfreezing stage's schedule
  std::int64_t stage_steps = 0;      // that schedule's length; 0 = the stage has not begun
  std::int64_t global_step = 0;
  double epoch_loss = 0;             // running sums of the epoch under way
  double epoch_items = 0;
  std::int64_t epoch_batches = 0;    // batches of it applied (not skipped)
  std::int64_t skipped_batches = 0;  // non-finite batches skipped (on_nonfinite: skip)
  std::int64_t rollbacks = 0;        // loss spikes undone (train.spike_rollback), the whole run
  double spike_lr_scale = 1;         // the stage's LR after its rollbacks, as a share of the schedule's
  double best = 0;                   // the monitored metric's best value, when has_best
  bool has_best = false;
  int best_epoch = -1;
  int stale_epochs = 0;
  int epochs_run = 0;
  Metrics best_metrics;
  Metrics last_metrics;
  double seconds = 0;                // training time before this process
};

std::string to_json(const LoopPosition& position);
/// Throws std::exception (a json error) when `text` is not a position.
LoopPosition position_from_json(const std::string& text);

/// What differs between the ranks of a data-parallel run: each one's random
/// generator (dropout masks) and carried state (its rows' hidden state).
struct RankState {
  torch::Tensor rng;
  std::vector<torch::Tensor> carried;
};
/// This process's share: the device's generator state and `carried` on the CPU.
RankState current_rank_state(const std::vector<torch::Tensor>& carried, const torch::Device& device);

/// `ranks` holds every rank's share, in rank order (one for one process);
/// the checkpoint records their number as its world size.
void save_training_state(torch::serialize::OutputArchive& archive, const LoopPosition& position,
                         torch::optim::Optimizer& optimizer, const std::vector<RankState>& ranks);

struct RestoredState {
  LoopPosition position;
  std::vector<torch::Tensor> carried;
};
/// How the resuming process sits in its group.
struct ResumingRank {
  int rank = 0;
  int world_size = 1;
  /// Resume a checkpoint written by another number of ranks: the loop
  /// position, weights and optimizer carry over; the carried state starts
  /// afresh and ranks other than 0 keep their own generators.
  bool allow_world_size_change = false;
};
/// Reads what save_training_state wrote into `optimizer` and this rank's
/// generator; throws CheckpointError naming `source` when it does not fit,
/// or when it was written by a different number of ranks (unless allowed).
RestoredState restore_training_state(torch::serialize::InputArchive& archive, torch::optim::Optimizer& optimizer,
                                     const torch::Device& device, const std::string& source,
                                     const ResumingRank& resuming = {});

}  // namespace ulmfit::train
