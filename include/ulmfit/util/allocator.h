#pragma once
/// glibc's malloc, tuned for tensor work. By default it serves large blocks
/// with mmap and hands freed memory at the top of the heap back to the kernel,
/// so a loop that allocates and frees the same activations every batch pays
/// for page faults and zeroed pages each time: MiniLM inference on 500 IMDB
/// reviews (2-core AMD EPYC, bf16) spent 4.1 s of 27 s CPU in the kernel, and
/// took 14.5 s wall against 11.3 s with the settings below (bench/RESULTS.md).
namespace ulmfit::util {

/// Keeps blocks up to 32 MiB (glibc's ceiling for this setting) on the heap and
/// freed memory in the process for reuse. Call once, first thing in main();
/// returns false where the C library ignored it (another allocator, a
/// sanitizer's). The environment's GLIBC_TUNABLES still wins over it.
bool keep_freed_memory_for_reuse();

/// Hands the memory that malloc holds free (in every arena) back to the
/// kernel. The other side of the setting above, for a long-running process
/// whose batches vary: a server's resident memory would otherwise ratchet up
/// to the sum of every batch shape's high-water mark (MiniLM under load:
/// 246 MiB at start, 529 MiB after three load phases, 293 MiB after this).
/// Costs page faults when the memory is next used, so call it when idle or
/// seldom. A no-op outside glibc.
void release_freed_memory();

}  // namespace ulmfit::util
