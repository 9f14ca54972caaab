#include "ulmfit/util/error.h"

namespace ulmfit {

std::string at_location(const std::string& path, long line, const std::string& message) {
  if (line <= 0) return path + ": " + message;
  return path + ":" + std::to_string(line) + ": " + message;
}

}  // namespace ulmfit
