// A run loaded for inference: the one place that turns a run directory into
// a model in eval mode, for evaluate, predict, generate and serve.
#include "ulmfit/pipeline/loaded_model.h"

#include "stage_support.h"
#include "ulmfit/nn/model_factory.h"
#include "ulmfit/tasks/classification.h"
#include "ulmfit/tasks/language_modeling.h"
#include "ulmfit/text/corpus.h"
#include "ulmfit/train/precision.h"
#include "ulmfit/util/error.h"

namespace ulmfit::pipeline {
namespace {

/// The dtype a classifier's weights take for inference. Under autocast a
/// Transformer with fp32 weights converts every block's bf16 products back to
/// fp32 for the residual sum and LayerNorm, and casts the weights again each
/// batch; holding the encoder's weights in bf16 keeps its forward pass in bf16
/// (LibTorch's CPU LayerNorm and softmax accumulate in fp32 internally).
/// AWD-LSTM and the n-grams bag stay fp32: their recurrence and sums are the
/// parts that lose precision, and their products are a small share of the time.
torch::Dtype inference_dtype(const config::ModelConfig& model, const std::string& precision) {
  if (nn::is_recurrent(model) || model.backbone == "ngrams") return torch::kFloat;
  return train::precision_dtype(precision);
}

/// Documents per inference batch. AWD-LSTM's recurrence wants wide batches.
/// Transformers run fastest in small ones on CPU (MiniLM, 500 IMDB reviews of
/// 256 tokens, 2 cores, bf16: 12.5 s in batches of 16, 15.9 s of 32, 17.5 s
/// of 64: the activations of a larger batch outgrow the caches). Sorted, a corpus's batches hold reviews of
/// nearly one length; a server's few texts of any lengths would pad short
/// ones to the longest, so there a Transformer's batch is also bounded to
/// 16 x 256 padded positions (MiniLM under 64 concurrent one-review requests:
/// 25.6 reviews/s against 17.3 with 16 documents of any lengths; predict on
/// 1,000 sorted reviews was 10-14 % slower with the bound).
int inference_batch_size(const config::ModelConfig& model, int requested) {
  if (requested > 0) return requested;
  return nn::is_recurrent(model) ? 64 : 16;
}
constexpr std::size_t kMixedBatchPositions = 16 * 256;

std::size_t inference_batch_positions(const config::ModelConfig& model, bool mixed_lengths) {
  const bool transformer = !nn::is_recurrent(model) && model.backbone != "ngrams";
  return transformer && mixed_lengths ? kMixedBatchPositions : 0;
}

}  // namespace

struct LoadedModel::State {
  RunDir run;
  config::Config cfg;
  text::Tokenizer tokenizer;
  torch::Device device;
  std::string precision;
  nn::SequenceClassifier classifier{nullptr};
  nn::LanguageModel language_model{nullptr};
};

LoadedModel::LoadedModel(const std::string& run_dir, const util::RuntimeInfo& runtime) {
  RunDir run = RunDir::open(run_dir);
  auto cfg = run.read_config();
  auto tokenizer = text::Tokenizer::load_from_run(run.path());
  if (tokenizer.vocab_size() != run.meta().vocab_size) {
    throw CheckpointError(run.file(tokenizer.file_name()) + ": has " + std::to_string(tokenizer.vocab_size()) +
                          " pieces but the run's model expects " + std::to_string(run.meta().vocab_size));
  }
  torch::manual_seed(0);
  state_ = std::make_unique<State>(
      State{std::move(run), std::move(cfg), std::move(tokenizer), torch::Device(runtime.device), runtime.precision});
  auto& s = *state_;
  if (s.run.meta().task == "classifier") {
    s.classifier = nn::make_classifier(s.cfg.model, s.cfg.train, s.tokenizer.vocab_size(),
                                       static_cast<int64_t>(s.run.meta().labels.size()));
    s.run.load_weights(*s.classifier, "model.pt");
    s.classifier->to(s.device);
    // The head stays fp32: CPU BatchNorm takes bf16 inputs only with fp32 parameters.
    s.classifier->encoder->to(inference_dtype(s.cfg.model, s.precision));
    s.classifier->eval();
  } else {
    s.language_model = nn::make_language_model(s.cfg.model, s.tokenizer.vocab_size());
    s.run.load_weights(*s.language_model, "model.pt");
    s.language_model->to(s.device);
    s.language_model->eval();
  }
}

LoadedModel::~LoadedModel() = default;
LoadedModel::LoadedModel(LoadedModel&&) noexcept = default;
LoadedModel& LoadedModel::operator=(LoadedModel&&) noexcept = default;

const RunDir& LoadedModel::run() const { return state_->run; }
const config::Config& LoadedModel::config() const { return state_->cfg; }
const text::Tokenizer& LoadedModel::tokenizer() const { return state_->tokenizer; }
const torch::Device& LoadedModel::device() const { return state_->device; }
bool LoadedModel::can_generate() const { return meta().task == "lm" && !nn::is_masked_lm(state_->cfg.model); }

torch::Tensor LoadedModel::classify(const text::TokenizedCorpus& corpus, int batch_size, bool mixed_lengths) const {
  auto& s = *state_;
  if (!s.classifier) throw CheckpointError(s.run.path() + ": is a language model run, not a classifier");
  torch::NoGradGuard no_grad;
  train::AutocastScope autocast(s.precision, s.device);
  return tasks::predict_probabilities(*s.classifier, corpus, inference_batch_size(s.cfg.model, batch_size),
                                      s.cfg.train.bptt, s.device, inference_batch_positions(s.cfg.model, mixed_lengths));
}

torch::Tensor LoadedModel::classify(const std::vector<std::string>& texts, int batch_size, bool mixed_lengths) const {
  const auto threads = static_cast<int>(torch::get_num_threads());
  return classify(text::TokenizedCorpus::from_documents(state_->tokenizer.encode_batch(texts, threads)), batch_size,
                  mixed_lengths);
}

LoadedModel::Generation LoadedModel::generate(const GenerateOptions& options) const {
  auto& s = *state_;
  if (s.run.meta().task != "lm") throw CheckpointError(s.run.path() + ": generate needs a language model run");
  if (!can_generate()) {
    throw CheckpointError(s.run.path() + ": is a masked language model (model.backbone: bert), which cannot generate "
                          "text left to right; use an awd_lstm or transformer run");
  }
  if (options.max_tokens < 0) throw UsageError("--max-tokens must be >= 0");
  std::vector<int> ids{text::SpecialIds::kBos};
  for (int id : s.tokenizer.encode(options.prompt)) ids.push_back(id);
  const std::size_t prompt_length = ids.size();
  torch::NoGradGuard no_grad;
  train::AutocastScope autocast(s.precision, s.device);
  ids = sample_tokens(*s.language_model, std::move(ids), options, s.device, true);
  return {s.tokenizer.decode(std::vector<int>(ids.begin() + 1, ids.end())), ids.size() - prompt_length};
}

train::Metrics LoadedModel::evaluate_language_model(const text::TokenizedCorpus& corpus) const {
  auto& s = *state_;
  if (!s.language_model) throw CheckpointError(s.run.path() + ": is a classifier run, not a language model");
  torch::NoGradGuard no_grad;
  train::AutocastScope autocast(s.precision, s.device);
  return tasks::evaluate_language_model(*s.language_model, corpus, s.cfg.train.batch_size, s.cfg.train.bptt, s.device,
                                        detail::lm_task_options(s.cfg, s.device).objective);
}

}  // namespace ulmfit::pipeline
