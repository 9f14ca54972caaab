#include "ulmfit/train/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

#include "ulmfit/util/log.h"

namespace ulmfit::train {

std::string format_duration(double seconds) {
  const long s = std::lround(std::max(0.0, seconds));
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s % 3600) / 60);
  } else if (s >= 60) {
    std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lds", s);
  }
  return buf;
}

ProgressLine::ProgressLine(std::string stage, std::string item_name)
    : stage_(std::move(stage)), item_name_(std::move(item_name)), tty_(::isatty(2) == 1) {}

void ProgressLine::start_epoch(int epoch, int epochs, std::size_t steps) {
  epoch_ = epoch;
  epochs_ = epochs;
  steps_ = steps;
  smoothed_loss_ = 0;
  items_ = 0;
  updates_ = 0;
  epoch_start_ = last_print_ = std::chrono::steady_clock::now();
}

void ProgressLine::update(std::size_t step, double loss, double items, double lr) {
  ++updates_;
  // Debiased exponential moving average, as fastai shows.
  const double beta = 0.98;
  smoothed_loss_ = beta * smoothed_loss_ + (1 - beta) * loss;
  const double shown = smoothed_loss_ / (1 - std::pow(beta, static_cast<double>(updates_)));
  items_ += items;
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - epoch_start_).count();
  const double since_print = std::chrono::duration<double>(now - last_print_).count();
  const bool last = step == steps_;
  if (log::level() > log::Level::kInfo) return;  // quiet (a data-parallel rank other than 0)
  if (!last && since_print < (tty_ ? 0.25 : 15.0)) return;
  last_print_ = now;
  const double eta = step > 0 ? elapsed / static_cast<double>(step) * static_cast<double>(steps_ - step) : 0;
  std::fprintf(stderr, "%s%s epoch %d/%d step %zu/%zu loss %.4f %s/s %.0f lr %.2e eta %s%s",
               tty_ ? "\r\033[K" : "", stage_.c_str(), epoch_ + 1, epochs_, step, steps_, shown,
               item_name_.c_str(), items_ / std::max(elapsed, 1e-9), lr, format_duration(eta).c_str(),
               tty_ ? "" : "\n");
  std::fflush(stderr);
  line_open_ = tty_;
}

void ProgressLine::finish_epoch(const std::string& summary) {
  if (line_open_) std::fputc('\n', stderr);
  line_open_ = false;
  if (log::level() > log::Level::kInfo) return;
  std::fprintf(stderr, "%s epoch %d/%d: %s (%s)\n", stage_.c_str(), epoch_ + 1, epochs_, summary.c_str(),
               format_duration(std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start_).count())
                   .c_str());
  std::fflush(stderr);
}

}  // namespace ulmfit::train
