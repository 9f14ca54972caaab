#include "stage_support.h"

#include <chrono>
#include <ctime>
#include <filesystem>
#include <sstream>

#include "ulmfit/dist/process_group.h"
#include "ulmfit/nn/model_factory.h"
#include "ulmfit/pipeline/training_curves.h"
#include "ulmfit/text/corpus.h"
#include "ulmfit/text/lm_stream.h"
#include "ulmfit/util/error.h"
#include "ulmfit/util/files.h"
#include "ulmfit/util/log.h"

namespace ulmfit::pipeline::detail {
namespace {

namespace fs = std::filesystem;

}  // namespace

torch::Device prepare_runtime(const config::Config& cfg, const util::RuntimeInfo& runtime) {
  torch::manual_seed(static_cast<std::uint64_t>(cfg.seed));
  return torch::Device(runtime.device);
}

text::TokenCacheOptions cache_options(const config::Config& cfg, const util::RuntimeInfo& runtime) {
  return {cfg.data.cache_dir, true, runtime.threads, static_cast<std::uint64_t>(cfg.seed)};
}

namespace {

text::Tokenizer train_tokenizer(const config::Config& cfg, const util::RuntimeInfo& runtime) {
  const auto start = std::chrono::steady_clock::now();
  text::Corpus corpus = text::read_corpus(cfg.data.train, {}, static_cast<std::uint64_t>(cfg.seed));
  std::vector<std::string> docs;
  docs.reserve(corpus.documents.size());
  for (auto& d : corpus.documents) docs.push_back(std::move(d.text));
  log::info("training a " + std::to_string(cfg.tokenizer.vocab_size) + "-piece " + cfg.tokenizer.model_type +
            " tokenizer on " + std::to_string(docs.size()) + " documents");
  auto tok = text::Tokenizer::train(cfg.tokenizer, docs, runtime.threads);
  log::info("tokenizer trained in " +
            std::to_string(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()).substr(0, 5) +
            " s");
  return tok;
}

Corpora load_corpora_here(const config::Config& cfg, const text::Tokenizer& tokenizer,
                          const util::RuntimeInfo& runtime, const std::vector<std::string>& fixed_labels) {
  if (!cfg.data.train.given()) throw ConfigError(cfg.where("data.train.path") + ": no training data given");
  const auto cache = cache_options(cfg, runtime);
  Corpora c;
  auto train = text::load_tokenized(cfg.data.train, tokenizer, cache, fixed_labels);
  const auto& labels = fixed_labels.empty() ? train.label_names() : fixed_labels;
  if (cfg.data.valid.given()) {
    c.valid = text::load_tokenized(cfg.data.valid, tokenizer, cache, labels);
    c.train = std::move(train);
  } else if (cfg.data.valid_split > 0) {
    const auto order = text::epoch_permutation(train.size(), static_cast<std::uint64_t>(cfg.seed) ^ 0x7a11dULL, 0);
    const auto held = static_cast<std::size_t>(static_cast<double>(train.size()) * cfg.data.valid_split);
    if (held == 0 || held >= train.size()) throw ConfigError(cfg.where("data.valid_split") + ": leaves no documents on one side");
    std::vector<std::size_t> valid_idx(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(held));
    std::vector<std::size_t> train_idx(order.begin() + static_cast<std::ptrdiff_t>(held), order.end());
    std::sort(valid_idx.begin(), valid_idx.end());
    std::sort(train_idx.begin(), train_idx.end());
    c.valid = train.subset(valid_idx);
    c.train = train.subset(train_idx);
    log::info("held out " + std::to_string(held) + " of " + std::to_string(train.size()) +
              " training documents to validate (data.valid_split)");
  } else {
    c.train = std::move(train);
  }
  return c;
}

}  // namespace

text::Tokenizer obtain_tokenizer(const config::Config& cfg, const util::RuntimeInfo& runtime) {
  if (!cfg.tokenizer.path.empty()) return text::Tokenizer::load(cfg.tokenizer.path);
  auto& group = dist::world();
  if (!group.distributed()) return train_tokenizer(cfg, runtime);
  // One rank trains it; the others take its bytes, so every rank has the same.
  std::optional<text::Tokenizer> trained;
  std::string model;
  group.main_first("training the tokenizer", [&] {
    if (!group.is_main()) return;
    trained = train_tokenizer(cfg, runtime);
    model = trained->serialized();
  });
  model = group.broadcast_string(model);
  return group.is_main() ? std::move(*trained) : text::Tokenizer::from_serialized(model, "rank 0's trained tokenizer");
}

Corpora load_corpora(const config::Config& cfg, const text::Tokenizer& tokenizer, const util::RuntimeInfo& runtime,
                     const std::vector<std::string>& fixed_labels) {
  // Rank 0 tokenises and fills the token cache; the others then read it.
  Corpora c;
  dist::world().main_first("tokenising the data", [&] { c = load_corpora_here(cfg, tokenizer, runtime, fixed_labels); });
  return c;
}

void fit_backbone_to_documents(nn::BackboneImpl& backbone, const text::TokenizedCorpus& train) {
  backbone.fit_to_documents(train.size(), [&](std::size_t i) {
    const auto doc = train.doc(i);
    // A view of the corpus's ids, read (never written) before the next document.
    return torch::from_blob(const_cast<std::int32_t*>(doc.data), {static_cast<int64_t>(doc.size)}, torch::kInt);
  });
}

train::FitOptions fit_options(const config::Config& cfg, const util::RuntimeInfo& runtime, const torch::Device& device,
                              const std::string& stage, std::size_t groups) {
  train::FitOptions o;
  o.stage = stage;
  o.epochs = cfg.train.epochs;
  o.lr = cfg.train.lr;
  o.stage_lrs = cfg.train.stage_lrs;
  o.discriminative_factor = cfg.train.discriminative_factor;
  o.schedule = cfg.train.schedule;
  o.optimizer = cfg.train.optimizer;
  o.clip_grad = cfg.train.clip_grad;
  o.freeze_plan = train::freeze_plan_from(cfg.train, groups);
  o.patience = cfg.train.patience;
  o.monitor = cfg.train.monitor;
  o.keep_last = cfg.train.keep == "last";
  o.precision = runtime.precision;
  o.device = device;
  o.log_every = cfg.train.log_every;
  o.eval_every = cfg.train.eval_every;
  o.checkpoint_every = cfg.train.checkpoint_every;
  o.skip_nonfinite = cfg.train.on_nonfinite == "skip";
  o.spike_threshold = cfg.train.spike_rollback;
  o.spike_lr_backoff = cfg.train.spike_lr_backoff;
  return o;
}

tasks::LanguageModelingOptions lm_task_options(const config::Config& cfg, const torch::Device& device) {
  tasks::LanguageModelingOptions o;
  // AWD-LSTM's regularisers (random window lengths, AR, TAR) are its own:
  // a Transformer reads fixed windows no longer than its positions.
  const bool lstm = nn::is_recurrent(cfg.model);
  o.train_stream = {cfg.train.batch_size, cfg.train.bptt, lstm && cfg.train.variable_bptt,
                    static_cast<std::uint64_t>(cfg.seed), true, dist::world().rank(), dist::world().size()};
  o.eval_batch_size = cfg.train.batch_size;
  o.eval_bptt = cfg.train.bptt;
  o.ar = lstm ? cfg.train.ar : 0.0;
  o.tar = lstm ? cfg.train.tar : 0.0;
  o.objective = {nn::is_masked_lm(cfg.model), cfg.train.mask_prob};
  o.device = device;
  return o;
}

tasks::ClassificationOptions classification_task_options(const config::Config& cfg, const torch::Device& device) {
  tasks::ClassificationOptions o;
  o.batch_size = cfg.train.batch_size;
  o.eval_batch_size = cfg.train.batch_size * 2;
  o.seed = static_cast<std::uint64_t>(cfg.seed);
  o.bptt = cfg.train.bptt;
  o.length_sort_window = cfg.train.length_sort_window;
  o.batch_norm_refresh = cfg.train.batch_norm_refresh;
  o.shard = dist::world().rank();
  o.shards = dist::world().size();
  o.device = device;
  return o;
}

train::FitSummary fit_into_run(train::Task& task, const train::FitOptions& options, RunDir& run, bool resume) {
  auto model = task.model();
  auto& group = dist::world();
  const bool writes = group.is_main();  // the other ranks leave every file to rank 0
  const std::string checkpoint = run.file(kCheckpointFile);
  train::FitCallbacks callbacks;
  if (writes) {
    callbacks.metrics = [&run](const std::string& line) { run.append_metrics(line); };
    callbacks.save_best = [&run, model] { run.save_weights(*model, "model.pt"); };
    callbacks.save_checkpoint = [&run, model, checkpoint](torch::serialize::OutputArchive& state) {
      torch::serialize::OutputArchive weights;
      model->save(weights);
      state.write("model", weights);
      state.write("metrics_bytes", c10::IValue(static_cast<std::int64_t>(run.metrics_size())));
      write_archive(state, checkpoint);
      return checkpoint;
    };
  }
  if (group.distributed()) {
    if (!dist::broadcast_module(*model)) {
      log::warn(options.stage + ": " + group.describe() + " started from other weights than rank 0; it takes rank 0's");
    }
    // The generators stay in step on every rank (same seed, same draws):
    // the row-wise dropouts draw the global batch's masks (nn::set_batch_shard).
  }
  train::Learner learner(task, options, callbacks);
  if (resume) {
    if (fs::exists(checkpoint)) {
      auto archive = read_archive(checkpoint);
      load_module_from(*model, archive, checkpoint, "model");
      learner.restore(archive, checkpoint);
      c10::IValue metrics_bytes;
      if (writes && archive.try_read("metrics_bytes", metrics_bytes)) {
        run.truncate_metrics(static_cast<std::uint64_t>(metrics_bytes.toInt()));
      }
    } else {
      log::info(options.stage + ": " + run.path() + " has no checkpoint yet; training starts from the beginning");
      if (writes) run.truncate_metrics(0);
    }
  }
  train::FitSummary summary;
  const std::string monitor = options.monitor.empty() ? task.monitor() : options.monitor;
  try {
    summary = learner.fit();
  } catch (const Interrupted& e) {
    if (writes) write_training_curves(run.path(), options.freeze_plan, monitor, options.stage);
    throw Interrupted(std::string(e.what()) + "; resume with: ulmfit " + options.stage + " --resume " + run.path());
  }
  if (group.distributed()) {
    const auto [seconds, calls] = dist::gradient_sync_time();
    log::info(options.stage + ": " + group.describe() + ": gradient all-reduce " +
              std::to_string(1000.0 * seconds / static_cast<double>(std::max<std::int64_t>(calls, 1))).substr(0, 6) +
              " ms per step over " + std::to_string(calls) + " steps");
  }
  if (!writes) return summary;
  write_training_curves(run.path(), options.freeze_plan, monitor, options.stage);
  if (summary.best_epoch < 0) run.save_weights(*model, "model.pt");
  return summary;
}

config::ModelConfig inherit_architecture(const config::Config& cfg, const config::Config& parent,
                                         const std::string& parent_dir) {
  config::ModelConfig model = cfg.model;
  auto take = [&](const char* key, auto& mine, const auto& theirs) {
    const std::string path = std::string("model.") + key;
    if (mine != theirs && cfg.locations.count(path)) {
      std::ostringstream message;
      message << cfg.where(path) << ": is " << mine << " but " << parent_dir << " was trained with " << theirs
              << "; remove the key to inherit the parent's architecture";
      throw CheckpointError(message.str());
    }
    mine = theirs;
  };
  take("backbone", model.backbone, parent.model.backbone);
  take("emb_size", model.emb_size, parent.model.emb_size);
  take("layers", model.layers, parent.model.layers);
  // Only the keys the parent's backbone reads can conflict; the others are copied.
  if (nn::is_recurrent(parent.model)) {
    take("hidden_size", model.hidden_size, parent.model.hidden_size);
    model.heads = parent.model.heads;
    model.max_len = parent.model.max_len;
  } else {
    model.hidden_size = parent.model.hidden_size;
    take("heads", model.heads, parent.model.heads);
    take("max_len", model.max_len, parent.model.max_len);
    take("ffn_size", model.ffn_size, parent.model.ffn_size);
    take("norm", model.norm, parent.model.norm);
    take("activation", model.activation, parent.model.activation);
    take("norm_eps", model.norm_eps, parent.model.norm_eps);
    take("type_vocab_size", model.type_vocab_size, parent.model.type_vocab_size);
    take("output_bias", model.output_bias, parent.model.output_bias);
  }
  return model;
}

StartPoint start_point(const config::Config& given, const std::string& from, const std::string& purpose,
                       const util::RuntimeInfo& runtime, const OutputClaim* resumed) {
  if (from.empty()) {
    // From scratch the tokenizer is trained on the task's own text: the baseline.
    config::Config cfg = given;
    apply_from_scratch_recipe(cfg);
    auto tokenizer = resumed ? run_or_new_tokenizer(cfg, runtime, *resumed) : obtain_tokenizer(cfg, runtime);
    return {std::move(cfg), std::nullopt, std::move(tokenizer)};
  }
  RunDir parent = open_run(from, "lm", purpose);
  config::Config cfg = given;
  cfg.model = inherit_architecture(given, parent.read_config(), from);
  auto tokenizer = text::Tokenizer::load_from_run(parent.path());
  // A Transformer with a Hugging Face tokenizer came from an import (an
  // AWD-LSTM with one has a word vocabulary of its own making).
  if (std::string(tokenizer.file_name()) == "tokenizer.json" && !nn::is_recurrent(cfg.model)) {
    apply_pretrained_finetune_recipe(cfg);
  }
  return {std::move(cfg), std::move(parent), std::move(tokenizer)};
}

OutputClaim claim_output(const StageOptions& options, const std::string& stage) {
  auto& group = dist::world();
  // Rank 0's name: a default name holds the time, which can differ by a second.
  OutputClaim claim{group.broadcast_string(output_dir(options.out, stage)), options.overwrite, options.resume};
  if (claim.resume) {
    RunDir::open(claim.dir);  // checks it is a run directory
    return claim;
  }
  std::error_code ec;
  if (!options.from.empty() && fs::exists(claim.dir, ec) && fs::equivalent(claim.dir, options.from, ec)) {
    throw UsageError(claim.dir + ": --out is the --from run; write the new run elsewhere");
  }
  RunDir::check_creatable(claim.dir, claim.overwrite);
  group.barrier();  // every rank checked before rank 0 may create it
  return claim;
}

RunDir open_output(const OutputClaim& claim) {
  if (!dist::world().is_main()) return claim.resume ? RunDir::open(claim.dir) : RunDir::follow(claim.dir);
  if (claim.resume) {
    RunDir run = RunDir::open(claim.dir);
    run.remove_stale_temporaries();
    return run;
  }
  return RunDir::create(claim.dir, claim.overwrite);
}

text::Tokenizer run_or_new_tokenizer(const config::Config& cfg, const util::RuntimeInfo& runtime,
                                     const OutputClaim& claim) {
  const bool has_own = fs::is_regular_file(fs::path(claim.dir) / "tokenizer.model") ||
                       fs::is_regular_file(fs::path(claim.dir) / "tokenizer.json");
  if (claim.resume && has_own) return text::Tokenizer::load_from_run(claim.dir);
  return obtain_tokenizer(cfg, runtime);
}

std::string output_dir(const std::string& out, const std::string& stage) {
  if (!out.empty()) return out;
  return (fs::path("runs") / (stage + "-" + util::utc_now("%Y%m%d-%H%M%S"))).string();
}

RunMeta make_meta(const std::string& stage, const std::string& task, const std::string& parent,
                  const config::Config& cfg, std::int64_t vocab_size, std::vector<std::string> labels) {
  RunMeta m;
  m.stage = stage;
  m.task = task;
  m.parent = parent;
  m.backbone = cfg.model.backbone;
  m.vocab_size = vocab_size;
  m.labels = std::move(labels);
  m.libtorch = TORCH_VERSION;
  m.created = util::utc_now("%Y-%m-%dT%H:%M:%SZ");
  return m;
}

RunDir open_run(const std::string& path, const std::string& expected_task, const std::string& purpose) {
  RunDir run = RunDir::open(path);
  if (run.meta().task != expected_task) {
    throw CheckpointError(path + ": is a " + run.meta().task + " run, but " + purpose + " needs a " +
                          (expected_task == "lm" ? "language model" : "classifier") + " run");
  }
  return run;
}

}  // namespace ulmfit::pipeline::detail
