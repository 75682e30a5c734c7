// Makes UDP GSO sends fail with EIO, as the kernel does when the way out has no checksum offload,
// so the router's fallback to one datagram per send can be tested on loopback (where GSO always
// works). Test-only: this target interposes sendmmsg for the whole test executable; only threads
// that turned the fault on see it, so tests running in parallel on other threads are untouched.
#pragma once

// From now on, on the calling thread: a sendmmsg whose messages include a UDP_SEGMENT one
// (a GSO send) sends the messages before it and fails on it with EIO (on 1) or behaves (on 0).
void vx_test_fail_gso_sends(int on);

// GSO messages the calling thread has handed to sendmmsg (failed ones included).
unsigned long long vx_test_gso_messages(void);
