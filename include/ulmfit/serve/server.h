#pragma once
/// `ulmfit serve`: run directories behind a JSON API over HTTP.
///   POST /v1/classify  {"texts": [...], "model": NAME?}  -> label and probabilities per text
///   POST /v1/generate  {"prompt": ..., "max_tokens", "temperature", "top_k", "top_p", "seed", "model"?}
///   GET  /v1/models, /healthz, /metrics (Prometheus text)
/// Requests to a model share one worker thread that batches them
/// (model_worker.h). SIGINT / SIGTERM drain: the listener closes, what is
/// queued is answered, then serve() returns.
#include <string>
#include <utility>
#include <vector>

#include "ulmfit/serve/requests.h"
#include "ulmfit/util/system_info.h"

namespace ulmfit::serve {

struct ServeOptions {
  std::vector<std::pair<std::string, std::string>> models;  // name, run directory; the first is the default
  std::string host = "127.0.0.1";
  int port = 8080;            // 0 = any free port
  bool public_host = false;   // required to listen on an address other than loopback
  int http_threads = 128;     // connections served at once
  std::size_t max_batch = 64;  // documents per model batch
  int max_wait_ms = 5;         // a batch that is not full waits this long for more
  Limits limits;
};

/// "NAME=RUN" or "RUN" (named after the folder) as a (name, run) pair;
/// UsageError for a name outside [A-Za-z0-9._-].
std::pair<std::string, std::string> parse_model_argument(const std::string& argument);

/// Loads every model, listens, prints "http://HOST:PORT" on stdout once
/// accepting, and serves until SIGINT / SIGTERM, then drains and returns.
/// UsageError for a non-loopback host without public_host, a port in use,
/// or duplicate names; CheckpointError for a bad run directory.
void serve(const ServeOptions& options, const util::RuntimeInfo& runtime);

}  // namespace ulmfit::serve
