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

// struct ucred (SO_PEERCRED's answer: the control socket's caller) is _GNU_SOURCE-only too;
// layout-checked in shim.c.
typedef struct {
    int32_t pid;
    uint32_t uid;
    uint32_t gid;
} vx_ucred;

// recvmmsg/sendmmsg: _GNU_SOURCE-only declarations. Return the count, or -1 with errno set.
int vx_recvmmsg(int fd, vx_mmsghdr *msgs, unsigned int count, int flags);
int vx_sendmmsg(int fd, vx_mmsghdr *msgs, unsigned int count, int flags);

// TUNSETIFF and the IFF_* TUN flags are macros built from _IOW(), which Swift cannot import.
// Opens one queue of TAP `name` (multi-queue, non-blocking, close-on-exec). Returns the fd, or
// -errno. `vnet_hdr` asks for IFF_VNET_HDR.
int vx_tap_open_queue(const char *name, int vnet_hdr);

// TUNSETVNETHDRSZ and TUNSETOFFLOAD are _IOW() macros too. Set on any queue, they apply to the
// whole device. Return 0 or -errno (EINVAL: a feature the kernel does not offer).
int vx_tap_set_vnet_header_size(int fd, int size);
int vx_tap_set_offload(int fd, unsigned int features);
// TUN_F_* feature bits; USO4/USO6 are missing from older headers, so they are spelled out in shim.c.
extern const unsigned int vx_TUN_F_CSUM;
extern const unsigned int vx_TUN_F_TSO4;
extern const unsigned int vx_TUN_F_TSO6;
extern const unsigned int vx_TUN_F_TSO_ECN;
extern const unsigned int vx_TUN_F_USO4;
extern const unsigned int vx_TUN_F_USO6;

// UDP GSO/GRO: SOL_UDP options and their control messages (CMSG_* are macros Swift cannot call).
extern const int vx_SOL_UDP;
extern const int vx_UDP_SEGMENT;
extern const int vx_UDP_GRO;
// The kernel's drop count of a socket (SO_MEMINFO's SK_MEMINFO_DROPS): 0, or -errno.
int vx_socket_drops(int fd, unsigned long long *drops);
// Bytes of control buffer one UDP_SEGMENT (uint16) or UDP_GRO (int) message needs.
unsigned int vx_udp_control_space(void);
// Points `msg` at `buffer` (vx_udp_control_space() bytes) holding one UDP_SEGMENT cmsg for
// `segment_size`; a `segment_size` of 0 clears the message's control data instead.
void vx_set_udp_segment(struct msghdr *msg, void *buffer, uint16_t segment_size);
// The segment size in a received message's UDP_GRO cmsg, or 0 when it has none (not coalesced).
int vx_udp_gro_size(const struct msghdr *msg);

// Interface ioctls through struct ifreq's unions; each returns 0 or -errno.
int vx_if_get_mtu(const char *name, int *mtu);
int vx_if_set_mtu(const char *name, int mtu);
int vx_if_set_up(const char *name);
int vx_if_get_hwaddr(const char *name, uint8_t mac[6]);
// SIOCSIFHWADDR with an Ethernet (ARPHRD_ETHER) address: the TAP's stable MAC.
int vx_if_set_hwaddr(const char *name, const uint8_t mac[6]);
int vx_if_set_ipv4(const char *name, uint32_t address_be, uint32_t netmask_be);
// struct in6_ifreq lives in <linux/ipv6.h>, which clashes with glibc's netinet headers in Swift.
int vx_if_add_ipv6(const char *name, const uint8_t address[16], int prefix_length);

// SO_ATTACH_FILTER with a one-instruction classic BPF program that accepts nothing: the raw send
// socket must not queue a copy of every UDP datagram the host receives.
int vx_attach_drop_all_filter(int fd);

// CPU steering (steering.c): the TAP's queue and the receive socket chosen by the CPU a packet is
// on, `worker_cpus[w]` being the CPU worker w is pinned to. The TAP's program is loaded (an fd, or
// -errno) and then set on the TAP (-1 takes a program away); a test runs it over a frame on the
// calling thread's CPU (BPF_PROG_TEST_RUN, its return value the queue). 0 or -errno.
int vx_tap_steering_program(const int *worker_cpus, int workers, uint32_t sticky_ns);
int vx_tap_set_steering(int tap_fd, int prog_fd);
int vx_bpf_test_run(int prog_fd, const void *frame, uint32_t length, uint32_t *result);
int vx_reuseport_steer_by_cpu(int socket_fd, const int *worker_cpus, int workers);

// signalfd/eventfd headers are not in the Glibc module map.
int vx_signalfd_for(const int *signals, int count); // also blocks them in the calling thread
int vx_block_signals(const int *signals, int count);
int vx_eventfd(void);

// CPU pinning: cpu_set_t is a macro-driven bitset.
// The CPUs the calling thread may run on (sched_getaffinity), lowest first; count or -errno.
int vx_allowed_cpus(int *cpus, int capacity);
int vx_pin_current_thread(int cpu);

// Message flags and socket options whose headers Swift does not import cleanly.
extern const int vx_MSG_TRUNC;
extern const int vx_IPV6_CHECKSUM;
extern const int vx_IP_MTU_DISCOVER;
extern const int vx_IP_PMTUDISC_PROBE;
extern const int vx_IPV6_MTU_DISCOVER;
extern const int vx_IPV6_PMTUDISC_PROBE;
// Path MTU (README "PMTU"): sends above the kernel's cached path MTU fail (PMTUDISC_DO), and a
// connected probe socket reads that MTU back (IP_MTU / IPV6_MTU).
extern const int vx_IP_PMTUDISC_DO;
extern const int vx_IPV6_PMTUDISC_DO;
extern const int vx_IP_MTU;
extern const int vx_IPV6_MTU;
extern const int vx_IPV6_DONTFRAG;

// pthread_setname_np is a _GNU_SOURCE declaration. Names show in `top -H` and `ps -L`.
int vx_set_thread_name(const char *name);

// ---- The underlay socket's path MTU and ICMP errors (socket_errors.c) ----

// IP_MTU (the path MTU of a connected socket) is not visible from Swift.
int vx_socket_path_mtu(int fd, int *mtu);

// IP_RECVERR / IPV6_RECVERR and struct sock_extended_err (<linux/errqueue.h>): a connected UDP
// socket's ICMP errors (port unreachable, ...) queue on its error queue instead of only setting
// the pending error that sendmmsg consumes and drops when a batch is part sent.
int vx_enable_error_queue(int fd, int ipv6);
// The errno of the oldest queued ICMP error (removed from the queue), 0 when there is none.
int vx_take_queued_error(int fd);
