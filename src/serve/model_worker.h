#pragma once
// One served model and the thread that runs it: requests queue here, and the
// worker takes every classify request waiting (up to max_batch documents,
// after waiting at most max_wait for more when the batch is not full)
// and runs them as one batch, which LoadedModel::classify sorts by length.
// A generate request runs alone. One thread per model keeps the model's
// forward passes from competing with each other for the cores.
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "ulmfit/pipeline/loaded_model.h"
#include "ulmfit/serve/metrics.h"
#include "ulmfit/serve/requests.h"

namespace ulmfit::serve {

struct BatchingOptions {
  std::size_t max_batch = 64;  // documents per batch
  int max_wait_ms = 5;         // how long a batch that is not full waits for more
  std::size_t max_queue = 1024;
  // How long a batch that is not full waits after a batch of at least half
  // max_batch, whose clients come back within milliseconds. With max_wait
  // alone, 64 clients split into two cohorts that alternate in batches of
  // about 32 (MiniLM, 2 cores: 33.7 documents per batch, 21.3 requests/s;
  // with a 50 ms wait, 62.2 and 22.5).
  std::chrono::milliseconds max_wait_after_large_batch{50};
  // Freed activations go back to the kernel once the worker has been idle
  // this long after work, and at most this often under sustained load.
  std::chrono::milliseconds release_when_idle{500};
  std::chrono::milliseconds release_under_load{10000};
};

/// Probabilities per text, in the request's order.
using Probabilities = std::vector<std::vector<float>>;

class ModelWorker {
 public:
  using Clock = std::chrono::steady_clock;
  ModelWorker(std::string name, pipeline::LoadedModel model, BatchingOptions options, Metrics& metrics);
  /// Finishes what is queued, then stops the thread.
  ~ModelWorker();
  ModelWorker(const ModelWorker&) = delete;
  ModelWorker& operator=(const ModelWorker&) = delete;

  const std::string& name() const { return name_; }
  const pipeline::LoadedModel& model() const { return model_; }

  /// RequestError(503) when the queue is full. A request still waiting at
  /// `deadline` is dropped with RequestError(504) rather than run.
  std::future<Probabilities> classify(std::vector<std::string> texts, Clock::time_point deadline);
  std::future<std::string> generate(pipeline::GenerateOptions options, Clock::time_point deadline);

 private:
  struct ClassifyJob {
    std::vector<std::string> texts;
    Clock::time_point deadline;
    std::promise<Probabilities> result;
  };
  struct GenerateJob {
    pipeline::GenerateOptions options;
    Clock::time_point deadline;
    std::promise<std::string> result;
  };
  using Job = std::variant<ClassifyJob, GenerateJob>;

  void run();
  /// Waits for work; false when stopping with nothing left. Gives freed
  /// memory back when idle after work, or when due under load.
  bool wait_for_work(std::unique_lock<std::mutex>& lock);
  void run_batch(std::vector<ClassifyJob>& jobs);
  void run_generate(GenerateJob& job);
  void admit(std::size_t documents);  // under mutex_: 503 past max_queue

  std::string name_;
  pipeline::LoadedModel model_;
  BatchingOptions options_;
  Metrics& metrics_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> queue_;
  std::size_t queued_documents_ = 0;
  bool stopping_ = false;
  bool worked_since_release_ = false;            // worker thread only
  std::size_t last_batch_documents_ = 0;         // worker thread only
  Clock::time_point last_release_ = Clock::now();  // worker thread only
  std::thread thread_;
};

}  // namespace ulmfit::serve
