#pragma once
/// Logging to stderr. Results for machines go to stdout; everything a person
/// reads while a command runs goes here.
///
///   ulmfit::log::info("tokenised " + std::to_string(n) + " documents");
#include <string>

namespace ulmfit::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kQuiet = 4 };

void set_level(Level level);
Level level();

void debug(const std::string& message);
void info(const std::string& message);
void warn(const std::string& message);
void error(const std::string& message);

}  // namespace ulmfit::log
