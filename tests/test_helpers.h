#pragma once
// Helpers shared by the tests: a fresh temporary folder per test and small
// file writers.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace ulmfit::testing {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "ulmfit";
    for (auto& c : name) {
      if (c == '/') c = '_';
    }
    path_ = fs::temp_directory_path() / ("ulmfit-test-" + name + "-" + std::to_string(::getpid()));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

inline fs::path write_file(const fs::path& path, const std::string& content) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out << content;
  return path;
}

/// Sentences of a tiny made-up language with enough repetition to train a
/// tokenizer on.
inline std::vector<std::string> tiny_documents(int count, unsigned seed = 7) {
  static const char* words[] = {"the",   "film",  "was",    "great", "terrible", "acting",
                                "plot",  "movie", "loved",  "hated", "story",    "music",
                                "actor", "scene", "boring", "fun",   "and",      "a"};
  std::mt19937 rng(seed);
  std::vector<std::string> docs;
  for (int d = 0; d < count; ++d) {
    std::string text;
    const int n = 5 + static_cast<int>(rng() % 30);
    for (int w = 0; w < n; ++w) text += std::string(w ? " " : "") + words[rng() % 18];
    docs.push_back(text + ".");
  }
  return docs;
}

/// The tiny configs' data in `dir`: general.txt, general-valid.txt and
/// domain.txt of tiny_documents, and labelled.csv with 40 separable reviews
/// ("loved"/"great" ones are pos, "hated"/"boring" ones neg).
inline void write_tiny_corpora(const fs::path& dir) {
  std::string general, valid, domain;
  for (const auto& d : tiny_documents(120, 1)) general += d + "\n";
  for (const auto& d : tiny_documents(20, 2)) valid += d + "\n";
  for (const auto& d : tiny_documents(60, 3)) domain += d + "\n";
  write_file(dir / "general.txt", general);
  write_file(dir / "general-valid.txt", valid);
  write_file(dir / "domain.txt", domain);
  std::string csv = "text,label\n";
  for (int i = 0; i < 40; ++i) {
    csv += i % 2 ? "\"the film was great, loved the music\",pos\n" : "\"the plot was boring, hated the acting\",neg\n";
  }
  write_file(dir / "labelled.csv", csv);
}

/// Another process keeping one core busy for at most `limit` (a spinning
/// child, as a user's other job would be); stops it when destroyed.
class BusyProcess {
 public:
  explicit BusyProcess(std::chrono::milliseconds limit) {
    pid_ = ::fork();
    if (pid_ == 0) {
      const auto until = std::chrono::steady_clock::now() + limit;
      volatile unsigned long spin = 0;
      while (std::chrono::steady_clock::now() < until) spin = spin + 1;
      ::_exit(0);
    }
  }
  ~BusyProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  BusyProcess(const BusyProcess&) = delete;
  BusyProcess& operator=(const BusyProcess&) = delete;
  bool started() const { return pid_ > 0; }

 private:
  pid_t pid_ = -1;
};

}  // namespace ulmfit::testing
