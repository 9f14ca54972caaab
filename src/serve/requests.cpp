#include "ulmfit/serve/requests.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

namespace ulmfit::serve {
namespace {

using nlohmann::json;

// Bodies are flat objects with one array of strings: anything deeper is not
// ours, and refusing it early keeps a hostile body from costing memory.
constexpr int kMaxDepth = 3;

json parse_object(std::string_view body, const std::set<std::string>& known) {
  json j;
  try {
    j = json::parse(body, [](int depth, json::parse_event_t, json&) {
      if (depth > kMaxDepth) throw RequestError(400, "", "malformed request: nested deeper than the API's fields");
      return true;
    });
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number like 1e400
    std::string what = e.what();
    const auto tag = what.find("] ");  // drop nlohmann's "[json.exception.parse_error.101] "
    throw RequestError(400, "", "malformed JSON: " + (tag == std::string::npos ? what : what.substr(tag + 2)));
  }
  if (!j.is_object()) throw RequestError(400, "", "the body must be a JSON object");
  for (const auto& [key, value] : j.items()) {
    if (!known.count(key)) throw RequestError(400, key, "unknown field '" + key + "'");
  }
  return j;
}

std::string model_name(const json& j) {
  if (!j.contains("model")) return {};
  const auto& v = j.at("model");
  if (!v.is_string() || v.get_ref<const std::string&>().empty()) {
    throw RequestError(400, "model", "model: must be a non-empty string naming a served model");
  }
  return v.get<std::string>();
}

void check_text_size(const std::string& text, const std::string& field, const Limits& limits) {
  if (text.size() > limits.max_text_bytes) {
    throw RequestError(413, field, field + ": " + std::to_string(text.size()) + " bytes, over the limit of " +
                                       std::to_string(limits.max_text_bytes));
  }
}

/// An integer field in [min, max_valid] (400 outside), or over `limit` (413).
std::int64_t integer_field(const json& j, const std::string& key, std::int64_t fallback, std::int64_t min,
                           std::int64_t limit = std::numeric_limits<std::int64_t>::max()) {
  if (!j.contains(key)) return fallback;
  const auto& v = j.at(key);
  if (!v.is_number_integer()) throw RequestError(400, key, key + ": must be an integer");
  if (v.is_number_unsigned() && v.get<std::uint64_t>() > static_cast<std::uint64_t>(limit)) {
    throw RequestError(413, key, key + ": over the limit of " + std::to_string(limit));
  }
  const auto value = v.get<std::int64_t>();
  if (value < min) throw RequestError(400, key, key + ": must be >= " + std::to_string(min));
  if (value > limit) throw RequestError(413, key, key + ": " + std::to_string(value) + ", over the limit of " + std::to_string(limit));
  return value;
}

double number_field(const json& j, const std::string& key, double fallback) {
  if (!j.contains(key)) return fallback;
  const auto& v = j.at(key);
  if (!v.is_number()) throw RequestError(400, key, key + ": must be a number");
  const double value = v.get<double>();
  if (!std::isfinite(value)) throw RequestError(400, key, key + ": must be finite");
  return value;
}

}  // namespace

ClassifyRequest parse_classify_request(std::string_view body, const Limits& limits) {
  const auto j = parse_object(body, {"model", "texts"});
  ClassifyRequest r;
  r.model = model_name(j);
  if (!j.contains("texts")) throw RequestError(400, "texts", "texts: required, a list of strings");
  const auto& texts = j.at("texts");
  if (!texts.is_array()) throw RequestError(400, "texts", "texts: must be a list of strings");
  if (texts.empty()) throw RequestError(400, "texts", "texts: must hold at least one text");
  if (texts.size() > limits.max_texts) {
    throw RequestError(413, "texts", "texts: " + std::to_string(texts.size()) + " texts, over the limit of " +
                                         std::to_string(limits.max_texts) + " per request");
  }
  r.texts.reserve(texts.size());
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const std::string field = "texts[" + std::to_string(i) + "]";
    if (!texts[i].is_string()) throw RequestError(400, field, field + ": must be a string");
    const auto& text = texts[i].get_ref<const std::string&>();
    check_text_size(text, field, limits);
    if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
      throw RequestError(400, field, field + ": is empty; there is nothing to classify");
    }
    r.texts.push_back(text);
  }
  return r;
}

GenerateRequest parse_generate_request(std::string_view body, const Limits& limits) {
  const auto j = parse_object(body, {"model", "prompt", "max_tokens", "temperature", "top_k", "top_p", "seed"});
  GenerateRequest r;
  r.model = model_name(j);
  auto& o = r.options;
  if (!j.contains("prompt")) throw RequestError(400, "prompt", "prompt: required, a string");
  if (!j.at("prompt").is_string()) throw RequestError(400, "prompt", "prompt: must be a string");
  o.prompt = j.at("prompt").get<std::string>();
  check_text_size(o.prompt, "prompt", limits);
  constexpr int kDefaultMaxTokens = 50;
  o.max_tokens = static_cast<int>(integer_field(j, "max_tokens", std::min(kDefaultMaxTokens, limits.max_generated_tokens),
                                                0, limits.max_generated_tokens));
  o.temperature = number_field(j, "temperature", o.temperature);
  if (o.temperature <= 0) throw RequestError(400, "temperature", "temperature: must be > 0");
  o.top_k = static_cast<int>(integer_field(j, "top_k", o.top_k, 0, std::numeric_limits<int>::max()));
  o.top_p = number_field(j, "top_p", o.top_p);
  if (o.top_p <= 0 || o.top_p > 1) throw RequestError(400, "top_p", "top_p: must be in (0, 1]");
  o.seed = integer_field(j, "seed", o.seed, 0);
  return r;
}

std::string error_body(int status, const std::string& field, const std::string& message) {
  json error{{"status", status}, {"message", message}};
  if (!field.empty()) error["field"] = field;
  // A message may quote a client's bytes (a JSON parse error does): never let
  // invalid UTF-8 there turn an answer into an exception.
  return json{{"error", error}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace ulmfit::serve
