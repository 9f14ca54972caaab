#pragma once
// Runs the `ulmfit` binary with arguments and stdin, capturing its exit code,
// stdout and stderr.
#include <sys/wait.h>

#include <cstdlib>
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

/// `args` is passed through the shell as written (quote what needs it).
inline CliResult cli_run(const std::string& args, const std::filesystem::path& dir, const std::string& stdin_text = "") {
  const auto out = dir / "stdout.txt", err = dir / "stderr.txt", in = dir / "stdin.txt";
  testing::write_file(in, stdin_text);
  const std::string cmd = std::string(ULMFIT_BINARY) + " " + args + " <" + shell_quote(in) + " >" + shell_quote(out) +
                          " 2>" + shell_quote(err);
  const int status = std::system(cmd.c_str());
  CliResult r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream o(out), e(err);
  r.out.assign(std::istreambuf_iterator<char>(o), {});
  r.err.assign(std::istreambuf_iterator<char>(e), {});
  return r;
}

}  // namespace ulmfit
