#include "ulmfit/serve/server.h"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <thread>

#include "model_worker.h"
#include "ulmfit/serve/metrics.h"
#include "ulmfit/util/error.h"
#include "ulmfit/util/interrupt.h"
#include "ulmfit/util/log.h"

namespace ulmfit::serve {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

const char* kRoutes[] = {"/v1/classify", "/v1/generate", "/v1/models", "/healthz", "/metrics"};

/// The route a request counts under in /metrics: arbitrary paths would make
/// the label set grow without bound.
std::string route_of(const std::string& path) {
  for (const char* r : kRoutes) {
    if (path == r) return r;
  }
  return "other";
}

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& field, const std::string& message) {
  res.status = status;
  if (status == 503) res.set_header("Retry-After", "1");
  res.set_content(error_body(status, field, message), "application/json");
}

class Service {
 public:
  Service(const ServeOptions& options, const util::RuntimeInfo& runtime) : options_(options) {
    for (const auto& [name, run] : options.models) {
      if (workers_.count(name)) throw UsageError("serve: two models are named '" + name + "'");
      pipeline::LoadedModel model(run, runtime);
      log::info("serve: model '" + name + "' from " + run + " (" + model.meta().task + ", " + model.meta().backbone + ")");
      BatchingOptions batching{options.max_batch, options.max_wait_ms, options.limits.max_queue};
      workers_.emplace(name, std::make_unique<ModelWorker>(name, std::move(model), batching, metrics_));
      order_.push_back(name);
    }
  }

  void install(httplib::Server& server) {
    server.Get("/healthz", [](const httplib::Request&, httplib::Response& res) { send_json(res, 200, {{"status", "ok"}}); });
    server.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) { send_json(res, 200, models()); });
    server.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(metrics_.render(), "text/plain; version=0.0.4");
    });
    server.Post("/v1/classify", [this](const httplib::Request& req, httplib::Response& res) {
      answer(req, res, [this](const httplib::Request& r, httplib::Response& s) { classify(r, s); });
    });
    server.Post("/v1/generate", [this](const httplib::Request& req, httplib::Response& res) {
      answer(req, res, [this](const httplib::Request& r, httplib::Response& s) { generate(r, s); });
    });
    // httplib's own answers (404, 413 over the body limit, 400 for broken
    // HTTP) get the same JSON error shape as ours.
    server.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
      std::string message = "the request could not be served (HTTP " + std::to_string(res.status) + ")";
      if (res.status == 400) message = "malformed HTTP request";
      if (res.status == 404) message = "no such endpoint: " + req.method + " " + req.path;
      if (res.status == 413) message = "request body over the limit of " + std::to_string(options_.limits.max_body_bytes) + " bytes";
      res.set_content(error_body(res.status, "", message), "application/json");
      return httplib::Server::HandlerResponse::Handled;
    }));
    server.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
      send_error(res, 500, "", "internal error");
    });
    server.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      metrics_.record_status(route_of(req.path), res.status);
    });
  }

 private:
  /// Runs a POST handler and maps what it throws to an HTTP error.
  template <class Handler>
  void answer(const httplib::Request& req, httplib::Response& res, Handler handler) {
    const auto start = Clock::now();
    try {
      handler(req, res);
    } catch (const RequestError& e) {
      send_error(res, e.status(), e.field(), e.what());
    } catch (const BadInputError& e) {
      send_error(res, 400, "", e.what());
    } catch (const std::exception& e) {
      std::string message = e.what();
      log::warn("serve: " + req.path + ": " + message.substr(0, message.find('\n')));
      send_error(res, 500, "", "internal error: " + message.substr(0, message.find('\n')));
    }
    metrics_.record_latency(req.path, std::chrono::duration<double>(Clock::now() - start).count());
  }

  ModelWorker& worker(const std::string& name, const std::string& task) {
    const std::string& chosen = name.empty() ? order_.front() : name;
    auto it = workers_.find(chosen);
    if (it == workers_.end()) throw RequestError(400, "model", "model: no model named '" + chosen + "' is served");
    const auto& meta = it->second->model().meta();
    if (task == "classifier" && meta.task != "classifier") {
      throw RequestError(400, "model", "model: '" + chosen + "' is a language model; /v1/classify needs a classifier");
    }
    if (task == "generate" && !it->second->model().can_generate()) {
      throw RequestError(400, "model", "model: '" + chosen + "' cannot generate text (" +
                                           (meta.task == "lm" ? "a masked language model" : "a classifier") + ")");
    }
    return *it->second;
  }

  Clock::time_point deadline() const {
    return Clock::now() + std::chrono::milliseconds(options_.limits.timeout_ms);
  }

  template <class T>
  T wait_for(std::future<T>& result, Clock::time_point until) {
    if (result.wait_until(until) != std::future_status::ready) {
      throw RequestError(504, "", "no answer within " + std::to_string(options_.limits.timeout_ms) + " ms");
    }
    return result.get();
  }

  void classify(const httplib::Request& req, httplib::Response& res) {
    auto request = parse_classify_request(req.body, options_.limits);
    auto& w = worker(request.model, "classifier");
    const auto until = deadline();
    auto future = w.classify(std::move(request.texts), until);
    const auto probabilities = wait_for(future, until);
    const auto& labels = w.model().meta().labels;
    json results = json::array();
    for (const auto& p : probabilities) {
      json by_label = json::object();
      std::size_t best = 0;
      for (std::size_t c = 0; c < labels.size(); ++c) {
        by_label[labels[c]] = static_cast<double>(p[c]);
        if (p[c] > p[best]) best = c;
      }
      results.push_back({{"label", labels[best]}, {"probabilities", by_label}});
    }
    send_json(res, 200, {{"model", w.name()}, {"results", results}});
  }

  void generate(const httplib::Request& req, httplib::Response& res) {
    const auto request = parse_generate_request(req.body, options_.limits);
    auto& w = worker(request.model, "generate");
    const auto until = deadline();
    auto future = w.generate(request.options, until);
    send_json(res, 200, {{"model", w.name()}, {"text", wait_for(future, until)}});
  }

  json models() const {
    json list = json::array();
    for (const auto& name : order_) {
      const auto& model = workers_.at(name)->model();
      const auto& meta = model.meta();
      list.push_back({{"name", name},
                      {"default", name == order_.front()},
                      {"task", meta.task},
                      {"backbone", meta.backbone},
                      {"labels", meta.labels},
                      {"vocab_size", meta.vocab_size},
                      {"can_generate", model.can_generate()},
                      {"run", model.run().path()},
                      {"run_format", meta.format_version}});
    }
    return {{"models", list}};
  }

  const ServeOptions& options_;
  Metrics metrics_;
  std::map<std::string, std::unique_ptr<ModelWorker>> workers_;
  std::vector<std::string> order_;
};

}  // namespace

std::pair<std::string, std::string> parse_model_argument(const std::string& argument) {
  const auto eq = argument.find('=');
  std::string name, run;
  if (eq == std::string::npos) {
    run = argument;
    name = std::filesystem::path(argument).lexically_normal().filename().string();
    if (name.empty()) name = std::filesystem::path(argument).lexically_normal().parent_path().filename().string();
  } else {
    name = argument.substr(0, eq);
    run = argument.substr(eq + 1);
  }
  const bool valid = !name.empty() && name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                             "0123456789._-") == std::string::npos;
  if (!valid) throw UsageError("--model " + argument + ": a model name takes letters, digits, '.', '_' and '-'");
  if (run.empty()) throw UsageError("--model " + argument + ": names no run directory");
  return {name, run};
}

void serve(const ServeOptions& options, const util::RuntimeInfo& runtime) {
  if (options.models.empty()) throw UsageError("serve: give at least one --model");
  if (!is_loopback(options.host) && !options.public_host) {
    throw UsageError("serve: --host " + options.host +
                     " is reachable from other machines; add --public to listen there on purpose");
  }
  if (options.port < 0 || options.port > 65535) throw UsageError("serve: --port must be in 0..65535");
  if (options.http_threads < 1) throw UsageError("serve: --http-threads must be >= 1");
  if (options.max_batch < 1) throw UsageError("serve: --max-batch must be >= 1");
  if (options.max_wait_ms < 0 || options.limits.timeout_ms < 1) {
    throw UsageError("serve: --max-wait-ms must be >= 0 and --timeout-ms >= 1");
  }

  // Before loading: a signal while loading is a request to stop too.
  util::InterruptScope interrupts("interrupt: no new connections; answering what is queued, then exiting "
                                  "(interrupt again to exit at once)");
  Service service(options, runtime);
  httplib::Server server;
  const int http_threads = options.http_threads;
  server.new_task_queue = [http_threads] { return new httplib::ThreadPool(static_cast<std::size_t>(http_threads)); };
  server.set_payload_max_length(options.limits.max_body_bytes);
  server.set_keep_alive_max_count(100000);
  server.set_keep_alive_timeout(2);  // bounds how long a drain waits on idle connections
  service.install(server);

  const int port = options.port == 0 ? server.bind_to_any_port(options.host) : (server.bind_to_port(options.host, options.port) ? options.port : -1);
  if (port < 0) throw UsageError("serve: cannot listen on " + options.host + ":" + std::to_string(options.port) + " (in use, or not an address of this machine)");

  std::atomic<bool> done{false};
  std::thread watcher([&] {
    while (!done) {
      if (util::interrupt_requested()) {
        server.stop();
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  const std::string address = "http://" + (options.host.find(':') != std::string::npos ? "[" + options.host + "]" : options.host) + ":" + std::to_string(port);
  log::info("serve: listening on " + address);
  std::cout << address << std::endl;
  const bool clean = server.listen_after_bind();
  done = true;
  watcher.join();
  if (!clean && !util::interrupt_requested()) throw RuntimeFailure("serve: the listener stopped unexpectedly");
  log::info("serve: drained; stopped");
}

}  // namespace ulmfit::serve
