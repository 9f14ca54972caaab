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
                                   epoch_items, epoch_batches, skipped_batches, best, has_best, best_epoch,
                                   stale_epochs, epochs_run, best_metrics, last_metrics, seconds)

std::string to_json(const LoopPosition& position) {
  LoopPosition finite = position;
  finite.best_metrics = finite_only(position.best_metrics);
  finite.last_metrics = finite_only(position.last_metrics);
  return json(finite).dump();
}

LoopPosition position_from_json(const std::string& text) { return json::parse(text).get<LoopPosition>(); }

void save_training_state(torch::serialize::OutputArchive& archive, const LoopPosition& position,
                         torch::optim::Optimizer& optimizer, const std::vector<torch::Tensor>& carried,
                         const torch::Device& device) {
  archive.write("training_state_version", c10::IValue(static_cast<std::int64_t>(kTrainingStateVersion)));
  archive.write("position", c10::IValue(to_json(position)));
  torch::serialize::OutputArchive optimizer_archive;
  optimizer.save(optimizer_archive);
  archive.write("optimizer", optimizer_archive);
  torch::serialize::OutputArchive carried_archive;
  carried_archive.write("count", c10::IValue(static_cast<std::int64_t>(carried.size())));
  for (std::size_t i = 0; i < carried.size(); ++i) {
    carried_archive.write("t" + std::to_string(i), carried[i].detach().to(torch::kCPU), /*is_buffer=*/true);
  }
  archive.write("carried", carried_archive);
  auto generator = default_generator(device);
  std::lock_guard<std::mutex> lock(generator.mutex());
  archive.write("rng", generator.get_state(), /*is_buffer=*/true);
}

RestoredState restore_training_state(torch::serialize::InputArchive& archive, torch::optim::Optimizer& optimizer,
                                     const torch::Device& device, const std::string& source) {
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
    c10::IValue position;
    archive.read("position", position);
    out.position = position_from_json(position.toStringRef());
    torch::serialize::InputArchive optimizer_archive;
    archive.read("optimizer", optimizer_archive);
    optimizer.load(optimizer_archive);
    torch::serialize::InputArchive carried_archive;
    archive.read("carried", carried_archive);
    c10::IValue count;
    carried_archive.read("count", count);
    for (std::int64_t i = 0; i < count.toInt(); ++i) {
      torch::Tensor t;
      carried_archive.read("t" + std::to_string(i), t, /*is_buffer=*/true);
      out.carried.push_back(t);
    }
    torch::Tensor rng;
    archive.read("rng", rng, /*is_buffer=*/true);
    auto generator = default_generator(device);
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(rng);
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
