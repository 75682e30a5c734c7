// Counts heap allocations made by the calling thread, for tests that prove a code path allocates
// nothing in steady state (STYLE.md 3, after swift-nio's allocation-counter tests). glibc 2.34
// removed __malloc_hook, and mallinfo2() reports bytes in use, not calls (a malloc + free per
// packet leaves it unchanged), so this target interposes malloc and friends instead: linked into
// the test executable, its definitions win over libc's for every library in the process, count,
// and hand over to glibc's own entry points (__libc_malloc and so on). Per thread, so tests
// running in parallel on other threads do not disturb a measurement.
#pragma once

// Allocations (malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign) made so far by
// the calling thread.
unsigned long long vx_test_thread_allocations(void);
