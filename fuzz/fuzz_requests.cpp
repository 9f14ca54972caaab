// libFuzzer target: arbitrary bytes as the body of /v1/classify and
// /v1/generate, parsed against tight limits. Every rejection must be a
// RequestError with a 4xx status and an error body that is valid JSON;
// anything else escaping, or a crash, is a bug. What parses must respect
// the limits it was checked against.
#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

#include "ulmfit/serve/requests.h"

namespace {

void check_rejection(const ulmfit::serve::RequestError& e) {
  if (e.status() != 400 && e.status() != 413) __builtin_trap();
  const auto body = nlohmann::json::parse(ulmfit::serve::error_body(e.status(), e.field(), e.what()));
  if (body["error"]["status"] != e.status()) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  ulmfit::serve::Limits limits;
  limits.max_texts = 4;
  limits.max_text_bytes = 64;
  limits.max_generated_tokens = 16;
  try {
    const auto r = ulmfit::serve::parse_classify_request(body, limits);
    if (r.texts.empty() || r.texts.size() > limits.max_texts) __builtin_trap();
    for (const auto& t : r.texts) {
      if (t.size() > limits.max_text_bytes) __builtin_trap();
    }
  } catch (const ulmfit::serve::RequestError& e) {
    check_rejection(e);
  }
  try {
    const auto o = ulmfit::serve::parse_generate_request(body, limits).options;
    if (o.max_tokens < 0 || o.max_tokens > limits.max_generated_tokens || !(o.temperature > 0) || !(o.top_p > 0) ||
        o.top_p > 1 || o.prompt.size() > limits.max_text_bytes) {
      __builtin_trap();
    }
  } catch (const ulmfit::serve::RequestError& e) {
    check_rejection(e);
  }
  return 0;
}
