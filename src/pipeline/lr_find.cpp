// lr-find: fastai's LR range test, written as CSV and an SVG plot.
#include <cmath>
#include <filesystem>
#include <sstream>

#include "stage_support.h"
#include "ulmfit/nn/model_factory.h"
#include "ulmfit/pipeline/stages.h"
#include "ulmfit/tasks/classification.h"
#include "ulmfit/tasks/language_modeling.h"
#include "ulmfit/text/corpus.h"
#include "ulmfit/util/files.h"
#include "ulmfit/util/log.h"
#include "ulmfit/util/svg_chart.h"

namespace ulmfit::pipeline {
namespace {

std::string curve_csv(const std::vector<std::pair<double, double>>& curve) {
  std::ostringstream out;
  out.precision(8);
  out << "lr,smoothed_loss\n";
  for (const auto& [lr, loss] : curve) out << lr << "," << loss << "\n";
  return out.str();
}

/// A log-x line plot of the curve with the suggestion marked.
std::string curve_svg(const std::vector<std::pair<double, double>>& curve, double suggestion) {
  std::ostringstream label;
  label.precision(3);
  label << "suggested " << suggestion;
  util::Chart chart{"lr-find", "learning rate", true, {}};
  chart.panels.push_back({"smoothed loss", {{"loss", curve, false}}, {{suggestion, label.str()}}});
  return util::render_svg(chart);
}

}  // namespace

LrFindResult lr_find(const config::Config& given, const util::RuntimeInfo& runtime, const StageOptions& options) {
  text::check_data_paths(given);
  auto start = detail::start_point(given, options.from, "lr-find --from", runtime);
  const auto& cfg = start.cfg;
  const auto& tokenizer = start.tokenizer;
  auto& parent = start.parent;
  const auto device = detail::prepare_runtime(cfg, runtime);
  const auto corpora = detail::load_corpora(cfg, tokenizer, runtime, cfg.data.train.labels);
  // Labelled training data means a classifier; otherwise a language model.
  bool labelled = false;
  for (std::size_t i = 0; i < corpora.train->size() && !labelled; ++i) labelled = corpora.train->label(i) >= 0;
  nn::check_architecture(cfg, !labelled);
  const std::string out_dir = detail::output_dir(options.out, "lr-find");
  std::filesystem::create_directories(out_dir);
  auto fit = detail::fit_options(cfg, runtime, device, "lr-find", 1);
  std::vector<std::pair<double, double>> curve;
  constexpr int kSteps = 100;
  if (labelled) {
    auto model = nn::make_classifier(cfg.model, cfg.train, tokenizer.vocab_size(),
                                     static_cast<int64_t>(corpora.train->label_names().size()));
    if (parent) {
      parent->load_encoder_weights(*model->encoder, "model.pt");
    } else {
      detail::fit_backbone_to_documents(*model->encoder, *corpora.train);
    }
    model->to(device);
    tasks::ClassificationTask task(model, *corpora.train, nullptr, detail::classification_task_options(cfg, device));
    curve = train::lr_range_test(task, fit, 1e-7, 10, kSteps);
  } else {
    auto model = nn::make_language_model(cfg.model, tokenizer.vocab_size());
    if (parent) parent->load_weights(*model, "model.pt");
    model->to(device);
    auto o = detail::lm_task_options(cfg, device);
    o.train_stream.variable_bptt = false;  // equal windows keep the LR sweep's steps comparable
    tasks::LanguageModelingTask task(model, *corpora.train, nullptr, o);
    curve = train::lr_range_test(task, fit, 1e-7, 10, kSteps);
  }
  LrFindResult result;
  result.curve = curve;
  result.suggestion = train::suggest_lr(curve);
  result.csv_path = (std::filesystem::path(out_dir) / "lr_find.csv").string();
  result.svg_path = (std::filesystem::path(out_dir) / "lr_find.svg").string();
  util::write_file_atomic(result.csv_path, curve_csv(curve));
  if (!curve.empty()) util::write_file_atomic(result.svg_path, curve_svg(curve, result.suggestion));
  return result;
}

}  // namespace ulmfit::pipeline
