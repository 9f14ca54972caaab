#include "ulmfit/util/files.h"

#include <chrono>
#include <ctime>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "ulmfit/util/error.h"

namespace ulmfit::util {
namespace {

std::string errno_text() { return std::strerror(errno); }

fs::path temp_path_for(const fs::path& path) {
  return path.string() + ".tmp." + std::to_string(::getpid());
}

void sync_parent_dir(const fs::path& path) {
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

AtomicFileWriter::AtomicFileWriter(fs::path path) : path_(std::move(path)) {
  if (path_.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(path_.parent_path(), ec);
    if (ec) {
      throw RuntimeFailure(path_.parent_path().string() + ": cannot create folder: " + ec.message());
    }
  }
  temp_path_ = temp_path_for(path_);
  fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw RuntimeFailure(path_.string() + ": cannot write: " + errno_text());
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(temp_path_.c_str());
  }
}

void AtomicFileWriter::write(const void* data, std::size_t size) {
  const auto* bytes = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd_, bytes, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw RuntimeFailure(path_.string() + ": write failed: " + errno_text());
    }
    bytes += n;
    size -= static_cast<std::size_t>(n);
  }
}

void AtomicFileWriter::flush_and_close() {
  if (::fsync(fd_) != 0) throw RuntimeFailure(path_.string() + ": fsync failed: " + errno_text());
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    ::unlink(temp_path_.c_str());
    throw RuntimeFailure(path_.string() + ": close failed: " + errno_text());
  }
}

void AtomicFileWriter::commit() {
  flush_and_close();
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    const std::string why = errno_text();
    ::unlink(temp_path_.c_str());
    throw RuntimeFailure(path_.string() + ": rename failed: " + why);
  }
  sync_parent_dir(path_);
}

bool AtomicFileWriter::commit_if_absent() {
  flush_and_close();
  // link() refuses an existing name, where rename() would replace it.
  const bool created = ::link(temp_path_.c_str(), path_.c_str()) == 0;
  const std::string why = created ? "" : errno_text();
  const bool existed = !created && errno == EEXIST;
  ::unlink(temp_path_.c_str());
  if (!created && !existed) throw RuntimeFailure(path_.string() + ": cannot create: " + why);
  if (created) sync_parent_dir(path_);
  return created;
}

void write_file_atomic(const fs::path& path, std::string_view data) {
  AtomicFileWriter writer(path);
  writer.write(data.data(), data.size());
  writer.commit();
}

bool write_file_if_absent(const fs::path& path, std::string_view data) {
  AtomicFileWriter writer(path);
  writer.write(data.data(), data.size());
  return writer.commit_if_absent();
}

fs::path user_cache_dir() {
  if (const char* dir = std::getenv("ULMFIT_CACHE"); dir != nullptr && *dir) return dir;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg) return fs::path(xdg) / "ulmfit";
  if (const char* home = std::getenv("HOME"); home != nullptr && *home) return fs::path(home) / ".cache" / "ulmfit";
  return fs::temp_directory_path() / "ulmfit-cache";
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(path.string() + ": cannot open file");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) throw DataError(path.string() + ": read failed");
  return buffer.str();
}

MappedFile::MappedFile(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw DataError(path.string() + ": cannot open file: " + errno_text());
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    throw DataError(path.string() + ": cannot stat file: " + errno_text());
  }
  size_ = static_cast<std::size_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      throw DataError(path.string() + ": cannot map file: " + errno_text());
    }
    data_ = static_cast<const std::uint8_t*>(p);
  }
  ::close(fd);
}

MappedFile::~MappedFile() { release(); }

MappedFile::MappedFile(MappedFile&& other) noexcept : data_(other.data_), size_(other.size_) {
  other.data_ = nullptr;
  other.size_ = 0;
}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    release();
    data_ = other.data_;
    size_ = other.size_;
    other.data_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

void MappedFile::release() {
  if (data_ != nullptr) ::munmap(const_cast<std::uint8_t*>(data_), size_);
  data_ = nullptr;
  size_ = 0;
}

std::uint64_t fnv1a(std::string_view bytes, std::uint64_t seed) {
  std::uint64_t h = seed;
  for (const unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::string to_hex(std::uint64_t value) {
  static const char* digits = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, value >>= 4) out[static_cast<std::size_t>(i)] = digits[value & 0xf];
  return out;
}

std::uint64_t stat_fingerprint(const fs::path& path, std::uint64_t seed) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw DataError(path.string() + ": file not found");
  const std::int64_t fields[3] = {static_cast<std::int64_t>(st.st_size),
                                  static_cast<std::int64_t>(st.st_mtim.tv_sec),
                                  static_cast<std::int64_t>(st.st_mtim.tv_nsec)};
  std::uint64_t h = fnv1a(path.string(), seed);
  return fnv1a(std::string_view(reinterpret_cast<const char*>(fields), sizeof fields), h);
}

std::string utc_now(const char* format) {
  const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, format, &tm);
  return buf;
}

}  // namespace ulmfit::util
