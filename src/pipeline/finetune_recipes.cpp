// Recipes that fill the train, dropout and head keys a finetune config leaves out,
// for the two starts whose needs differ from the built-in defaults (which are
// AWD-LSTM fine-tuning's): a pretrained Transformer, and no pretraining at all.
#include <functional>
#include <sstream>

#include "stage_support.h"
#include "ulmfit/util/log.h"

namespace ulmfit::pipeline::detail {
namespace {

/// Assigns keys the config does not set, and says which in one log line.
class RecipeKeys {
 public:
  RecipeKeys(const config::Config& cfg, std::string name) : cfg_(cfg), name_(std::move(name)) {}
  ~RecipeKeys() {
    if (applied_.empty()) return;
    std::ostringstream keys;
    for (std::size_t i = 0; i < applied_.size(); ++i) keys << (i ? ", " : "") << applied_[i];
    log::info(name_ + ": the recipe sets what the config leaves out (" + keys.str() + ")");
  }
  /// `key` unless the config sets it, or a key that means the same choice.
  void operator()(const std::string& key, const std::function<void()>& assign,
                  std::initializer_list<const char*> same_choice = {}) {
    if (cfg_.locations.count(key)) return;  // the user's own value wins
    for (const char* other : same_choice) {
      if (cfg_.locations.count(other)) return;
    }
    assign();
    applied_.push_back(key);
  }

 private:
  const config::Config& cfg_;
  std::string name_;
  std::vector<std::string> applied_;
};

}  // namespace

// Chosen on the dev split of bench/minilm_dev.sh with all-MiniLM-L6-v2 on
// 1,000 IMDB labels (bench/RESULTS.md); the built-in defaults (LR 3e-3, ten
// epochs, heavy dropout) would wreck a pretrained encoder.
void apply_pretrained_finetune_recipe(config::Config& cfg) {
  RecipeKeys set(cfg, "pretrained Transformer");
  auto& t = cfg.train;
  auto& d = cfg.model.dropout;
  // One epoch with only the new head training, then three with every layer
  // group, the encoder at a tenth of the head's peak LR, mildly discriminative.
  set("train.epochs", [&] { t.epochs = 4; });
  set("train.freeze_to", [&] { t.freeze_to = {1, 0}; }, {"train.unfreeze"});
  set("train.stage_lrs", [&] { t.stage_lrs = {2e-3, 2e-4}; }, {"train.lr"});
  set("train.discriminative_factor", [&] { t.discriminative_factor = 1.3; });
  set("train.batch_size", [&] { t.batch_size = 16; });
  set("train.schedule.name", [&] { t.schedule.name = "one_cycle"; });
  set("train.schedule.pct_start", [&] { t.schedule.pct_start = 0.1; });
  set("train.optimizer.name", [&] { t.optimizer.name = "adamw"; });
  set("train.optimizer.betas", [&] { t.optimizer.betas = {0.9, 0.999}; });
  set("train.optimizer.weight_decay", [&] { t.optimizer.weight_decay = 0.01; });
  set("train.clip_grad", [&] { t.clip_grad = 1.0; });
  // The whole review, in equal chunks of at most model.max_len, up to 1,024 tokens.
  set("train.long_documents", [&] { t.long_documents = "chunk"; });
  set("train.max_len", [&] { t.max_len = 1024; });
  // The pretraining dropouts, except attention's: with it LibTorch's CPU
  // attention leaves its fused kernel and a step is 2.5x slower.
  set("model.dropout.embed", [&] { d.embed = 0.0; });
  set("model.dropout.input", [&] { d.input = 0.1; });
  set("model.dropout.hidden", [&] { d.hidden = 0.1; });
  set("model.dropout.attention", [&] { d.attention = 0.0; });
  set("model.dropout.output", [&] { d.output = 0.1; });
  set("model.dropout.mult", [&] { d.mult = 1.0; });
  // No BatchNorm in the new head. With it, the 1,000 labels the test runs
  // draw (seed 42, from all 25,000 training reviews) scored 87.08 % on the
  // movie-disjoint dev reviews and called 410 too many of them positive, as
  // the test runs did on the test reviews; without it 88.84 % (bench/RESULTS.md,
  // 2026-12-03).
  set("model.head_batch_norm", [&] { cfg.model.head_batch_norm = false; });
}

// A random encoder has nothing to protect: discriminative LRs (lowest group
// at 2.6^-3 of the head's LR) and gradual unfreezing would leave its lower
// layers barely trained, and the classifier predicting one class. Every
// group trains from the first step at one LR, as fastai trains a model from
// scratch. The LR and epochs were chosen on a 1,000-review dev set cut from
// the training reviews (bench/RESULTS.md, issue: ULMFiT on a CPU budget).
constexpr double kFromScratchLr = 3e-3;

void apply_from_scratch_recipe(config::Config& cfg) {
  if (cfg.model.backbone == "ngrams") return;  // its own config says what it needs
  RecipeKeys set(cfg, "from scratch");
  auto& t = cfg.train;
  set("train.freeze_to", [&] { t.freeze_to = {0}; }, {"train.unfreeze"});
  set("train.discriminative_factor", [&] { t.discriminative_factor = 1.0; });
  set("train.lr", [&] { t.lr = kFromScratchLr; }, {"train.stage_lrs"});
  // No dropout, and batches of random lengths: on the dev split (1,000 IMDB
  // labels, bench/RESULTS.md) AWD-LSTM's dropouts kept a random encoder at
  // one class (50 %) however long it trained, and length-sorted batches gave
  // the head's BatchNorm statistics that sorted evaluation batches did not
  // match (66.6 %); without both: 79.7 %, both classes predicted.
  set("model.dropout.mult", [&] { cfg.model.dropout.mult = 0.0; },
      {"model.dropout.embed", "model.dropout.input", "model.dropout.hidden", "model.dropout.weight",
       "model.dropout.output", "model.dropout.attention"});
  set("train.length_sort_window", [&] { t.length_sort_window = 1; });
  // A random encoder's pooled features move further between steps than they
  // differ between documents, so the head's running BatchNorm averages lag
  // the weights: on the dev split the evaluations after epochs 1 and 2 of 4
  // called all 1,000 reviews one class, and at 1,000 labels the best epoch
  // was picked among such evaluations (50.00 % on the test reviews).
  // Recomputed over the last 16 batches with the weights evaluated, every
  // evaluation called both classes (bench/RESULTS.md, 2026-12-03).
  set("train.batch_norm_refresh", [&] { t.batch_norm_refresh = 16; });
}

}  // namespace ulmfit::pipeline::detail
