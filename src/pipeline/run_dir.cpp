#include "ulmfit/pipeline/run_dir.h"

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "ulmfit/config/loader.h"
#include "ulmfit/util/error.h"
#include "ulmfit/util/files.h"

namespace ulmfit::pipeline {
namespace {

namespace fs = std::filesystem;

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

std::string shape_text(const torch::Tensor& t) {
  std::string s = "[";
  for (int64_t d = 0; d < t.dim(); ++d) s += (d ? ", " : "") + std::to_string(t.size(d));
  return s + "]";
}

/// LibTorch's Module::load replaces each tensor with whatever the file holds,
/// whatever its shape: check every parameter and buffer first, so a run of
/// another architecture or vocabulary fails by name instead of loading.
void check_archive_fits(torch::nn::Module& module, torch::serialize::InputArchive& archive, const std::string& prefix,
                        const std::string& path) {
  auto check = [&](const std::string& name, const torch::Tensor& expected, bool buffer) {
    torch::Tensor stored;
    if (!archive.try_read(name, stored, buffer)) {
      throw CheckpointError(path + ": has no " + prefix + name + "; was it written for another model?");
    }
    if (stored.sizes() != expected.sizes()) {
      throw CheckpointError(path + ": " + prefix + name + " is " + shape_text(stored) + " in the file but " +
                            shape_text(expected) + " in the model (another architecture or vocabulary)");
    }
  };
  for (const auto& p : module.named_parameters(/*recurse=*/false)) check(p.key(), p.value(), false);
  for (const auto& b : module.named_buffers(/*recurse=*/false)) check(b.key(), b.value(), true);
  for (const auto& child : module.named_children()) {
    torch::serialize::InputArchive sub;
    if (!archive.try_read(child.key(), sub)) {
      throw CheckpointError(path + ": has no " + prefix + child.key() + "; was it written for another model?");
    }
    check_archive_fits(*child.value(), sub, prefix + child.key() + ".", path);
  }
}

/// Weight files end with a trailer: this magic, then the FNV-1a hash of every
/// byte before it. LibTorch's zip reader does not check the bytes of the
/// tensors, so a flipped bit there would otherwise load as wrong weights.
constexpr std::string_view kTrailerMagic = "ULMFSUM1";
constexpr std::size_t kTrailerSize = 16;

std::string with_trailer(std::string bytes) {
  const std::uint64_t hash = util::fnv1a(bytes);
  bytes += kTrailerMagic;
  for (int i = 0; i < 8; ++i) bytes += static_cast<char>((hash >> (8 * i)) & 0xff);
  return bytes;
}

/// The archive bytes of a weight file, checked against its trailer. (A file
/// without one is an archive from before trailers existed.)
std::string checked_payload(std::string bytes, const std::string& path) {
  if (bytes.size() < kTrailerSize ||
      std::string_view(bytes).substr(bytes.size() - kTrailerSize, kTrailerMagic.size()) != kTrailerMagic) {
    return bytes;
  }
  std::uint64_t stored = 0;
  for (int i = 0; i < 8; ++i) {
    stored |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes[bytes.size() - 8 + static_cast<std::size_t>(i)]))
              << (8 * i);
  }
  bytes.resize(bytes.size() - kTrailerSize);
  if (util::fnv1a(bytes) != stored) {
    throw CheckpointError(path + ": damaged weights file (checksum mismatch); restore it or train again");
  }
  return bytes;
}

}  // namespace

void write_archive(torch::serialize::OutputArchive& archive, const std::string& path) {
  std::ostringstream bytes;
  archive.save_to(bytes);
  util::write_file_atomic(path, with_trailer(std::move(bytes).str()));
}

void save_module(torch::nn::Module& module, const std::string& path) {
  torch::serialize::OutputArchive archive;
  module.save(archive);
  write_archive(archive, path);
}

torch::serialize::InputArchive read_archive(const std::string& path) {
  if (!fs::is_regular_file(path)) throw CheckpointError(path + ": weights file not found");
  std::string bytes;
  try {
    bytes = util::read_file(path);
  } catch (const DataError& e) {
    throw CheckpointError(e.what());
  }
  std::istringstream stream(checked_payload(std::move(bytes), path));
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(stream);
  } catch (const c10::Error& e) {
    throw CheckpointError(path + ": corrupt or truncated weights file (" + first_line(e.what_without_backtrace()) + ")");
  }
  return archive;
}

void load_module_from(torch::nn::Module& module, torch::serialize::InputArchive& archive, const std::string& path,
                      const std::string& submodule) {
  try {
    torch::serialize::InputArchive sub;
    if (!submodule.empty() && !archive.try_read(submodule, sub)) {
      throw CheckpointError(path + ": holds no '" + submodule + "' weights");
    }
    auto& source = submodule.empty() ? archive : sub;
    check_archive_fits(module, source, submodule.empty() ? "" : submodule + ".", path);
    module.load(source);
  } catch (const c10::Error& e) {
    throw CheckpointError(path + ": weights do not fit this model (" + first_line(e.what_without_backtrace()) +
                          "); was it written for another architecture or vocabulary?");
  }
}

void load_module(torch::nn::Module& module, const std::string& path, const std::string& submodule) {
  auto archive = read_archive(path);
  load_module_from(module, archive, path, submodule);
}

void RunDir::check_creatable(const std::string& path, bool overwrite) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return;
  if (!fs::is_directory(path)) throw UsageError(path + ": exists and is not a folder (--out)");
  if (!fs::is_empty(path) && !overwrite) {
    throw UsageError(path + ": run directory is not empty; pass --overwrite to replace it or choose another --out");
  }
}

RunDir RunDir::create(const std::string& path, bool overwrite) {
  check_creatable(path, overwrite);
  std::error_code ec;
  if (fs::exists(path, ec) && !fs::is_empty(path)) {
    // Replace, not merge: no file of the old run may pass for the new one's.
    for (const auto& entry : fs::directory_iterator(path)) fs::remove_all(entry.path(), ec);
  }
  fs::create_directories(path, ec);
  if (ec) throw UsageError(path + ": cannot create run directory: " + ec.message() + " (--out)");
  return RunDir(path);
}

RunDir RunDir::open(const std::string& path) {
  if (!fs::is_directory(path)) throw CheckpointError(path + ": run directory not found");
  RunDir run(path);
  const std::string meta_path = run.file("meta.yaml");
  if (!fs::is_regular_file(meta_path)) throw CheckpointError(meta_path + ": missing; is " + path + " a run directory?");
  try {
    const YAML::Node n = YAML::LoadFile(meta_path);
    RunMeta& m = run.meta_;
    m.format_version = n["format_version"].as<int>();
    if (m.format_version > kRunFormatVersion) {
      throw CheckpointError(meta_path + ": written by a newer ulmfit (run format " + std::to_string(m.format_version) +
                            ", this build reads up to " + std::to_string(kRunFormatVersion) + "); upgrade ulmfit");
    }
    m.stage = n["stage"].as<std::string>();
    m.task = n["task"].as<std::string>();
    m.parent = n["parent"] ? n["parent"].as<std::string>() : "";
    m.backbone = n["backbone"].as<std::string>();
    m.vocab_size = n["vocab_size"].as<std::int64_t>();
    if (n["labels"]) m.labels = n["labels"].as<std::vector<std::string>>();
    m.libtorch = n["libtorch"] ? n["libtorch"].as<std::string>() : "";
    m.created = n["created"] ? n["created"].as<std::string>() : "";
  } catch (const YAML::Exception& e) {
    throw CheckpointError(meta_path + ": unreadable run metadata (" + e.msg + ")");
  }
  return run;
}

std::string RunDir::file(const std::string& name) const { return (fs::path(path_) / name).string(); }

void RunDir::write_config(const config::Config& cfg) const {
  util::write_file_atomic(file("config.yaml"), config::dump_config(cfg));
}

config::Config RunDir::read_config() const {
  try {
    return config::load_config(file("config.yaml"));
  } catch (const ConfigError& e) {
    throw CheckpointError(std::string(e.what()) + " (in the run directory)");
  }
}

void RunDir::write_meta(const RunMeta& meta) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "format_version" << YAML::Value << meta.format_version;
  out << YAML::Key << "stage" << YAML::Value << meta.stage;
  out << YAML::Key << "task" << YAML::Value << meta.task;
  out << YAML::Key << "parent" << YAML::Value << meta.parent;
  out << YAML::Key << "backbone" << YAML::Value << meta.backbone;
  out << YAML::Key << "vocab_size" << YAML::Value << meta.vocab_size;
  out << YAML::Key << "labels" << YAML::Value << YAML::Flow << meta.labels;
  out << YAML::Key << "libtorch" << YAML::Value << meta.libtorch;
  out << YAML::Key << "ulmfit" << YAML::Value << ULMFIT_VERSION;
  out << YAML::Key << "created" << YAML::Value << meta.created;
  out << YAML::EndMap;
  util::write_file_atomic(file("meta.yaml"), std::string(out.c_str()) + "\n");
  meta_ = meta;
}

void RunDir::append_metrics(const std::string& json_line) const {
  std::ofstream out(file("metrics.jsonl"), std::ios::app);
  out << json_line << "\n";
  if (!out) throw RuntimeFailure(file("metrics.jsonl") + ": cannot append");
}

std::uint64_t RunDir::metrics_size() const {
  std::error_code ec;
  const auto size = fs::file_size(file("metrics.jsonl"), ec);
  return ec ? 0 : static_cast<std::uint64_t>(size);
}

void RunDir::truncate_metrics(std::uint64_t size) const {
  const std::string path = file("metrics.jsonl");
  if (!fs::exists(path)) return;
  std::error_code ec;
  if (fs::file_size(path, ec) > size) fs::resize_file(path, size, ec);
  if (ec) throw RuntimeFailure(path + ": cannot cut back to the checkpoint's lines: " + ec.message());
}

void RunDir::remove_stale_temporaries() const {
  std::error_code ec;
  for (const auto& dir : {fs::path(path_), fs::path(path_) / "state"}) {
    if (!fs::is_directory(dir, ec)) continue;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      if (entry.path().filename().string().find(".tmp.") != std::string::npos) fs::remove(entry.path(), ec);
    }
  }
}

void RunDir::save_weights(torch::nn::Module& module, const std::string& name) const { save_module(module, file(name)); }

void RunDir::load_weights(torch::nn::Module& module, const std::string& name) const { load_module(module, file(name)); }

void RunDir::load_encoder_weights(torch::nn::Module& encoder, const std::string& name) const {
  load_module(encoder, file(name), "encoder");
}

}  // namespace ulmfit::pipeline
