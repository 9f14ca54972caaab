#include "ulmfit/train/metrics.h"

#include "ulmfit/util/error.h"

namespace ulmfit::train {

ClassificationReport classification_report(const std::vector<std::int64_t>& truth,
                                           const std::vector<std::int64_t>& predicted, int classes) {
  if (truth.size() != predicted.size()) throw RuntimeFailure("metrics: truth and predictions differ in length");
  const auto n = static_cast<std::size_t>(classes);
  ClassificationReport r;
  r.confusion.assign(n, std::vector<std::int64_t>(n, 0));
  std::int64_t correct = 0;
  for (std::size_t i = 0; i < truth.size(); ++i) {
    if (truth[i] < 0 || truth[i] >= classes || predicted[i] < 0 || predicted[i] >= classes) {
      throw DataError("metrics: label index outside the model's " + std::to_string(classes) + " classes");
    }
    ++r.confusion[static_cast<std::size_t>(truth[i])][static_cast<std::size_t>(predicted[i])];
    correct += truth[i] == predicted[i];
  }
  r.accuracy = truth.empty() ? 0.0 : static_cast<double>(correct) / static_cast<double>(truth.size());
  for (std::size_t c = 0; c < n; ++c) {
    std::int64_t tp = r.confusion[c][c], predicted_c = 0, actual_c = 0;
    for (std::size_t k = 0; k < n; ++k) {
      predicted_c += r.confusion[k][c];
      actual_c += r.confusion[c][k];
    }
    const double p = predicted_c ? static_cast<double>(tp) / static_cast<double>(predicted_c) : 0.0;
    const double rec = actual_c ? static_cast<double>(tp) / static_cast<double>(actual_c) : 0.0;
    r.precision.push_back(p);
    r.recall.push_back(rec);
    r.f1.push_back(p + rec > 0 ? 2 * p * rec / (p + rec) : 0.0);
    r.support.push_back(actual_c);
    r.macro_f1 += r.f1.back() / static_cast<double>(n);
  }
  return r;
}

}  // namespace ulmfit::train
