#include "ulmfit/dist/process_group.h"

#include <signal.h>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/torch.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "backends.h"
#include "ulmfit/nn/dropout.h"
#include "ulmfit/util/error.h"
#include "ulmfit/util/log.h"

namespace ulmfit::dist {
namespace {

using Clock = std::chrono::steady_clock;

/// Gradients per all-reduce: 25 MB of fp32, as PyTorch's DDP buckets them.
constexpr std::int64_t kBucketElements = 25 * 1024 * 1024 / 4;

/// How long a rank waits for rank 0's main_first work (tokenising a corpus).
constexpr std::chrono::hours kMainFirstWait{24};

int env_int(const char* name, int min_value, int max_value) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') {
    throw UsageError(std::string(name) + ": not set, but WORLD_SIZE is (set RANK, WORLD_SIZE, MASTER_ADDR and "
                                         "MASTER_PORT as torchrun does, or use ulmfit launch)");
  }
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (*end != '\0' || value < min_value || value > max_value) {
    throw UsageError(std::string(name) + ": '" + text + "' is not an integer in [" + std::to_string(min_value) +
                     ", " + std::to_string(max_value) + "]");
  }
  return static_cast<int>(value);
}

/// Seconds a collective may wait for the other ranks before it fails:
/// $ULMFIT_DIST_TIMEOUT, else 600 (long enough for rank 0 to write a checkpoint).
std::chrono::milliseconds collective_timeout() {
  const char* text = std::getenv("ULMFIT_DIST_TIMEOUT");
  if (text == nullptr || *text == '\0') return std::chrono::seconds(600);
  char* end = nullptr;
  const double seconds = std::strtod(text, &end);
  if (*end != '\0' || !(seconds > 0)) {
    throw UsageError(std::string("ULMFIT_DIST_TIMEOUT: '") + text + "' is not a positive number of seconds");
  }
  return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000));
}

class SingleProcess final : public Group {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string describe() const override { return "one process"; }
  void all_reduce_sum(torch::Tensor&) override {}
  void broadcast(torch::Tensor&, int) override {}
  std::vector<torch::Tensor> all_gather(const torch::Tensor& tensor) override { return {tensor}; }
  void barrier() override {}
  void main_first(const std::string&, const std::function<void()>& work) override { work(); }
};

/// Whether process `pid` on this machine has ended (gone, or a zombie).
bool process_ended(long pid) {
  if (::kill(static_cast<pid_t>(pid), 0) != 0) return errno == ESRCH;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  const auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
}

std::string this_host() {
  char name[256] = {};
  ::gethostname(name, sizeof name - 1);
  return name;
}

class C10dGroup final : public Group {
 public:
  C10dGroup(const Launch& launch, const torch::Device& device) : launch_(launch), device_(device) {
    const auto timeout = collective_timeout();
    c10d::TCPStoreOptions options;
    options.port = static_cast<std::uint16_t>(launch.master_port);
    options.isServer = launch.rank == 0;
    options.numWorkers = launch.world_size;
    options.waitWorkers = true;
    options.timeout = timeout;
    try {
      store_ = c10::make_intrusive<c10d::TCPStore>(launch.master_addr, options);
    } catch (const std::exception& e) {
      throw RuntimeFailure("rank " + std::to_string(launch.rank) + ": could not reach the group's store at " +
                           launch.master_addr + ":" + std::to_string(launch.master_port) + ": " + first_line(e));
    }
    publish_identity();
    const bool loopback = launch.master_addr == "localhost" || launch.master_addr.rfind("127.", 0) == 0;
    if (device.is_cuda()) {
      backend_name_ = "nccl";
      backend_ = detail::make_nccl(store_, launch.rank, launch.world_size, timeout);
    } else {
      backend_name_ = "gloo";
      backend_ = detail::make_gloo(store_, launch.rank, launch.world_size, timeout,
                                   loopback ? "127.0.0.1" : this_host());
    }
  }

  int rank() const override { return launch_.rank; }
  int size() const override { return launch_.world_size; }
  std::string describe() const override {
    return "rank " + std::to_string(rank()) + " of " + std::to_string(size()) + " (" + backend_name_ + ")";
  }

  void all_reduce_sum(torch::Tensor& tensor) override {
    std::vector<torch::Tensor> tensors{staged(tensor)};
    run("an all-reduce", [&] { backend_->allreduce(tensors)->wait(); });
    unstage(tensors[0], tensor);
  }

  void broadcast(torch::Tensor& tensor, int root) override {
    std::vector<torch::Tensor> tensors{staged(tensor)};
    c10d::BroadcastOptions options;
    options.rootRank = root;
    run("a broadcast", [&] { backend_->broadcast(tensors, options)->wait(); });
    unstage(tensors[0], tensor);
  }

  std::vector<torch::Tensor> all_gather(const torch::Tensor& tensor) override {
    std::vector<torch::Tensor> in{staged(tensor).contiguous()};
    std::vector<std::vector<torch::Tensor>> out(1);
    for (int r = 0; r < size(); ++r) out[0].push_back(torch::empty_like(in[0]));
    run("an all-gather", [&] { backend_->allgather(out, in)->wait(); });
    for (auto& t : out[0]) t = t.to(tensor.device());
    return out[0];
  }

  void barrier() override {
    run("a barrier", [&] { backend_->barrier()->wait(); });
  }

  void main_first(const std::string& what, const std::function<void()>& work) override {
    const std::string key = "ulmfit/main_first/" + std::to_string(main_first_calls_++);
    if (is_main()) {
      try {
        work();
      } catch (const std::exception& e) {
        store_->set(key, bytes("failed: " + first_line(e)));
        throw;
      }
      store_->set(key, bytes("done"));
      return;
    }
    run("the wait for rank 0 (" + what + ")", [&] { store_->wait({key}, std::chrono::duration_cast<std::chrono::milliseconds>(kMainFirstWait)); });
    const auto answer = store_->get(key);
    const std::string text(answer.begin(), answer.end());
    if (text != "done") throw RuntimeFailure("rank " + std::to_string(rank()) + ": rank 0 " + text + " (" + what + ")");
    work();
  }

 private:
  static std::vector<std::uint8_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }

  /// NCCL moves only CUDA tensors: a CPU one (a step's totals, a generator's
  /// state) travels through the rank's GPU. Gloo takes either as it is.
  torch::Tensor staged(const torch::Tensor& tensor) const {
    return device_.is_cuda() && tensor.is_cpu() ? tensor.to(device_) : tensor;
  }
  static void unstage(const torch::Tensor& moved, torch::Tensor& tensor) {
    if (!moved.is_same(tensor)) tensor.copy_(moved);
  }
  static std::string first_line(const std::exception& e) {
    std::string text = e.what();
    const auto nl = text.find('\n');
    return nl == std::string::npos ? text : text.substr(0, nl);
  }

  /// Every rank's host and pid, so a failed collective can name the rank that
  /// went away. Read once at the start: rank 0 hosts the store and may be it.
  void publish_identity() {
    store_->set("ulmfit/rank/" + std::to_string(launch_.rank), bytes(this_host() + " " + std::to_string(::getpid())));
    for (int r = 0; r < launch_.world_size; ++r) {
      const auto value = store_->get("ulmfit/rank/" + std::to_string(r));  // waits for it
      std::istringstream in(std::string(value.begin(), value.end()));
      Peer peer;
      in >> peer.host >> peer.pid;
      peers_.push_back(peer);
    }
  }

  /// Which ranks are known to be gone: those on this machine whose process ended.
  std::string lost_ranks() const {
    const std::string host = this_host();
    std::string lost;
    for (int r = 0; r < size(); ++r) {
      if (r == rank() || peers_[static_cast<std::size_t>(r)].host != host) continue;
      if (process_ended(peers_[static_cast<std::size_t>(r)].pid)) {
        lost += (lost.empty() ? "" : ", ") + std::to_string(r) + " (pid " +
                std::to_string(peers_[static_cast<std::size_t>(r)].pid) + ")";
      }
    }
    return lost;
  }

  template <class F>
  void run(const std::string& what, F&& call) {
    try {
      call();
    } catch (const std::exception& e) {
      // Give a killed peer's process a moment to be reaped or marked a zombie.
      std::string lost = lost_ranks();
      for (int i = 0; i < 20 && lost.empty(); ++i) {
        ::usleep(50'000);
        lost = lost_ranks();
      }
      const std::string who = lost.empty() ? "lost contact with another rank"
                                           : std::string("rank") + (lost.find(',') == std::string::npos ? " " : "s ") +
                                                 lost + " exited";
      throw RuntimeFailure("rank " + std::to_string(rank()) + ": " + who + " during a " + what + " (" +
                           backend_name_ + ": " + first_line(e) + ")");
    }
  }

  struct Peer {
    std::string host;
    long pid = 0;
  };
  Launch launch_;
  torch::Device device_;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::Backend> backend_;
  std::string backend_name_;
  std::vector<Peer> peers_;
  int main_first_calls_ = 0;
};

std::unique_ptr<Group>& current() {
  static std::unique_ptr<Group> group = std::make_unique<SingleProcess>();
  return group;
}

double g_sync_seconds = 0;
std::int64_t g_sync_calls = 0;

class AllReduceSumFunction : public torch::autograd::Function<AllReduceSumFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext*, const torch::Tensor& input) {
    auto out = input.clone();
    world().all_reduce_sum(out);
    return out;
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext*, torch::autograd::tensor_list grads) {
    auto grad = grads[0].contiguous().clone();
    world().all_reduce_sum(grad);
    return {grad};
  }
};

}  // namespace

std::optional<Launch> launch_from_environment() {
  const char* world = std::getenv("WORLD_SIZE");
  if (world == nullptr || *world == '\0') return std::nullopt;
  Launch launch;
  launch.world_size = env_int("WORLD_SIZE", 1, 1 << 16);
  launch.rank = env_int("RANK", 0, launch.world_size - 1);
  const char* local = std::getenv("LOCAL_RANK");
  launch.local_rank = local != nullptr && *local != '\0' ? env_int("LOCAL_RANK", 0, launch.world_size - 1) : 0;
  if (launch.world_size > 1) {
    const char* addr = std::getenv("MASTER_ADDR");
    if (addr == nullptr || *addr == '\0') throw UsageError("MASTER_ADDR: not set, but WORLD_SIZE is " + std::string(world));
    launch.master_addr = addr;
    launch.master_port = env_int("MASTER_PORT", 1, 65535);
  }
  return launch;
}

std::string Group::broadcast_string(const std::string& text, int root) {
  if (!distributed()) return text;
  auto length = torch::tensor({static_cast<std::int64_t>(text.size())}, torch::kInt64);
  broadcast(length, root);
  auto data = torch::zeros({length.item<std::int64_t>()}, torch::kUInt8);
  if (rank() == root) std::memcpy(data.data_ptr(), text.data(), text.size());
  broadcast(data, root);
  return std::string(static_cast<const char*>(data.data_ptr()), static_cast<std::size_t>(data.numel()));
}

void Group::check_same_everywhere(const std::string& what, const std::string& text) {
  if (!distributed()) return;
  const auto hash = static_cast<std::int64_t>(std::hash<std::string>{}(text));
  const auto all = all_gather(torch::tensor({hash}, torch::kInt64));
  for (int r = 1; r < size(); ++r) {
    if (all[static_cast<std::size_t>(r)].item<std::int64_t>() != all[0].item<std::int64_t>()) {
      throw RuntimeFailure("rank " + std::to_string(r) + " has a different " + what + " from rank 0's; every rank "
                           "must run the same command with the same files");
    }
  }
}

Group& world() { return *current(); }

void join(const Launch& launch, const torch::Device& device) {
  if (launch.world_size <= 1) {
    current() = std::make_unique<SingleProcess>();
    return;
  }
  current() = std::make_unique<C10dGroup>(launch, device);
  nn::set_batch_shard(launch.rank, launch.world_size);
  log::info("distributed: " + world().describe() + " via " + launch.master_addr + ":" +
            std::to_string(launch.master_port));
}

void leave() {
  current() = std::make_unique<SingleProcess>();
  nn::set_batch_shard(0, 1);
}

torch::Tensor differentiable_all_reduce_sum(const torch::Tensor& tensor) {
  if (!world().distributed()) return tensor;
  return AllReduceSumFunction::apply(tensor);
}

StepTotals average_gradients(const std::vector<torch::Tensor>& params, double weight, double loss, double items,
                             bool finite, bool interrupt) {
  Group& group = world();
  if (!group.distributed()) return {loss, items, finite, interrupt};
  const auto start = Clock::now();
  // The step's figures first (in double: token counts and loss sums), so each
  // rank knows the global weight before scaling its gradients.
  auto totals = torch::tensor({finite ? weight : 0.0, finite ? weight * loss : 0.0, items, finite ? 0.0 : 1.0,
                               interrupt ? 1.0 : 0.0},
                              torch::kFloat64);
  group.all_reduce_sum(totals);
  const auto t = totals.accessor<double, 1>();
  StepTotals out{t[0] > 0 ? t[1] / t[0] : 0.0, t[2], t[3] == 0, t[4] > 0};
  if (out.finite && !params.empty()) {
    // Buckets of about kBucketBytes: few collectives, and no copy of a whole
    // large model's gradients at once.
    const double scale = weight / t[0];
    std::size_t first = 0;
    while (first < params.size()) {
      std::size_t last = first;
      std::int64_t elements = 0;
      std::vector<torch::Tensor> pieces;
      while (last < params.size() && (pieces.empty() || elements + params[last].numel() <= kBucketElements)) {
        const auto& p = params[last];
        const auto& g = p.grad();
        pieces.push_back(g.defined() ? (g.to(torch::kFloat) * scale).reshape(-1)
                                     : torch::zeros({p.numel()}, p.options().dtype(torch::kFloat)));
        elements += p.numel();
        ++last;
      }
      auto flat = torch::cat(pieces);
      group.all_reduce_sum(flat);
      std::int64_t offset = 0;
      for (std::size_t i = first; i < last; ++i) {
        const auto& p = params[i];
        auto slice = flat.slice(0, offset, offset + p.numel()).view(p.sizes()).to(p.dtype());
        offset += p.numel();
        if (p.grad().defined()) {
          p.mutable_grad().copy_(slice);
        } else {
          p.mutable_grad() = slice.clone();
        }
      }
      first = last;
    }
  }
  g_sync_seconds += std::chrono::duration<double>(Clock::now() - start).count();
  ++g_sync_calls;
  return out;
}

bool any_rank(bool flag) {
  Group& group = world();
  if (!group.distributed()) return flag;
  auto t = torch::tensor({flag ? 1 : 0}, torch::kInt32);
  group.all_reduce_sum(t);
  return t.item<int>() > 0;
}

std::pair<double, std::int64_t> gradient_sync_time() { return {g_sync_seconds, g_sync_calls}; }

bool broadcast_module(torch::nn::Module& module) {
  Group& group = world();
  if (!group.distributed()) return true;
  std::vector<torch::Tensor> tensors;
  for (const auto& p : module.parameters()) tensors.push_back(p);
  for (const auto& b : module.buffers()) tensors.push_back(b);
  // A fingerprint of the weights as they are, to tell whether the ranks agreed.
  auto fingerprint = torch::zeros({2}, torch::kFloat64);
  for (const auto& t : tensors) {
    const auto d = t.detach().to(torch::kCPU, torch::kFloat64);
    fingerprint[0] += d.sum();
    fingerprint[1] += (d * d).sum();
  }
  const auto all = group.all_gather(fingerprint);
  bool agreed = true;
  for (const auto& f : all) agreed = agreed && torch::equal(f, all[0]);
  torch::NoGradGuard no_grad;
  for (auto& t : tensors) {
    auto data = t.detach();
    group.broadcast(data, 0);
  }
  return agreed;
}

}  // namespace ulmfit::dist
