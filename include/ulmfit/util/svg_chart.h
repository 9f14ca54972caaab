#pragma once
/// Line charts as standalone SVG files, for people who would rather look than
/// read: lr-find's curve, a run's training curves, benchmark plots. Panels
/// stack vertically and share the x axis.
///
///   util::Chart chart{"lr-find", "learning rate", true, {}};
///   chart.panels.push_back({"smoothed loss", {{"loss", points}}, {{suggested, "suggested"}}});
///   util::write_file_atomic(dir / "lr_find.svg", util::render_svg(chart));
#include <string>
#include <utility>
#include <vector>

namespace ulmfit::util {

struct ChartSeries {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y); non-finite ones are skipped
  bool dots = false;                              // dots instead of a line (sparse points such as evaluations)
};

/// A dashed vertical line across every panel, labelled at the top.
struct ChartMarker {
  double x = 0;
  std::string label;
};

struct ChartPanel {
  std::string y_label;
  std::vector<ChartSeries> series;
  std::vector<ChartMarker> markers;
};

struct Chart {
  std::string title;
  std::string x_label;
  bool log_x = false;
  std::vector<ChartPanel> panels;
};

/// The chart as an SVG document (640 px wide, 220 px per panel).
std::string render_svg(const Chart& chart);

}  // namespace ulmfit::util
