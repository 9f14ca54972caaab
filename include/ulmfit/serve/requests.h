#pragma once
/// The JSON bodies `ulmfit serve` accepts, parsed and checked against the
/// server's limits before anything is queued. Every rejection is a
/// RequestError carrying the HTTP status and the field at fault, so a client
/// reads what to fix: 400 for malformed or wrongly typed input, 413 for input
/// over a limit. No LibTorch here, so the fuzz target builds in seconds.
///
///   auto req = serve::parse_classify_request(R"({"texts": ["a fine film"]})", limits);
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "ulmfit/pipeline/generate_options.h"

namespace ulmfit::serve {

struct Limits {
  std::size_t max_body_bytes = 1 << 20;  // request body
  std::size_t max_texts = 256;           // texts per /v1/classify request
  std::size_t max_text_bytes = 100000;   // bytes per text or prompt
  int max_generated_tokens = 512;        // max_tokens of /v1/generate
  int timeout_ms = 30000;                // queued + running, per request
  std::size_t max_queue = 1024;          // documents waiting per model; past it 503
};

class RequestError : public std::runtime_error {
 public:
  RequestError(int status, std::string field, const std::string& message)
      : std::runtime_error(message), status_(status), field_(std::move(field)) {}
  int status() const { return status_; }
  /// The JSON path at fault ("texts[2]", "max_tokens"); empty for the body as a whole.
  const std::string& field() const { return field_; }

 private:
  int status_;
  std::string field_;
};

struct ClassifyRequest {
  std::string model;  // empty = the server's first model
  std::vector<std::string> texts;
};

struct GenerateRequest {
  std::string model;
  /// Without "max_tokens", 50 (or the server's limit when that is lower).
  pipeline::GenerateOptions options;
};

ClassifyRequest parse_classify_request(std::string_view body, const Limits& limits);
GenerateRequest parse_generate_request(std::string_view body, const Limits& limits);

/// {"error": {"status": 400, "field": "texts[2]", "message": "..."}}
std::string error_body(int status, const std::string& field, const std::string& message);

}  // namespace ulmfit::serve
