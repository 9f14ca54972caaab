#pragma once
/// SIGINT / SIGTERM as a request rather than a kill while training: the first
/// signal sets a flag the training loop reads at the next step boundary (it
/// then writes a checkpoint and stops); a second one exits at once with 130.
/// Every file is written atomically, so exiting mid-write loses nothing.
///
///   util::InterruptScope scope;          // handlers installed for this scope
///   if (util::interrupt_requested()) save_and_stop();
namespace ulmfit::util {

class InterruptScope {
 public:
  /// Installs the handlers and clears any old request; the first signal
  /// prints `notice` (a string literal: it is read inside the handler).
  explicit InterruptScope(const char* notice =
                              "interrupt: finishing the current step and writing a checkpoint "
                              "(interrupt again to exit at once)");
  ~InterruptScope();  // restores the previous handlers
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;
};

bool interrupt_requested();
/// The signal that asked (SIGINT or SIGTERM), 0 when none did.
int interrupt_signal();
/// Raises the request as a signal would (tests, and callers that stop work
/// for their own reasons).
void request_interrupt(int signal_number);

}  // namespace ulmfit::util
