#pragma once
/// What `GET /metrics` reports, in Prometheus's text format: requests by
/// endpoint and status, a latency histogram per endpoint, the documents each
/// batch held, documents classified (a counter and a rate over the last
/// 10 s), tokens generated, and the documents waiting per model. Thread-safe.
#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace ulmfit::serve {

class Metrics {
 public:
  using Clock = std::chrono::steady_clock;

  /// Every answer, httplib's own (404, 413) included; endpoint is the route.
  void record_status(const std::string& endpoint, int status);
  /// Time from a request's arrival to its answer, for the API's routes.
  void record_latency(const std::string& endpoint, double seconds);
  void record_batch(std::size_t documents);
  void record_generated(std::size_t tokens);
  void set_queue_depth(const std::string& model, std::size_t documents);
  /// The Prometheus text exposition, at time `now`.
  std::string render(Clock::time_point now = Clock::now()) const;

  /// Upper bounds of the latency buckets (seconds) and of the batch-size buckets.
  static const std::vector<double>& latency_bounds();
  static const std::vector<double>& batch_bounds();

 private:
  struct Histogram {
    std::vector<std::uint64_t> counts;  // one per bound, then +Inf
    double sum = 0;
    std::uint64_t count = 0;
    void add(double value, const std::vector<double>& bounds);
  };
  static constexpr int kRateWindowSeconds = 10;

  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, std::uint64_t> requests_;
  std::map<std::string, Histogram> latency_;
  Histogram batches_;
  std::uint64_t documents_ = 0, generated_tokens_ = 0;
  std::map<std::string, std::size_t> queue_depth_;
  // Documents per whole second since start, the last kRateWindowSeconds + 1 of them.
  std::array<std::uint64_t, kRateWindowSeconds + 1> per_second_{};
  std::array<std::int64_t, kRateWindowSeconds + 1> second_of_slot_{};
  Clock::time_point start_ = Clock::now();
};

}  // namespace ulmfit::serve
