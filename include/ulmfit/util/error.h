#pragma once
/// Typed errors thrown by the library. The library never exits; the app maps
/// each error to its exit code (2 for bad input, 1 for runtime failures) and
/// prints the one-line message.
///
///   throw ulmfit::ConfigError("configs/x.yaml:4:3: train.bptt: must be >= 1");
#include <stdexcept>
#include <string>

namespace ulmfit {

enum class ExitCode : int { kOk = 0, kRuntime = 1, kBadInput = 2, kInterrupted = 130 };

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
  virtual ExitCode exit_code() const = 0;
};

/// Bad input of any kind: exit code 2.
class BadInputError : public Error {
 public:
  using Error::Error;
  ExitCode exit_code() const override { return ExitCode::kBadInput; }
};

/// Wrong command-line usage.
class UsageError : public BadInputError {
 public:
  using BadInputError::BadInputError;
};
/// A config file or override that does not parse or validate.
class ConfigError : public BadInputError {
 public:
  using BadInputError::BadInputError;
};
/// A data file that is missing, malformed or empty.
class DataError : public BadInputError {
 public:
  using BadInputError::BadInputError;
};
/// A run directory or checkpoint that is missing, corrupt or mismatched.
class CheckpointError : public BadInputError {
 public:
  using BadInputError::BadInputError;
};

/// Something failed while running on valid input (I/O, out of memory, ...): exit 1.
class RuntimeFailure : public Error {
 public:
  using Error::Error;
  ExitCode exit_code() const override { return ExitCode::kRuntime; }
};

/// Training stopped on SIGINT / SIGTERM after writing a checkpoint: exit 130.
class Interrupted : public Error {
 public:
  using Error::Error;
  ExitCode exit_code() const override { return ExitCode::kInterrupted; }
};

/// A command whose stage is not built yet: exit 1 without pretending otherwise.
class NotImplementedError : public RuntimeFailure {
 public:
  using RuntimeFailure::RuntimeFailure;
};

/// "path:line: message" (line 0 leaves the line out).
std::string at_location(const std::string& path, long line, const std::string& message);

}  // namespace ulmfit
