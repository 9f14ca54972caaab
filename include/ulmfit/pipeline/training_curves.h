#pragma once
/// RUN/curves.svg: a training stage's curves from its metrics.jsonl, so a run
/// can be looked at rather than read: training and validation loss, the
/// monitored metric and the learning rate against the global step, with the
/// epochs where gradual unfreezing reached more layer groups marked.
///
///   write_training_curves(run_dir, fit.freeze_plan, "accuracy");
#include <string>
#include <vector>

namespace ulmfit::pipeline {

/// The SVG for a metrics.jsonl's text. `freeze_plan` is FitOptions::freeze_plan
/// (per epoch, how many top groups train; 0 = all).
std::string training_curves_svg(const std::string& metrics_jsonl, const std::vector<int>& freeze_plan,
                                const std::string& monitor, const std::string& title);

/// Writes RUN/curves.svg from RUN/metrics.jsonl; a failure is logged, never
/// thrown: the plot must not cost the run.
void write_training_curves(const std::string& run_dir, const std::vector<int>& freeze_plan, const std::string& monitor,
                           const std::string& stage);

}  // namespace ulmfit::pipeline
