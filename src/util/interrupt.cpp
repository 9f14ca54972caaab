#include "ulmfit/util/interrupt.h"

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>

namespace ulmfit::util {
namespace {

std::atomic<int> g_signal{0};
struct sigaction g_old_int {}, g_old_term {};
int g_depth = 0;
std::atomic<const char*> g_notice{""};
std::atomic<std::size_t> g_notice_length{0};

extern "C" void on_signal(int signal_number) {
  int expected = 0;
  if (!g_signal.compare_exchange_strong(expected, signal_number)) {
    // Second signal: the user wants out now. Only async-signal-safe calls here.
    static const char kMessage[] = "\nsecond interrupt: exiting at once\n";
    const ssize_t ignored = ::write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
    (void)ignored;
    ::_exit(130);
  }
  const char* notice = g_notice.load();
  ssize_t ignored = ::write(STDERR_FILENO, "\n", 1);
  ignored = ::write(STDERR_FILENO, notice, g_notice_length.load());
  ignored = ::write(STDERR_FILENO, "\n", 1);
  (void)ignored;
}

}  // namespace

InterruptScope::InterruptScope(const char* notice) {
  if (g_depth++ > 0) return;
  g_signal.store(0);
  g_notice_length.store(std::strlen(notice));
  g_notice.store(notice);
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // a read or write in flight carries on
  ::sigaction(SIGINT, &action, &g_old_int);
  ::sigaction(SIGTERM, &action, &g_old_term);
}

InterruptScope::~InterruptScope() {
  if (--g_depth > 0) return;
  ::sigaction(SIGINT, &g_old_int, nullptr);
  ::sigaction(SIGTERM, &g_old_term, nullptr);
}

bool interrupt_requested() { return g_signal.load() != 0; }

int interrupt_signal() { return g_signal.load(); }

void request_interrupt(int signal_number) { g_signal.store(signal_number); }

}  // namespace ulmfit::util
