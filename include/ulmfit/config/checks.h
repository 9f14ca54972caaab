#pragma once
/// Value checks for config fields: each returns an empty string when the value
/// is fine, else what is wrong with it ("must be >= 1").
#include <functional>
#include <initializer_list>
#include <sstream>
#include <string>
#include <vector>

namespace ulmfit::config {

template <class T>
using Check = std::function<std::string(const T&)>;

template <class T>
Check<T> at_least(T low) {
  return [low](const T& v) {
    if (v >= low) return std::string();
    std::ostringstream s;
    s << "must be >= " << low << ", got " << v;
    return s.str();
  };
}

template <class T>
Check<T> in_range(T low, T high) {
  return [low, high](const T& v) {
    if (v >= low && v <= high) return std::string();
    std::ostringstream s;
    s << "must be in [" << low << ", " << high << "], got " << v;
    return s.str();
  };
}

/// Strictly positive.
inline Check<double> positive() {
  return [](const double& v) {
    if (v > 0) return std::string();
    std::ostringstream s;
    s << "must be > 0, got " << v;
    return s.str();
  };
}

/// A probability that is not 1 (dropouts, fractions).
inline Check<double> probability_below_one() {
  return [](const double& v) {
    if (v >= 0 && v < 1) return std::string();
    std::ostringstream s;
    s << "must be in [0, 1), got " << v;
    return s.str();
  };
}

inline Check<std::string> one_of(std::initializer_list<const char*> options) {
  std::vector<std::string> allowed(options.begin(), options.end());
  return [allowed](const std::string& v) {
    for (const auto& a : allowed) {
      if (v == a) return std::string();
    }
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : " | ") + a;
    return "must be one of " + list + ", got '" + v + "'";
  };
}

}  // namespace ulmfit::config
