#pragma once
/// File helpers: crash-safe writes, whole-file reads, read-only memory maps and
/// cheap content fingerprints.
///
///   ulmfit::util::write_file_atomic(run / "meta.yaml", text);  // tmp + fsync + rename
///   ulmfit::util::MappedFile ids(cache_path);                   // zero-copy reuse
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace ulmfit::util {

namespace fs = std::filesystem;

/// Writes `data` to a temporary file beside `path`, flushes it to disk and
/// renames it over `path`, so readers see the old file or the new one, never
/// half of one. Creates missing parent folders. Throws RuntimeFailure.
void write_file_atomic(const fs::path& path, std::string_view data);

/// Streams a large file into place with the same guarantee as write_file_atomic.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(fs::path path);
  ~AtomicFileWriter();  // removes the temporary file unless commit() ran
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* data, std::size_t size);
  void commit();
  /// Puts the file in place only if nothing has that name yet; returns whether
  /// it did. Of processes racing to create one file, exactly one wins.
  bool commit_if_absent();

 private:
  void flush_and_close();
  fs::path path_;
  fs::path temp_path_;
  int fd_ = -1;
};

/// write_file_atomic that leaves an existing file alone; returns whether it wrote.
bool write_file_if_absent(const fs::path& path, std::string_view data);

/// The user's cache folder: $ULMFIT_CACHE, else $XDG_CACHE_HOME/ulmfit, else
/// ~/.cache/ulmfit.
fs::path user_cache_dir();

/// Reads a whole file; throws DataError naming the path when it cannot.
std::string read_file(const fs::path& path);

/// A read-only memory map of a whole file.
class MappedFile {
 public:
  MappedFile() = default;
  explicit MappedFile(const fs::path& path);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  void release();
  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

/// 64-bit FNV-1a, chained through `seed`. For cache keys, not for security.
std::uint64_t fnv1a(std::string_view bytes, std::uint64_t seed = 0xcbf29ce484222325ULL);

/// The time now in UTC, formatted by strftime's `format`.
std::string utc_now(const char* format);

/// Hex form of a 64-bit hash.
std::string to_hex(std::uint64_t value);

/// Size and modification time (ns) of a file, hashed: changes when the file is
/// rewritten, without reading it.
std::uint64_t stat_fingerprint(const fs::path& path, std::uint64_t seed);

}  // namespace ulmfit::util
