#include "ulmfit/io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "ulmfit/util/error.h"
#include "ulmfit/util/files.h"

namespace ulmfit::io {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A header larger than this is not a weight file (the format's own reader
// refuses headers over 100 MB as well).
constexpr std::uint64_t kMaxHeaderBytes = 100ULL << 20;

struct DtypeInfo {
  const char* name;
  torch::ScalarType type;
  std::size_t bytes;
};
constexpr DtypeInfo kDtypes[] = {
    {"F32", torch::kFloat32, 4}, {"F16", torch::kFloat16, 2}, {"BF16", torch::kBFloat16, 2},
    {"F64", torch::kFloat64, 8}, {"I64", torch::kInt64, 8},   {"I32", torch::kInt32, 4},
    {"BOOL", torch::kBool, 1},
};

const DtypeInfo* find_dtype(const std::string& name) {
  for (const auto& d : kDtypes) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

const char* dtype_name(torch::ScalarType type) {
  for (const auto& d : kDtypes) {
    if (d.type == type) return d.name;
  }
  return nullptr;
}

/// A read-only memory map of a whole file, unmapped when it goes out of scope.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw CheckpointError(path + ": cannot open (" + std::strerror(errno) + ")");
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      ::close(fd);
      throw CheckpointError(path + ": cannot stat");
    }
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ > 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        ::close(fd);
        throw CheckpointError(path + ": cannot memory-map (" + std::strerror(errno) + ")");
      }
      data_ = static_cast<const std::uint8_t*>(p);
    }
    ::close(fd);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile() {
    if (data_ != nullptr) ::munmap(const_cast<std::uint8_t*>(data_), size_);
  }
  const std::uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

std::uint64_t read_le64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

std::int64_t json_size(const json& v, const std::string& where) {
  if (!v.is_number_integer() || v.get<std::int64_t>() < 0) {
    throw CheckpointError(where + " must be a non-negative integer");
  }
  return v.get<std::int64_t>();
}

}  // namespace

TensorMap read_safetensors(const std::string& path) {
  if (!fs::is_regular_file(path)) throw CheckpointError(path + ": not found");
  const MappedFile file(path);
  if (file.size() < 8) throw CheckpointError(path + ": truncated: " + std::to_string(file.size()) + " bytes, no header");
  const std::uint64_t header_bytes = read_le64(file.data());
  if (header_bytes > kMaxHeaderBytes || header_bytes > file.size() - 8) {
    throw CheckpointError(path + ": header length " + std::to_string(header_bytes) + " exceeds the file (" +
                          std::to_string(file.size()) + " bytes): truncated or not a safetensors file");
  }
  json header;
  try {
    header = json::parse(file.data() + 8, file.data() + 8 + header_bytes);
  } catch (const json::exception& e) {
    throw CheckpointError(path + ": header is not valid JSON (" + e.what() + ")");
  }
  if (!header.is_object()) throw CheckpointError(path + ": header is not a JSON object");

  const std::uint8_t* data = file.data() + 8 + header_bytes;
  const std::uint64_t data_bytes = file.size() - 8 - header_bytes;
  TensorMap out;
  std::vector<std::pair<std::int64_t, std::int64_t>> ranges;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    const std::string where = path + ": tensor " + name;
    if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") ||
        !entry.contains("data_offsets")) {
      throw CheckpointError(where + ": header entry needs dtype, shape and data_offsets");
    }
    if (!entry["dtype"].is_string()) throw CheckpointError(where + ": dtype must be a string");
    const DtypeInfo* dtype = find_dtype(entry["dtype"].get<std::string>());
    if (dtype == nullptr) {
      throw CheckpointError(where + ": dtype " + entry["dtype"].get<std::string>() +
                            " is not supported (F32, F16, BF16, F64, I64, I32, BOOL)");
    }
    if (!entry["shape"].is_array()) throw CheckpointError(where + ": shape must be a list");
    std::vector<std::int64_t> shape;
    std::uint64_t numel = 1;
    for (const auto& d : entry["shape"]) {
      shape.push_back(json_size(d, where + ": shape entry"));
      numel *= static_cast<std::uint64_t>(shape.back());
      if (numel > data_bytes) numel = data_bytes + 1;  // saturate: reported as too large below
    }
    const auto& offsets = entry["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2) {
      throw CheckpointError(where + ": data_offsets must be [begin, end]");
    }
    const auto begin = json_size(offsets[0], where + ": data_offsets");
    const auto end = json_size(offsets[1], where + ": data_offsets");
    if (begin > end || static_cast<std::uint64_t>(end) > data_bytes) {
      throw CheckpointError(where + ": bytes [" + std::to_string(begin) + ", " + std::to_string(end) +
                            ") lie outside the file's " + std::to_string(data_bytes) +
                            " data bytes: truncated or a lying header");
    }
    const std::uint64_t expected = numel * dtype->bytes;
    if (static_cast<std::uint64_t>(end - begin) != expected) {
      throw CheckpointError(where + ": header gives " + std::to_string(end - begin) + " bytes but dtype " +
                            dtype->name + " and its shape need " + std::to_string(expected));
    }
    ranges.emplace_back(begin, end);
    auto view = torch::from_blob(const_cast<std::uint8_t*>(data + begin), shape, torch::TensorOptions(dtype->type));
    const bool floating = torch::isFloatingType(dtype->type);
    // A copy, so the tensor outlives the map and is never written through it.
    out.emplace(name, floating ? view.to(torch::kFloat32, false, true)
                               : view.to(dtype->type == torch::kBool ? torch::kBool : torch::kInt64, false, true));
  }
  std::sort(ranges.begin(), ranges.end());
  for (std::size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].first < ranges[i - 1].second) throw CheckpointError(path + ": two tensors share bytes in the header");
  }
  return out;
}

void write_safetensors(const std::string& path, const TensorMap& tensors,
                       const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> bodies;
  std::int64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    auto t = tensor.detach().to(torch::kCPU);
    if (torch::isFloatingType(t.scalar_type())) t = t.to(torch::kFloat32);
    const char* dtype = dtype_name(t.scalar_type());
    if (dtype == nullptr) throw RuntimeFailure(path + ": tensor " + name + " has a dtype safetensors cannot hold here");
    t = t.contiguous();
    const auto bytes = static_cast<std::int64_t>(t.numel() * t.element_size());
    header[name] = {{"dtype", dtype}, {"shape", t.sizes().vec()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    bodies.push_back(t);
  }
  std::string text = header.dump();
  // The data starts 8-byte aligned, as the format's writers do (padding is spaces).
  while ((text.size() % 8) != 0) text.push_back(' ');
  std::string blob;
  blob.reserve(8 + text.size() + static_cast<std::size_t>(offset));
  std::uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) blob.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
  blob += text;
  for (const auto& t : bodies) {
    blob.append(static_cast<const char*>(t.data_ptr()), static_cast<std::size_t>(t.numel() * t.element_size()));
  }
  util::write_file_atomic(path, blob);
}

TensorMap read_checkpoint_dir(const std::string& dir) {
  const fs::path root(dir);
  if (fs::is_regular_file(root / "model.safetensors")) return read_safetensors((root / "model.safetensors").string());
  const auto index_path = root / "model.safetensors.index.json";
  if (fs::is_regular_file(index_path)) {
    json index;
    try {
      index = json::parse(util::read_file(index_path));
    } catch (const json::exception& e) {
      throw CheckpointError(index_path.string() + ": not valid JSON (" + e.what() + ")");
    }
    if (!index.contains("weight_map") || !index["weight_map"].is_object()) {
      throw CheckpointError(index_path.string() + ": has no weight_map object");
    }
    std::map<std::string, std::vector<std::string>> by_shard;
    for (const auto& [name, shard] : index["weight_map"].items()) {
      if (!shard.is_string()) throw CheckpointError(index_path.string() + ": weight_map." + name + " must be a file name");
      by_shard[shard.get<std::string>()].push_back(name);
    }
    TensorMap all;
    for (const auto& [shard, names] : by_shard) {
      const auto shard_path = (root / shard).string();
      auto part = read_safetensors(shard_path);
      for (const auto& name : names) {
        auto it = part.find(name);
        if (it == part.end()) {
          throw CheckpointError(shard_path + ": tensor " + name + " is listed in " + index_path.filename().string() +
                                " but missing from the shard");
        }
        all.emplace(name, std::move(it->second));
      }
    }
    return all;
  }
  if (fs::is_regular_file(root / "pytorch_model.bin")) {
    throw CheckpointError(dir + ": has only pytorch_model.bin; ulmfit reads safetensors (convert it with "
                          "transformers' save_pretrained(..., safe_serialization=True))");
  }
  throw CheckpointError(dir + ": no model.safetensors or model.safetensors.index.json");
}

}  // namespace ulmfit::io
