#pragma once
/// Classification metrics from predicted and true class indices.
#include <cstdint>
#include <vector>

namespace ulmfit::train {

struct ClassificationReport {
  double accuracy = 0;
  double macro_f1 = 0;
  std::vector<double> precision, recall, f1;  // per class
  std::vector<std::int64_t> support;          // true examples per class
  std::vector<std::vector<std::int64_t>> confusion;  // [true][predicted]
};

/// Labels outside [0, classes) are an error; a class never predicted has
/// precision 0, one never present has recall 0 (both then give F1 0).
ClassificationReport classification_report(const std::vector<std::int64_t>& truth,
                                           const std::vector<std::int64_t>& predicted, int classes);

}  // namespace ulmfit::train
