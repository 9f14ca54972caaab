#include "ulmfit/train/training_state.h"

#include <nlohmann/json.hpp>

#include <cmath>

#include "ulmfit/util/error.h"

namespace ulmfit::train {
namespace {

using nlohmann::json;

/// The default generator of a device type: dropout masks and any other
/// randomness of a step come from it, so resuming restores it.
at::Generator default_generator(const torch::Device& device) {
  return at::globalContext().defaultGenerator(device.is_cuda() ? torch::Device(device.type(), device.index())
                                                               : torch::Device(torch::kCPU));
}

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

/// JSON has no NaN or infinity (nlohmann writes null, which does not read
/// back as a number): such metric values are left out.
Metrics finite_only(const Metrics& metrics) {
  Metrics out;
  for (const auto& [k, v] : metrics) {
    if (std::isfinite(v)) out[k] = v;
  }
  return out;
}

}  // namespace

// One field list for both directions of the checkpoint's position record.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(LoopPosition, epoch, step_in_epoch, stage_step, stage_steps, global_step, epoch_loss,
                                   epoch_items, epoch_batches, skipped_batches, rollbacks, spike_lr_scale, best, has_best, best_epoch,
                                   stale_epochs, epochs_run, best_metrics, last_metrics, seconds)

std::string to_json(const LoopPosition& position) {
  LoopPosition finite = position;
  finite.best_metrics = finite_only(position.best_metrics);
  finite.last_metrics = finite_only(position.last_metrics);
  return json(finite).dump();
}

LoopPosition position_from_json(const std::string& text) { return json::parse(text).get<LoopPosition>(); }

RankState current_rank_state(const std::vector<torch::Tensor>& carried, const torch::Device& device) {
  RankState out;
  for (const auto& t : carried) out.carried.push_back(t.detach().to(torch::kCPU));
  auto generator = default_generator(device);
  std::lock_guard<std::mutex> lock(generator.mutex());
  out.rng = generator.get_state();
  return out;
}

namespace {

void write_rank_state(torch::serialize::OutputArchive& archive, const RankState& state) {
  torch::serialize::OutputArchive carried_archive;
  carried_archive.write("count", c10::IValue(static_cast<std::int64_t>(state.carried.size())));
  for (std::size_t i = 0; i < state.carried.size(); ++i) {
    carried_archive.write("t" + std::to_string(i), state.carried[i], /*is_buffer=*/true);
  }
  archive.write("carried", carried_archive);
  archive.write("rng", state.rng, /*is_buffer=*/true);
}

RankState read_rank_state(torch::serialize::InputArchive& archive) {
  RankState out;
  torch::serialize::InputArchive carried_archive;
  archive.read("carried", carried_archive);
  c10::IValue count;
  carried_archive.read("count", count);
  for (std::int64_t i = 0; i < count.toInt(); ++i) {
    torch::Tensor t;
    carried_archive.read("t" + std::to_string(i), t, /*is_buffer=*/true);
    out.carried.push_back(t);
  }
  archive.read("rng", out.rng, /*is_buffer=*/true);
  return out;
}

}  // namespace

void save_training_state(torch::serialize::OutputArchive& archive, const LoopPosition& position,
                         torch::optim::Optimizer& optimizer, const std::vector<RankState>& ranks) {
  archive.write("training_state_version", c10::IValue(static_cast<std::int64_t>(kTrainingStateVersion)));
  archive.write("position", c10::IValue(to_json(position)));
  torch::serialize::OutputArchive optimizer_archive;
  optimizer.save(optimizer_archive);
  archive.write("optimizer", optimizer_archive);
  // Rank 0's share at the top level, where a one-process checkpoint has it.
  write_rank_state(archive, ranks.at(0));
  archive.write("world_size", c10::IValue(static_cast<std::int64_t>(ranks.size())));
  for (std::size_t r = 1; r < ranks.size(); ++r) {
    torch::serialize::OutputArchive rank_archive;
    write_rank_state(rank_archive, ranks[r]);
    archive.write("rank" + std::to_string(r), rank_archive);
  }
}

RestoredState restore_training_state(torch::serialize::InputArchive& archive, torch::optim::Optimizer& optimizer,
                                     const torch::Device& device, const std::string& source,
                                     const ResumingRank& resuming) {
  RestoredState out;
  try {
    c10::IValue version;
    if (!archive.try_read("training_state_version", version)) {
      throw CheckpointError(source + ": holds no training state; is it a checkpoint?");
    }
    if (version.toInt() > kTrainingStateVersion) {
      throw CheckpointError(source + ": written by a newer ulmfit (training state " +
                            std::to_string(version.toInt()) + "); upgrade ulmfit to resume it");
    }
    c10::IValue world_size;
    const std::int64_t written_by = archive.try_read("world_size", world_size) ? world_size.toInt() : 1;
    const bool same_world = written_by == resuming.world_size;
    if (!same_world && !resuming.allow_world_size_change) {
      throw CheckpointError(source + ": written by " + std::to_string(written_by) + " rank(s), resumed by " +
                            std::to_string(resuming.world_size) + "; run it with " + std::to_string(written_by) +
                            ", or pass --allow-world-size-change (the hidden state then starts afresh)");
    }
    c10::IValue position;
    archive.read("position", position);
    out.position = position_from_json(position.toStringRef());
    torch::serialize::InputArchive optimizer_archive;
    archive.read("optimizer", optimizer_archive);
    optimizer.load(optimizer_archive);
    RankState mine;
    if (resuming.rank == 0) {
      mine = read_rank_state(archive);
    } else if (same_world) {
      torch::serialize::InputArchive rank_archive;
      archive.read("rank" + std::to_string(resuming.rank), rank_archive);
      mine = read_rank_state(rank_archive);
    }
    if (same_world) out.carried = std::move(mine.carried);
    if (mine.rng.defined()) {
      auto generator = default_generator(device);
      std::lock_guard<std::mutex> lock(generator.mutex());
      generator.set_state(mine.rng);
    }
  } catch (const CheckpointError&) {
    throw;
  } catch (const std::exception& e) {
    // c10::Error from a missing key or a mismatched optimizer, json errors
    // from a damaged position: either way the file cannot be resumed.
    throw CheckpointError(source + ": damaged or mismatched training state (" + first_line(e.what()) + ")");
  }
  return out;
}

}  // namespace ulmfit::train
