#include "ulmfit/util/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace ulmfit::util {
namespace {

constexpr double kWidth = 640, kPanelHeight = 220, kLeft = 85, kRight = 20, kTop = 30, kBottom = 50;
const char* const kColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"};

std::string escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '&') {
      out += "&amp;";
    } else if (c == '<') {
      out += "&lt;";
    } else if (c == '>') {
      out += "&gt;";
    } else if (c == '"') {
      out += "&quot;";
    } else {
      out += c;
    }
  }
  return out;
}

std::string number(double v) {
  std::ostringstream out;
  out.precision(4);
  out << v;
  return out.str();
}

struct Range {
  double lo = INFINITY, hi = -INFINITY;
  void add(double v) {
    if (!std::isfinite(v)) return;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  bool empty() const { return !(hi >= lo); }
  /// A range a value can be placed in: a point widens to a unit, nothing to [0, 1].
  Range usable() const {
    if (empty()) return {0, 1};
    if (hi > lo) return *this;
    return {lo - 0.5, hi + 0.5};
  }
};

}  // namespace

std::string render_svg(const Chart& chart) {
  auto x_of = [&](double x) { return chart.log_x ? (x > 0 ? std::log10(x) : NAN) : x; };
  Range xs;
  for (const auto& panel : chart.panels) {
    for (const auto& s : panel.series) {
      for (const auto& p : s.points) xs.add(x_of(p.first));
    }
    for (const auto& m : panel.markers) xs.add(x_of(m.x));
  }
  xs = xs.usable();
  const double plot_w = kWidth - kLeft - kRight;
  auto sx = [&](double x) { return kLeft + (x_of(x) - xs.lo) / (xs.hi - xs.lo) * plot_w; };
  const double height = kPanelHeight * static_cast<double>(std::max<std::size_t>(1, chart.panels.size())) + kBottom;

  std::ostringstream svg;
  svg.precision(6);
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kWidth << "\" height=\"" << height
      << "\" font-family=\"sans-serif\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  if (!chart.title.empty()) {
    svg << "<text x=\"" << kWidth / 2 << "\" y=\"18\" font-size=\"14\" text-anchor=\"middle\">" << escape(chart.title)
        << "</text>\n";
  }
  for (std::size_t k = 0; k < chart.panels.size(); ++k) {
    const auto& panel = chart.panels[k];
    const double top = kPanelHeight * static_cast<double>(k) + kTop, bottom = kPanelHeight * static_cast<double>(k + 1);
    Range ys;
    for (const auto& s : panel.series) {
      for (const auto& p : s.points) ys.add(p.second);
    }
    ys = ys.usable();
    auto sy = [&](double y) { return top + (ys.hi - y) / (ys.hi - ys.lo) * (bottom - top); };
    svg << "<rect x=\"" << kLeft << "\" y=\"" << top << "\" width=\"" << plot_w << "\" height=\"" << bottom - top
        << "\" fill=\"none\" stroke=\"#999\"/>\n";
    for (const double y : {ys.lo, (ys.lo + ys.hi) / 2, ys.hi}) {
      svg << "<text x=\"" << kLeft - 5 << "\" y=\"" << sy(y) + 4 << "\" font-size=\"11\" text-anchor=\"end\">"
          << number(y) << "</text>\n";
    }
    const double mid = (top + bottom) / 2;
    svg << "<text x=\"14\" y=\"" << mid << "\" font-size=\"12\" text-anchor=\"middle\" transform=\"rotate(-90 14 " << mid
        << ")\">" << escape(panel.y_label) << "</text>\n";
    for (std::size_t i = 0; i < panel.series.size(); ++i) {
      const auto& s = panel.series[i];
      const char* color = kColors[i % (sizeof(kColors) / sizeof(kColors[0]))];
      std::ostringstream points;
      points.precision(6);
      std::size_t shown = 0;
      for (const auto& [x, y] : s.points) {
        if (!std::isfinite(x_of(x)) || !std::isfinite(y)) continue;
        ++shown;
        if (s.dots) {
          svg << "<circle cx=\"" << sx(x) << "\" cy=\"" << sy(y) << "\" r=\"3\" fill=\"" << color << "\"/>\n";
        } else {
          points << sx(x) << "," << sy(y) << " ";
        }
      }
      if (!s.dots && shown > 0) {
        svg << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"1.5\" points=\"" << points.str()
            << "\"/>\n";
      }
      svg << "<text x=\"" << kWidth - kRight - 5 << "\" y=\"" << top + 14 + 14 * static_cast<double>(i)
          << "\" font-size=\"11\" text-anchor=\"end\" fill=\"" << color << "\">" << escape(s.name) << "</text>\n";
    }
    for (const auto& m : panel.markers) {
      if (!std::isfinite(x_of(m.x))) continue;
      svg << "<line x1=\"" << sx(m.x) << "\" y1=\"" << top << "\" x2=\"" << sx(m.x) << "\" y2=\"" << bottom
          << "\" stroke=\"#d62728\" stroke-dasharray=\"4\"/>\n<text x=\"" << sx(m.x) + 3 << "\" y=\"" << top + 12
          << "\" font-size=\"10\" fill=\"#d62728\">" << escape(m.label) << "</text>\n";
    }
  }
  // The shared x axis, under the last panel.
  const double axis_y = kPanelHeight * static_cast<double>(std::max<std::size_t>(1, chart.panels.size()));
  if (chart.log_x) {
    for (int e = static_cast<int>(std::ceil(xs.lo)); e <= static_cast<int>(std::floor(xs.hi)); ++e) {
      svg << "<text x=\"" << sx(std::pow(10.0, e)) << "\" y=\"" << axis_y + 16
          << "\" font-size=\"11\" text-anchor=\"middle\">1e" << e << "</text>\n";
    }
  } else {
    for (int i = 0; i <= 4; ++i) {
      const double x = xs.lo + (xs.hi - xs.lo) * i / 4;
      svg << "<text x=\"" << sx(x) << "\" y=\"" << axis_y + 16 << "\" font-size=\"11\" text-anchor=\"middle\">"
          << number(x) << "</text>\n";
    }
  }
  svg << "<text x=\"" << kLeft + plot_w / 2 << "\" y=\"" << axis_y + 38 << "\" font-size=\"12\" text-anchor=\"middle\">"
      << escape(chart.x_label) << "</text>\n</svg>\n";
  return svg.str();
}

}  // namespace ulmfit::util
