// CVXLinux: the few things Swift cannot see or call on Linux. Each declaration says why it is here.
// Everything else goes through Glibc from VXPlatform/Syscalls.swift.
#pragma once

#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>

// struct mmsghdr is only declared under _GNU_SOURCE, which the Glibc module is not built with;
// this twin is layout-checked against the real one in shim.c (as swift-nio's CNIOLinux does).
typedef struct {
    struct msghdr msg_hdr;
    unsigned int msg_len;
} vx_mmsghdr;

// recvmmsg/sendmmsg: _GNU_SOURCE-only declarations. Return the count, or -1 with errno set.
int vx_recvmmsg(int fd, vx_mmsghdr *msgs, unsigned int count, int flags);
int vx_sendmmsg(int fd, vx_mmsghdr *msgs, unsigned int count, int flags);

// TUNSETIFF and the IFF_* TUN flags are macros built from _IOW(), which Swift cannot import.
// Opens one queue of TAP `name` (multi-queue, non-blocking, close-on-exec). Returns the fd, or
// -errno. `vnet_hdr` asks for IFF_VNET_HDR.
int vx_tap_open_queue(const char *name, int vnet_hdr);

// Interface ioctls through struct ifreq's unions; each returns 0 or -errno.
int vx_if_get_mtu(const char *name, int *mtu);
int vx_if_set_mtu(const char *name, int mtu);
int vx_if_set_up(const char *name);
int vx_if_get_hwaddr(const char *name, uint8_t mac[6]);
int vx_if_set_ipv4(const char *name, uint32_t address_be, uint32_t netmask_be);
// struct in6_ifreq lives in <linux/ipv6.h>, which clashes with glibc's netinet headers in Swift.
int vx_if_add_ipv6(const char *name, const uint8_t address[16], int prefix_length);

// SO_ATTACH_FILTER with a one-instruction classic BPF program that accepts nothing: the raw send
// socket must not queue a copy of every UDP datagram the host receives.
int vx_attach_drop_all_filter(int fd);

// signalfd/eventfd headers are not in the Glibc module map.
int vx_signalfd_for(const int *signals, int count); // also blocks them in the calling thread
int vx_block_signals(const int *signals, int count);
int vx_eventfd(void);

// CPU pinning: cpu_set_t is a macro-driven bitset.
int vx_pin_current_thread(int cpu);

// Message flags and socket options whose headers Swift does not import cleanly.
extern const int vx_MSG_TRUNC;
extern const int vx_IPV6_CHECKSUM;
extern const int vx_IP_MTU_DISCOVER;
extern const int vx_IP_PMTUDISC_PROBE;
extern const int vx_IPV6_MTU_DISCOVER;
extern const int vx_IPV6_PMTUDISC_PROBE;

// pthread_setname_np is a _GNU_SOURCE declaration. Names show in `top -H` and `ps -L`.
int vx_set_thread_name(const char *name);
