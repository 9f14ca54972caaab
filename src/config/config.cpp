#include "ulmfit/config/config.h"

namespace ulmfit::config {

std::string Config::where(const std::string& key) const {
  const auto it = locations.find(key);
  if (it == locations.end()) return key;
  return it->second + ": " + key;
}

std::string Config::check_device(const std::string& d) {
  if (d == "auto" || d == "cpu" || d == "cuda") return {};
  if (d.rfind("cuda:", 0) == 0 && d.size() > 5 &&
      d.find_first_not_of("0123456789", 5) == std::string::npos) {
    return {};
  }
  return "must be auto | cpu | cuda | cuda:N, got '" + d + "'";
}

}  // namespace ulmfit::config
