#pragma once
/// The progress line on stderr: epoch, step/total, loss, throughput, LR, ETA.
/// Redrawn in place on a terminal; on a pipe or log file, one plain line every
/// few seconds.
#include <chrono>
#include <string>

namespace ulmfit::train {

class ProgressLine {
 public:
  ProgressLine(std::string stage, std::string item_name);
  void start_epoch(int epoch, int epochs, std::size_t steps);
  void update(std::size_t step, double loss, double items, double lr);
  /// Ends the epoch's line and prints `summary` under it.
  void finish_epoch(const std::string& summary);

 private:
  std::string stage_, item_name_;
  bool tty_;
  int epoch_ = 0, epochs_ = 0;
  std::size_t steps_ = 0;
  double smoothed_loss_ = 0, items_ = 0;
  std::size_t updates_ = 0;
  std::chrono::steady_clock::time_point epoch_start_, last_print_;
  bool line_open_ = false;
};

/// "1h02m", "3m05s", "42s".
std::string format_duration(double seconds);

}  // namespace ulmfit::train
