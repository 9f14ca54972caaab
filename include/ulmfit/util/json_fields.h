#pragma once
/// Optional fields of a JSON object read from a file the user gave (a
/// tokenizer.json, a config.json). nlohmann's `value(key, fallback)` throws its
/// own type_error when a field has the wrong type, which would escape as a
/// crash; these read a missing or null field as the fallback and turn a field of
/// the wrong type into a CheckpointError naming the file and the field.
///
///   const bool lower = json_fields::boolean(norm, "lowercase", true, origin, "normalizer");
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "ulmfit/util/error.h"

namespace ulmfit::json_fields {

inline std::string where(const std::string& origin, const std::string& path, const char* key) {
  return origin + ": " + (path.empty() ? std::string() : path + ".") + key;
}

/// The member `key` of `obj`, or null when `obj` is not an object or lacks it.
inline const nlohmann::json& member(const nlohmann::json& obj, const char* key) {
  static const nlohmann::json null_value;
  if (!obj.is_object()) return null_value;
  const auto it = obj.find(key);
  return it == obj.end() ? null_value : *it;
}

inline std::string string(const nlohmann::json& obj, const char* key, const std::string& fallback,
                          const std::string& origin, const std::string& path = "") {
  const auto& v = member(obj, key);
  if (v.is_null()) return fallback;
  if (!v.is_string()) throw CheckpointError(where(origin, path, key) + " must be a string, not " + v.dump());
  return v.get<std::string>();
}

inline bool boolean(const nlohmann::json& obj, const char* key, bool fallback, const std::string& origin,
                    const std::string& path = "") {
  const auto& v = member(obj, key);
  if (v.is_null()) return fallback;
  if (!v.is_boolean()) throw CheckpointError(where(origin, path, key) + " must be true or false, not " + v.dump());
  return v.get<bool>();
}

/// A non-negative integer no larger than `max`.
inline std::int64_t count(const nlohmann::json& obj, const char* key, std::int64_t fallback, std::int64_t max,
                          const std::string& origin, const std::string& path = "") {
  const auto& v = member(obj, key);
  if (v.is_null()) return fallback;
  if (!v.is_number_integer() || (v.is_number_unsigned() ? v.get<std::uint64_t>() > static_cast<std::uint64_t>(max)
                                                        : v.get<std::int64_t>() < 0 || v.get<std::int64_t>() > max)) {
    throw CheckpointError(where(origin, path, key) + " must be an integer from 0 to " + std::to_string(max) + ", not " +
                          v.dump());
  }
  return v.get<std::int64_t>();
}

}  // namespace ulmfit::json_fields
