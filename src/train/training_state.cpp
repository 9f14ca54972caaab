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

std::string to_json(const LoopPosition& p) {
  return json{{"epoch", p.epoch},
              {"step_in_epoch", p.step_in_epoch},
              {"stage_step", p.stage_step},
              {"stage_steps", p.stage_steps},
              {"global_step", p.global_step},
              {"epoch_loss", p.epoch_loss},
              {"epoch_items", p.epoch_items},
              {"epoch_batches", p.epoch_batches},
              {"skipped_batches", p.skipped_batches},
              {"best", p.best},
              {"has_best", p.has_best},
              {"best_epoch", p.best_epoch},
              {"stale_epochs", p.stale_epochs},
              {"epochs_run", p.epochs_run},
              {"best_metrics", finite_only(p.best_metrics)},
              {"last_metrics", finite_only(p.last_metrics)},
              {"seconds", p.seconds}}
      .dump();
}

LoopPosition position_from_json(const std::string& text) {
  const json j = json::parse(text);
  LoopPosition p;
  j.at("epoch").get_to(p.epoch);
  j.at("step_in_epoch").get_to(p.step_in_epoch);
  j.at("stage_step").get_to(p.stage_step);
  j.at("stage_steps").get_to(p.stage_steps);
  j.at("global_step").get_to(p.global_step);
  j.at("epoch_loss").get_to(p.epoch_loss);
  j.at("epoch_items").get_to(p.epoch_items);
  j.at("epoch_batches").get_to(p.epoch_batches);
  j.at("skipped_batches").get_to(p.skipped_batches);
  j.at("best").get_to(p.best);
  j.at("has_best").get_to(p.has_best);
  j.at("best_epoch").get_to(p.best_epoch);
  j.at("stale_epochs").get_to(p.stale_epochs);
  j.at("epochs_run").get_to(p.epochs_run);
  j.at("best_metrics").get_to(p.best_metrics);
  j.at("last_metrics").get_to(p.last_metrics);
  j.at("seconds").get_to(p.seconds);
  return p;
}

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
