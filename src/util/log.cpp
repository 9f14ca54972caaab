#include "ulmfit/util/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace ulmfit::log {
namespace {

std::atomic<Level> g_level{Level::kInfo};
std::mutex g_mutex;

void write(Level level, const char* tag, const std::string& message) {
  if (level < g_level.load()) return;
  const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  localtime_r(&now, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%H:%M:%S", &tm);
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fprintf(stderr, "[%s %s] %s\n", stamp, tag, message.c_str());
}

}  // namespace

void set_level(Level level) { g_level = level; }
Level level() { return g_level.load(); }

void debug(const std::string& message) { write(Level::kDebug, "debug", message); }
void info(const std::string& message) { write(Level::kInfo, "info", message); }
void warn(const std::string& message) { write(Level::kWarn, "warn", message); }
void error(const std::string& message) { write(Level::kError, "error", message); }

}  // namespace ulmfit::log
