#pragma once
// Runs the `ulmfit` binary with arguments and stdin, capturing its exit code,
// stdout and stderr.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <thread>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "../test_helpers.h"

namespace ulmfit {

struct CliResult {
  int code = -1;
  std::string out;
  std::string err;
};

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

/// `args` is passed through the shell as written (quote what needs it);
/// `env` (env(1)'s arguments: "NAME=value ...", "-u NAME") applies to this run only.
inline CliResult cli_run(const std::string& args, const std::filesystem::path& dir, const std::string& stdin_text = "",
                         const std::string& env = "") {
  const auto out = dir / "stdout.txt", err = dir / "stderr.txt", in = dir / "stdin.txt";
  testing::write_file(in, stdin_text);
  const std::string cmd = (env.empty() ? "" : "env " + env + " ") + std::string(ULMFIT_BINARY) + " " + args + " <" +
                          shell_quote(in) + " >" + shell_quote(out) + " 2>" + shell_quote(err);
  const int status = std::system(cmd.c_str());
  CliResult r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream o(out), e(err);
  r.out.assign(std::istreambuf_iterator<char>(o), {});
  r.err.assign(std::istreambuf_iterator<char>(e), {});
  return r;
}

/// Starts `ulmfit args` in the background (stdout and stderr to files in
/// `dir`) and returns its process id, for tests that signal or kill it.
inline pid_t cli_spawn(const std::string& args, const std::filesystem::path& dir) {
  const std::string cmd = "exec " + std::string(ULMFIT_BINARY) + " " + args + " </dev/null >" +
                          shell_quote((dir / "stdout.txt").string()) + " 2>" + shell_quote((dir / "stderr.txt").string());
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

struct Ended {
  int code = -1;    // exit code, or -1 when a signal ended it
  int signal = 0;   // the signal that ended it, if any
  std::string err;  // its stderr
};

inline Ended cli_wait(pid_t pid, const std::filesystem::path& dir) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  Ended e;
  if (WIFEXITED(status)) e.code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) e.signal = WTERMSIG(status);
  std::ifstream err(dir / "stderr.txt");
  e.err.assign(std::istreambuf_iterator<char>(err), {});
  return e;
}

/// Polls `ready` every 10 ms for up to `seconds`; false on timeout.
inline bool wait_until(const std::function<bool()>& ready, double seconds = 60) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (ready()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

}  // namespace ulmfit
