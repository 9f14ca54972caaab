#include "model_worker.h"

#include <ATen/Parallel.h>

#include <algorithm>

#include "ulmfit/text/normalize.h"
#include "ulmfit/util/allocator.h"

namespace ulmfit::serve {

ModelWorker::ModelWorker(std::string name, pipeline::LoadedModel model, BatchingOptions options, Metrics& metrics)
    : name_(std::move(name)), model_(std::move(model)), options_(options), metrics_(metrics) {
  metrics_.set_queue_depth(name_, 0);
  thread_ = std::thread([this] { run(); });
}

ModelWorker::~ModelWorker() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void ModelWorker::admit(std::size_t documents) {
  if (queued_documents_ + documents > options_.max_queue) {
    throw RequestError(503, "", "model '" + name_ + "' has " + std::to_string(queued_documents_) +
                                    " documents waiting, its limit is " + std::to_string(options_.max_queue) +
                                    "; retry shortly");
  }
  queued_documents_ += documents;
  metrics_.set_queue_depth(name_, queued_documents_);
}

std::future<Probabilities> ModelWorker::classify(std::vector<std::string> texts, Clock::time_point deadline) {
  ClassifyJob job{std::move(texts), deadline, {}};
  auto future = job.result.get_future();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    admit(job.texts.size());
    queue_.emplace_back(std::move(job));
  }
  wake_.notify_all();
  return future;
}

std::future<std::string> ModelWorker::generate(pipeline::GenerateOptions options, Clock::time_point deadline) {
  GenerateJob job{std::move(options), deadline, {}};
  auto future = job.result.get_future();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    admit(1);
    queue_.emplace_back(std::move(job));
  }
  wake_.notify_all();
  return future;
}

void ModelWorker::run() {
  // OpenMP's thread count is per calling thread: take the process's setting.
  at::init_num_threads();
  const auto max_wait = std::chrono::milliseconds(options_.max_wait_ms);
  for (;;) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (!wait_for_work(lock)) return;
    if (auto* job = std::get_if<GenerateJob>(&queue_.front())) {
      GenerateJob taken = std::move(*job);
      queue_.pop_front();
      queued_documents_ -= 1;
      metrics_.set_queue_depth(name_, queued_documents_);
      lock.unlock();
      run_generate(taken);
      continue;
    }
    // Classify requests at the front of the queue, in arrival order.
    const auto leading_documents = [&] {
      std::size_t n = 0;
      for (const auto& j : queue_) {
        const auto* c = std::get_if<ClassifyJob>(&j);
        if (!c) break;
        n += c->texts.size();
      }
      return n;
    };
    // A batch that is not full waits up to max_wait for company. Under load
    // this is what keeps batches full: when a batch ends, its clients need
    // the cores for a moment to read their answers and send the next
    // requests, and a worker that started at once would take only the few
    // already queued, then run small, padded batches from then on.
    const bool after_large_batch = 2 * last_batch_documents_ >= options_.max_batch;
    wake_.wait_for(lock, after_large_batch ? std::max(max_wait, options_.max_wait_after_large_batch) : max_wait,
                   [&] { return stopping_ || leading_documents() >= options_.max_batch; });
    std::vector<ClassifyJob> batch;
    std::size_t documents = 0;
    while (!queue_.empty()) {
      auto* c = std::get_if<ClassifyJob>(&queue_.front());
      if (!c || (!batch.empty() && documents + c->texts.size() > options_.max_batch)) break;
      documents += c->texts.size();
      batch.push_back(std::move(*c));
      queue_.pop_front();
    }
    queued_documents_ -= documents;
    metrics_.set_queue_depth(name_, queued_documents_);
    last_batch_documents_ = documents;
    lock.unlock();
    run_batch(batch);
  }
}

bool ModelWorker::wait_for_work(std::unique_lock<std::mutex>& lock) {
  const auto has_work = [&] { return stopping_ || !queue_.empty(); };
  const auto release = [&] {
    lock.unlock();
    util::release_freed_memory();
    lock.lock();
    worked_since_release_ = false;
    last_release_ = Clock::now();
  };
  if (worked_since_release_ && Clock::now() - last_release_ >= options_.release_under_load) release();
  if (worked_since_release_ && !wake_.wait_for(lock, options_.release_when_idle, has_work)) release();
  wake_.wait(lock, has_work);
  if (queue_.empty()) return false;  // stopping, and nothing left to answer
  worked_since_release_ = true;
  return true;
}

void ModelWorker::run_batch(std::vector<ClassifyJob>& jobs) {
  const auto now = Clock::now();
  std::vector<ClassifyJob*> live;
  std::vector<std::string> texts;
  for (auto& job : jobs) {
    if (job.deadline <= now) {
      job.result.set_exception(std::make_exception_ptr(RequestError(504, "", "timed out waiting for the model")));
      continue;
    }
    live.push_back(&job);
    for (const auto& t : job.texts) texts.push_back(text::normalize_document(t, true));
  }
  if (live.empty()) return;
  try {
    const auto probs = model_.classify(texts, 0, /*mixed_lengths=*/true).contiguous();
    metrics_.record_batch(texts.size());
    const auto labels = static_cast<std::size_t>(probs.size(1));
    const float* row = probs.data_ptr<float>();
    for (auto* job : live) {
      Probabilities out;
      for (std::size_t i = 0; i < job->texts.size(); ++i, row += labels) out.emplace_back(row, row + labels);
      job->result.set_value(std::move(out));
    }
  } catch (...) {
    for (auto* job : live) job->result.set_exception(std::current_exception());
  }
}

void ModelWorker::run_generate(GenerateJob& job) {
  if (job.deadline <= Clock::now()) {
    job.result.set_exception(std::make_exception_ptr(RequestError(504, "", "timed out waiting for the model")));
    return;
  }
  try {
    auto generation = model_.generate(job.options);
    metrics_.record_generated(generation.new_tokens);
    job.result.set_value(std::move(generation.text));
  } catch (...) {
    job.result.set_exception(std::current_exception());
  }
}

}  // namespace ulmfit::serve
