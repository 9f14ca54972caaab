// launch: starts N ranks of a training command on this machine with the
// variables torchrun sets, so `ulmfit launch --nproc 2 -- ulmfit pretrain ...`
// needs no Python. (torchrun --no-python ulmfit pretrain ... works as well.)
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <thread>

#include "cli_common.h"
#include "ulmfit/util/error.h"

namespace ulmfit::cli {
namespace {

/// After the first rank fails, how long the others get to notice and exit on
/// their own (they do within a second when a peer dies) before SIGTERM.
constexpr auto kGraceAfterFailure = std::chrono::seconds(30);

std::atomic<int> g_forward_signal{0};
extern "C" void remember_signal(int sig) { g_forward_signal.store(sig); }

/// A port nothing listens on now (the kernel's pick), for a one-machine group.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw RuntimeFailure("launch: no socket for picking a port");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw RuntimeFailure("launch: could not pick a free port; pass --master-port");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

struct LaunchArgs {
  int nproc = 1;
  int nnodes = 1;
  int node_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 0;
  std::vector<std::string> command;
};

int launch(const LaunchArgs& a) {
  if (a.nproc < 1) throw UsageError("launch: --nproc must be >= 1");
  if (a.nnodes < 1 || a.node_rank < 0 || a.node_rank >= a.nnodes) {
    throw UsageError("launch: --node-rank must be in [0, --nnodes)");
  }
  if (a.command.empty()) throw UsageError("launch: give the command after --, e.g. -- ulmfit pretrain --config X");
  if (a.nnodes > 1 && a.master_port == 0) throw UsageError("launch: --master-port is required with --nnodes > 1");
  const int port = a.master_port > 0 ? a.master_port : free_port();
  const int world = a.nproc * a.nnodes;

  struct sigaction on_signal {};
  on_signal.sa_handler = remember_signal;
  ::sigaction(SIGINT, &on_signal, nullptr);
  ::sigaction(SIGTERM, &on_signal, nullptr);

  const pid_t launcher = ::getpid();
  std::vector<pid_t> children;
  for (int local = 0; local < a.nproc; ++local) {
    const pid_t pid = ::fork();
    if (pid < 0) throw RuntimeFailure("launch: fork failed");
    if (pid == 0) {
      ::signal(SIGINT, SIG_DFL);
      ::signal(SIGTERM, SIG_DFL);
      // Its own process group: a Ctrl-C in the terminal reaches the launcher
      // only, which passes it on once (a second SIGINT means "exit at once").
      ::setpgid(0, 0);
      // And it goes when the launcher goes, even by kill -9.
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != launcher) ::_exit(143);  // it went before prctl took effect
      const int rank = a.node_rank * a.nproc + local;
      ::setenv("RANK", std::to_string(rank).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(local).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(world).c_str(), 1);
      ::setenv("LOCAL_WORLD_SIZE", std::to_string(a.nproc).c_str(), 1);
      ::setenv("GROUP_RANK", std::to_string(a.node_rank).c_str(), 1);
      ::setenv("MASTER_ADDR", a.master_addr.c_str(), 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      std::vector<char*> argv;
      // `ulmfit` as the program is this binary, wherever it was started from.
      const bool self = a.command[0] == "ulmfit";
      std::string program = self ? "/proc/self/exe" : a.command[0];
      for (const auto& s : a.command) argv.push_back(const_cast<char*>(s.c_str()));
      argv.push_back(nullptr);
      if (self) {
        ::execv(program.c_str(), argv.data());
      } else {
        ::execvp(program.c_str(), argv.data());
      }
      std::cerr << "error: launch: cannot run " << a.command[0] << "\n";
      ::_exit(127);
    }
    children.push_back(pid);
  }

  int result = 0;
  std::size_t running = children.size();
  std::optional<std::chrono::steady_clock::time_point> first_failure;
  bool terminated = false;
  while (running > 0) {
    if (const int sig = g_forward_signal.exchange(0); sig != 0) {
      // Every rank hears it; they agree on the step and rank 0 checkpoints.
      for (const pid_t pid : children) {
        if (pid > 0) ::kill(pid, sig);
      }
    }
    int status = 0;
    const pid_t done = ::waitpid(-1, &status, WNOHANG);
    if (done > 0) {
      for (auto& pid : children) {
        if (pid == done) pid = -1;
      }
      --running;
      const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      if (code != 0 && result == 0) {
        result = code;
        first_failure = std::chrono::steady_clock::now();
      }
      continue;
    }
    if (first_failure && !terminated && std::chrono::steady_clock::now() - *first_failure > kGraceAfterFailure) {
      for (const pid_t pid : children) {
        if (pid > 0) ::kill(pid, SIGTERM);
      }
      terminated = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return result;
}

}  // namespace

void add_launch_command(CLI::App& app, const Runner& on_run) {
  auto args = std::make_shared<LaunchArgs>();
  auto* sub = app.add_subcommand(
      "launch", "Run a training command as N data-parallel ranks (RANK, WORLD_SIZE, ... set as torchrun sets them)");
  sub->add_option("--nproc", args->nproc, "Ranks on this machine")->capture_default_str();
  sub->add_option("--nnodes", args->nnodes, "Machines in the group")->capture_default_str();
  sub->add_option("--node-rank", args->node_rank, "This machine's index in [0, nnodes)")->capture_default_str();
  sub->add_option("--master-addr", args->master_addr, "Address of the machine with rank 0 (reachable from all)")
      ->capture_default_str();
  sub->add_option("--master-port", args->master_port, "Port of rank 0's store; 0 = a free one (one machine only)")
      ->capture_default_str();
  sub->add_option("command", args->command, "The command each rank runs, after --")->take_all();
  sub->footer("\nExample: ulmfit launch --nproc 2 -- ulmfit pretrain --config configs/wikitext2.yaml --set threads=1");
  sub->callback([args, on_run] { on_run([args] { return launch(*args); }); });
}

}  // namespace ulmfit::cli
