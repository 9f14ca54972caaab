#pragma once
/// A stage's run directory: resolved config, meta, tokenizer, best weights,
/// resumable state and metrics. Every file is written atomically.
///
///   RunDir run = RunDir::create("runs/wt2", /*overwrite=*/false);
///   run.write_config(cfg);  run.save_weights(*model, "model.pt");
///   RunDir parent = RunDir::open("runs/wt2");   // checks meta.yaml's format
#include <torch/torch.h>

#include <string>
#include <vector>

#include "ulmfit/config/config.h"

namespace ulmfit::pipeline {

/// Bumped when a run directory's layout or meaning changes.
constexpr int kRunFormatVersion = 1;

/// The resumable checkpoint inside a run directory: model weights, optimizer,
/// loop position, RNG states, carried state and the metrics.jsonl size.
constexpr const char* kCheckpointFile = "state/checkpoint.pt";

struct RunMeta {
  int format_version = kRunFormatVersion;
  std::string stage;     // pretrain | adapt | finetune
  std::string task;      // lm | classifier
  std::string parent;    // run this one started from, if any
  std::string backbone;
  std::int64_t vocab_size = 0;
  std::vector<std::string> labels;
  std::string libtorch;
  std::string created;   // ISO 8601, UTC
};

class RunDir {
 public:
  /// Creates (or reuses an empty) folder; a non-empty one is refused unless
  /// `overwrite` (then its contents are removed), so no earlier run is lost by
  /// accident.
  static RunDir create(const std::string& path, bool overwrite);
  /// The checks of create() without touching the disk, so a stage can refuse
  /// a bad --out before its work and create the folder only once its inputs
  /// have been read.
  static void check_creatable(const std::string& path, bool overwrite);
  /// An existing run to read from; CheckpointError when it is missing, has no
  /// meta.yaml, or was written by a newer format.
  static RunDir open(const std::string& path);
  /// The run that rank 0 of a data-parallel group is creating, for another
  /// rank: it names the files and never writes them.
  static RunDir follow(const std::string& path) { return RunDir(path); }

  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const;

  void write_config(const config::Config& cfg) const;
  /// The run's resolved config (its paths are absolute).
  config::Config read_config() const;
  void write_meta(const RunMeta& meta);
  const RunMeta& meta() const { return meta_; }

  /// Appends one JSON line to metrics.jsonl.
  void append_metrics(const std::string& json_line) const;
  /// Size of metrics.jsonl now (0 when absent); a checkpoint records it.
  std::uint64_t metrics_size() const;
  /// Cuts metrics.jsonl back to `size` bytes: a resumed run drops the lines
  /// logged after its checkpoint, which it is about to log again.
  void truncate_metrics(std::uint64_t size) const;
  /// Removes temporary files an interrupted atomic write left behind.
  void remove_stale_temporaries() const;

  void save_weights(torch::nn::Module& module, const std::string& name) const;
  /// Loads weights saved from a module of the same architecture.
  void load_weights(torch::nn::Module& module, const std::string& name) const;
  /// Loads only the `encoder` sub-module's weights of a saved model.
  void load_encoder_weights(torch::nn::Module& encoder, const std::string& name) const;

 private:
  explicit RunDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
  RunMeta meta_;
};

/// Writes an archive to `path` atomically, with a checksum trailer that
/// read_archive verifies.
void write_archive(torch::serialize::OutputArchive& archive, const std::string& path);
/// Writes a module's parameters and buffers to `path` atomically.
void save_module(torch::nn::Module& module, const std::string& path);
/// CheckpointError naming the file when it is corrupt or does not fit.
void load_module(torch::nn::Module& module, const std::string& path, const std::string& submodule = "");
/// Reads `path` into an archive; CheckpointError when it is missing or damaged.
torch::serialize::InputArchive read_archive(const std::string& path);
/// Loads a module from an archive (or its `submodule` entry), checking every
/// tensor's presence and shape first; errors name `path`.
void load_module_from(torch::nn::Module& module, torch::serialize::InputArchive& archive, const std::string& path,
                      const std::string& submodule = "");

}  // namespace ulmfit::pipeline
