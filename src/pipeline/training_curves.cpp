#include "ulmfit/pipeline/training_curves.h"

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ulmfit/util/files.h"
#include "ulmfit/util/log.h"
#include "ulmfit/util/svg_chart.h"

namespace ulmfit::pipeline {
namespace {

std::string groups_label(int trainable) {
  return trainable <= 0 ? "all groups train" : "top " + std::to_string(trainable) + " groups train";
}

}  // namespace

std::string training_curves_svg(const std::string& metrics_jsonl, const std::vector<int>& freeze_plan,
                                const std::string& monitor, const std::string& title) {
  util::ChartSeries train_loss{"training loss", {}, false}, valid_loss{"validation loss", {}, true},
      metric{monitor, {}, true}, lr{"peak learning rate", {}, false};
  std::map<int, double> first_step_of_epoch;
  double last_step = 0;
  std::istringstream in(metrics_jsonl);
  for (std::string line; std::getline(in, line);) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {
      continue;  // a line cut short by a kill: the rest still plots
    }
    if (!j.is_object()) continue;
    auto number = [&](const char* key) { return j.contains(key) && j[key].is_number() ? j[key].get<double>() : NAN; };
    if (j.value("eval", false)) {
      // An evaluation at an epoch's end carries no step: it belongs to the last one.
      const double x = std::isfinite(number("global_step")) ? number("global_step") : last_step;
      valid_loss.points.emplace_back(x, number("valid_loss"));
      if (monitor != "valid_loss") metric.points.emplace_back(x, number(monitor.c_str()));
      continue;
    }
    const double step = number("global_step");
    if (!std::isfinite(step)) continue;
    last_step = step;
    train_loss.points.emplace_back(step, number("loss"));
    lr.points.emplace_back(step, number("lr"));
    if (j.contains("epoch") && j["epoch"].is_number_integer()) first_step_of_epoch.emplace(j["epoch"].get<int>(), step);
  }
  std::vector<util::ChartMarker> markers;
  for (std::size_t e = 1; e < freeze_plan.size(); ++e) {
    const auto it = first_step_of_epoch.find(static_cast<int>(e) + 1);
    if (freeze_plan[e] != freeze_plan[e - 1] && it != first_step_of_epoch.end()) {
      markers.push_back({it->second, groups_label(freeze_plan[e])});
    }
  }
  util::Chart chart{title, "step", false, {}};
  chart.panels.push_back({"loss", {train_loss, valid_loss}, markers});
  if (!metric.points.empty()) chart.panels.push_back({monitor, {metric}, markers});
  chart.panels.push_back({"learning rate", {lr}, markers});
  return util::render_svg(chart);
}

void write_training_curves(const std::string& run_dir, const std::vector<int>& freeze_plan, const std::string& monitor,
                           const std::string& stage) {
  const auto dir = std::filesystem::path(run_dir);
  try {
    const auto svg = training_curves_svg(util::read_file(dir / "metrics.jsonl"), freeze_plan, monitor,
                                         stage + ": " + dir.filename().string());
    util::write_file_atomic(dir / "curves.svg", svg);
  } catch (const std::exception& e) {
    log::warn("could not draw " + (dir / "curves.svg").string() + ": " + e.what());
  }
}

}  // namespace ulmfit::pipeline
