#define _GNU_SOURCE
#include "CVXLinux.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <linux/filter.h>
#include <linux/if_tun.h>
#include <linux/sock_diag.h>
#include <linux/ipv6.h>

_Static_assert(sizeof(vx_mmsghdr) == sizeof(struct mmsghdr), "vx_mmsghdr size");
_Static_assert(offsetof(vx_mmsghdr, msg_len) == offsetof(struct mmsghdr, msg_len), "vx_mmsghdr layout");
_Static_assert(sizeof(vx_ucred) == sizeof(struct ucred), "vx_ucred size");
_Static_assert(offsetof(vx_ucred, gid) == offsetof(struct ucred, gid), "vx_ucred layout");

const int vx_MSG_TRUNC = MSG_TRUNC;
const int vx_IPV6_CHECKSUM = IPV6_CHECKSUM;
const int vx_IP_MTU_DISCOVER = IP_MTU_DISCOVER;
const int vx_IP_PMTUDISC_PROBE = IP_PMTUDISC_PROBE;
const int vx_IPV6_MTU_DISCOVER = IPV6_MTU_DISCOVER;
const int vx_IPV6_PMTUDISC_PROBE = IPV6_PMTUDISC_PROBE;
const int vx_IP_PMTUDISC_DO = IP_PMTUDISC_DO;
const int vx_IPV6_PMTUDISC_DO = IPV6_PMTUDISC_DO;
const int vx_IP_MTU = IP_MTU;
const int vx_IPV6_MTU = IPV6_MTU;
const int vx_IPV6_DONTFRAG = IPV6_DONTFRAG;

int vx_recvmmsg(int fd, vx_mmsghdr *msgs, unsigned int count, int flags) {
    return recvmmsg(fd, (struct mmsghdr *)msgs, count, flags, NULL);
}

int vx_sendmmsg(int fd, vx_mmsghdr *msgs, unsigned int count, int flags) {
    return sendmmsg(fd, (struct mmsghdr *)msgs, count, flags);
}

#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

const unsigned int vx_TUN_F_CSUM = TUN_F_CSUM;
const unsigned int vx_TUN_F_TSO4 = TUN_F_TSO4;
const unsigned int vx_TUN_F_TSO6 = TUN_F_TSO6;
const unsigned int vx_TUN_F_TSO_ECN = TUN_F_TSO_ECN;
const unsigned int vx_TUN_F_USO4 = TUN_F_USO4;
const unsigned int vx_TUN_F_USO6 = TUN_F_USO6;
const int vx_SOL_UDP = SOL_UDP;
const int vx_UDP_SEGMENT = UDP_SEGMENT;
const int vx_UDP_GRO = UDP_GRO;

int vx_socket_drops(int fd, unsigned long long *drops) {
    // SO_MEMINFO: the socket's memory counters; SK_MEMINFO_DROPS is sk_drops (datagrams the
    // kernel dropped at this socket: receive buffer full, bad checksum).
    uint32_t meminfo[SK_MEMINFO_VARS];
    socklen_t size = sizeof(meminfo);
    if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, meminfo, &size) < 0) return -errno;
    if (size < (SK_MEMINFO_DROPS + 1) * sizeof(uint32_t)) return -EINVAL;
    *drops = meminfo[SK_MEMINFO_DROPS];
    return 0;
}

int vx_tap_set_vnet_header_size(int fd, int size) {
    return ioctl(fd, TUNSETVNETHDRSZ, &size) < 0 ? -errno : 0;
}

int vx_tap_set_offload(int fd, unsigned int features) {
    return ioctl(fd, TUNSETOFFLOAD, (unsigned long)features) < 0 ? -errno : 0;
}

unsigned int vx_udp_control_space(void) { return CMSG_SPACE(sizeof(int)); }

void vx_set_udp_segment(struct msghdr *msg, void *buffer, uint16_t segment_size) {
    if (segment_size == 0) {
        msg->msg_control = NULL;
        msg->msg_controllen = 0;
        return;
    }
    memset(buffer, 0, CMSG_SPACE(sizeof(uint16_t)));
    msg->msg_control = buffer;
    msg->msg_controllen = CMSG_SPACE(sizeof(uint16_t));
    struct cmsghdr *cm = CMSG_FIRSTHDR(msg);
    cm->cmsg_level = SOL_UDP;
    cm->cmsg_type = UDP_SEGMENT;
    cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    memcpy(CMSG_DATA(cm), &segment_size, sizeof(segment_size));
}

int vx_udp_gro_size(const struct msghdr *msg) {
    if (msg->msg_control == NULL || msg->msg_controllen < sizeof(struct cmsghdr)) return 0;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR((struct msghdr *)msg); cm != NULL;
         cm = CMSG_NXTHDR((struct msghdr *)msg, cm)) {
        if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO && cm->cmsg_len >= CMSG_LEN(sizeof(int))) {
            int size;
            memcpy(&size, CMSG_DATA(cm), sizeof(size));
            return size;
        }
    }
    return 0;
}

static int copy_name(struct ifreq *ifr, const char *name) {
    memset(ifr, 0, sizeof(*ifr));
    if (strlen(name) >= IFNAMSIZ) return -ENAMETOOLONG;
    strncpy(ifr->ifr_name, name, IFNAMSIZ - 1);
    return 0;
}

int vx_tap_open_queue(const char *name, int vnet_hdr) {
    struct ifreq ifr;
    int rc = copy_name(&ifr, name);
    if (rc < 0) return rc;
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return -errno;
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_MULTI_QUEUE | (vnet_hdr ? IFF_VNET_HDR : 0);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    return fd;
}

// Interface ioctls need some socket of the right family to be issued on.
static int if_ioctl(int family, unsigned long request, void *arg) {
    int s = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -errno;
    int rc = ioctl(s, request, arg) < 0 ? -errno : 0;
    close(s);
    return rc;
}

int vx_if_get_mtu(const char *name, int *mtu) {
    struct ifreq ifr;
    int rc = copy_name(&ifr, name);
    if (rc < 0) return rc;
    rc = if_ioctl(AF_INET, SIOCGIFMTU, &ifr);
    if (rc == 0) *mtu = ifr.ifr_mtu;
    return rc;
}

int vx_if_set_mtu(const char *name, int mtu) {
    struct ifreq ifr;
    int rc = copy_name(&ifr, name);
    if (rc < 0) return rc;
    ifr.ifr_mtu = mtu;
    return if_ioctl(AF_INET, SIOCSIFMTU, &ifr);
}

int vx_if_set_up(const char *name) {
    struct ifreq ifr;
    int rc = copy_name(&ifr, name);
    if (rc < 0) return rc;
    rc = if_ioctl(AF_INET, SIOCGIFFLAGS, &ifr);
    if (rc < 0) return rc;
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    return if_ioctl(AF_INET, SIOCSIFFLAGS, &ifr);
}

int vx_if_get_hwaddr(const char *name, uint8_t mac[6]) {
    struct ifreq ifr;
    int rc = copy_name(&ifr, name);
    if (rc < 0) return rc;
    rc = if_ioctl(AF_INET, SIOCGIFHWADDR, &ifr);
    if (rc == 0) memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
    return rc;
}

int vx_if_set_hwaddr(const char *name, const uint8_t mac[6]) {
    struct ifreq ifr;
    int rc = copy_name(&ifr, name);
    if (rc < 0) return rc;
    ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
    memcpy(ifr.ifr_hwaddr.sa_data, mac, 6);
    return if_ioctl(AF_INET, SIOCSIFHWADDR, &ifr);
}

int vx_if_set_ipv4(const char *name, uint32_t address_be, uint32_t netmask_be) {
    struct ifreq ifr;
    int rc = copy_name(&ifr, name);
    if (rc < 0) return rc;
    struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = address_be;
    rc = if_ioctl(AF_INET, SIOCSIFADDR, &ifr);
    if (rc < 0) return rc;
    sin = (struct sockaddr_in *)&ifr.ifr_netmask;
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = netmask_be;
    return if_ioctl(AF_INET, SIOCSIFNETMASK, &ifr);
}

int vx_if_add_ipv6(const char *name, const uint8_t address[16], int prefix_length) {
    unsigned int index = if_nametoindex(name);
    if (index == 0) return -errno;
    struct in6_ifreq req;
    memset(&req, 0, sizeof(req));
    memcpy(&req.ifr6_addr, address, 16);
    req.ifr6_prefixlen = (uint32_t)prefix_length;
    req.ifr6_ifindex = (int)index;
    return if_ioctl(AF_INET6, SIOCSIFADDR, &req);
}

int vx_attach_drop_all_filter(int fd) {
    struct sock_filter code[] = { BPF_STMT(BPF_RET | BPF_K, 0) };
    struct sock_fprog program = { .len = 1, .filter = code };
    return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof(program)) < 0 ? -errno : 0;
}

static int fill_set(sigset_t *set, const int *signals, int count) {
    sigemptyset(set);
    for (int i = 0; i < count; i++) sigaddset(set, signals[i]);
    return 0;
}

int vx_block_signals(const int *signals, int count) {
    sigset_t set;
    fill_set(&set, signals, count);
    return -pthread_sigmask(SIG_BLOCK, &set, NULL);
}

int vx_signalfd_for(const int *signals, int count) {
    sigset_t set;
    fill_set(&set, signals, count);
    int rc = pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (rc != 0) return -rc;
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int vx_eventfd(void) {
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int vx_allowed_cpus(int *cpus, int capacity) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) < 0) return -errno;
    int count = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && count < capacity; cpu++) {
        if (CPU_ISSET(cpu, &set)) cpus[count++] = cpu;
    }
    return count;
}

int vx_pin_current_thread(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return -pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

int vx_set_thread_name(const char *name) {
    char short_name[16];
    strncpy(short_name, name, 15);
    short_name[15] = 0;
    return -pthread_setname_np(pthread_self(), short_name);
}

// VXWire.FramePiece is passed to writev/sendmsg as struct iovec: a pointer, then a size_t.
_Static_assert(sizeof(struct iovec) == 16, "iovec size");
_Static_assert(offsetof(struct iovec, iov_len) == 8, "iovec layout");
