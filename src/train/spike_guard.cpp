#include "ulmfit/train/spike_guard.h"

#include <algorithm>
#include <sstream>
#include <utility>

namespace ulmfit::train {
namespace {

/// The running mean's memory: about the last ten batches, so a loss still
/// falling fast early in a stage drags the mean down with it and a slow rise
/// never reads as a spike.
constexpr double kMeanDecay = 0.9;

}  // namespace

SpikeGuard::SpikeGuard(double threshold, int interval) : threshold_(threshold), interval_(std::max(1, interval)) {}

void SpikeGuard::start_stage() {
  mean_ = 0;
  seen_ = 0;
  applied_ = 0;
  rollbacks_ = 0;
  older_ = Snapshot{};
  newer_ = Snapshot{};
}

bool SpikeGuard::is_spike(double loss) const {
  if (!enabled() || rollbacks_ >= kMaxRollbacks || seen_ < kWarmup) return false;
  if (older_.applied < 0 && newer_.applied < 0) return false;
  return loss > mean_ + threshold_;
}

void SpikeGuard::after_step(double loss, const std::vector<torch::Tensor>& params,
                            torch::optim::Optimizer& optimizer) {
  if (!enabled()) return;
  mean_ = seen_ == 0 ? loss : kMeanDecay * mean_ + (1 - kMeanDecay) * loss;
  ++seen_;
  ++applied_;
  if (applied_ % interval_ == 0) {
    older_ = std::move(newer_);
    take(newer_, params, optimizer);
  }
}

void SpikeGuard::take(Snapshot& into, const std::vector<torch::Tensor>& params,
                      torch::optim::Optimizer& optimizer) const {
  into.weights.clear();
  for (const auto& p : params) into.weights.push_back(p.detach().clone());
  torch::serialize::OutputArchive archive;
  optimizer.save(archive);
  std::ostringstream bytes;
  archive.save_to(bytes);
  into.optimizer = bytes.str();
  into.applied = applied_;
  into.mean = mean_;
  into.seen = seen_;
}

std::int64_t SpikeGuard::roll_back(const std::vector<torch::Tensor>& params, torch::optim::Optimizer& optimizer) {
  // The newer snapshot may already hold weights on their way out; the older
  // one is from before them whenever it exists.
  Snapshot& back = older_.applied >= 0 ? older_ : newer_;
  {
    torch::NoGradGuard no_grad;
    for (std::size_t i = 0; i < params.size(); ++i) params[i].copy_(back.weights.at(i));
  }
  std::istringstream bytes(back.optimizer);
  torch::serialize::InputArchive archive;
  archive.load_from(bytes);
  optimizer.load(archive);
  const std::int64_t undone = applied_ - back.applied;
  applied_ = back.applied;
  mean_ = back.mean;
  seen_ = back.seen;
  ++rollbacks_;
  // Snapshots are taken afresh from here; until then this one is the way back.
  if (&back == &older_) newer_ = std::move(older_);
  older_ = Snapshot{};
  return undone;
}

}  // namespace ulmfit::train
