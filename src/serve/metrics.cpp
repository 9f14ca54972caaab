#include "ulmfit/serve/metrics.h"

#include <iomanip>
#include <sstream>

namespace ulmfit::serve {
namespace {

std::string number(double x) {
  std::ostringstream s;
  s << std::setprecision(10) << x;
  return s.str();
}

}  // namespace

const std::vector<double>& Metrics::latency_bounds() {
  static const std::vector<double> bounds{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
  return bounds;
}

const std::vector<double>& Metrics::batch_bounds() {
  static const std::vector<double> bounds{1, 2, 4, 8, 16, 32, 64, 128, 256};
  return bounds;
}

void Metrics::Histogram::add(double value, const std::vector<double>& bounds) {
  if (counts.empty()) counts.assign(bounds.size() + 1, 0);
  std::size_t b = 0;
  while (b < bounds.size() && value > bounds[b]) ++b;
  ++counts[b];
  sum += value;
  ++count;
}

void Metrics::record_status(const std::string& endpoint, int status) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++requests_[{endpoint, status}];
}

void Metrics::record_latency(const std::string& endpoint, double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  latency_[endpoint].add(seconds, latency_bounds());
}

void Metrics::record_batch(std::size_t documents) {
  const auto second = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - start_).count();
  std::lock_guard<std::mutex> lock(mutex_);
  batches_.add(static_cast<double>(documents), batch_bounds());
  documents_ += documents;
  const auto slot = static_cast<std::size_t>(second % static_cast<std::int64_t>(per_second_.size()));
  if (second_of_slot_[slot] != second) {
    second_of_slot_[slot] = second;
    per_second_[slot] = 0;
  }
  per_second_[slot] += documents;
}

void Metrics::record_generated(std::size_t tokens) {
  std::lock_guard<std::mutex> lock(mutex_);
  generated_tokens_ += tokens;
}

void Metrics::set_queue_depth(const std::string& model, std::size_t documents) {
  std::lock_guard<std::mutex> lock(mutex_);
  queue_depth_[model] = documents;
}

std::string Metrics::render(Clock::time_point now) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::ostringstream out;
  out << "# HELP ulmfit_requests_total HTTP requests answered, by endpoint and status.\n"
         "# TYPE ulmfit_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    out << "ulmfit_requests_total{endpoint=\"" << key.first << "\",status=\"" << key.second << "\"} " << n << "\n";
  }
  const auto histogram = [&out](const std::string& name, const std::string& labels, const Histogram& h,
                                const std::vector<double>& bounds) {
    const std::string sep = labels.empty() ? "" : ",";
    std::uint64_t cumulative = 0;
    for (std::size_t b = 0; b <= bounds.size(); ++b) {
      cumulative += h.counts.empty() ? 0 : h.counts[b];
      out << name << "_bucket{" << labels << sep << "le=\"" << (b < bounds.size() ? number(bounds[b]) : "+Inf")
          << "\"} " << cumulative << "\n";
    }
    const std::string braces = labels.empty() ? "" : "{" + labels + "}";
    out << name << "_sum" << braces << " " << number(h.sum) << "\n" << name << "_count" << braces << " " << h.count << "\n";
  };
  out << "# HELP ulmfit_request_duration_seconds Time from a request's arrival to its answer.\n"
         "# TYPE ulmfit_request_duration_seconds histogram\n";
  for (const auto& [endpoint, h] : latency_) {
    histogram("ulmfit_request_duration_seconds", "endpoint=\"" + endpoint + "\"", h, latency_bounds());
  }
  out << "# HELP ulmfit_batch_documents Documents in each batch the model ran.\n"
         "# TYPE ulmfit_batch_documents histogram\n";
  histogram("ulmfit_batch_documents", "", batches_, batch_bounds());
  out << "# HELP ulmfit_documents_total Documents classified.\n# TYPE ulmfit_documents_total counter\n"
      << "ulmfit_documents_total " << documents_ << "\n";
  // The last kRateWindowSeconds whole seconds, not the current partial one.
  const auto second = std::chrono::duration_cast<std::chrono::seconds>(now - start_).count();
  std::uint64_t recent = 0;
  for (std::size_t slot = 0; slot < per_second_.size(); ++slot) {
    const auto age = second - second_of_slot_[slot];
    if (age >= 1 && age <= kRateWindowSeconds) recent += per_second_[slot];
  }
  out << "# HELP ulmfit_documents_per_second Documents classified per second over the last " << kRateWindowSeconds
      << " s.\n# TYPE ulmfit_documents_per_second gauge\nulmfit_documents_per_second "
      << number(static_cast<double>(recent) / kRateWindowSeconds) << "\n";
  out << "# HELP ulmfit_generated_tokens_total Tokens generated.\n# TYPE ulmfit_generated_tokens_total counter\n"
      << "ulmfit_generated_tokens_total " << generated_tokens_ << "\n";
  out << "# HELP ulmfit_queue_documents Documents waiting for a model.\n# TYPE ulmfit_queue_documents gauge\n";
  for (const auto& [model, n] : queue_depth_) out << "ulmfit_queue_documents{model=\"" << model << "\"} " << n << "\n";
  return out.str();
}

}  // namespace ulmfit::serve
