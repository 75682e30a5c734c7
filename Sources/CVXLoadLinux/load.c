// Namespaces and packet sockets for tools that drive interfaces from the host side (vxload):
// the pieces of <sched.h> and <linux/if_packet.h> that Swift cannot see. Declared at the end of
// CVXLinux.h.
#define _GNU_SOURCE
#include "CVXLinux.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

int vx_setns_net(int fd) {
    return setns(fd, CLONE_NEWNET) < 0 ? -errno : 0;
}

int vx_packet_socket_open(int ifindex, int receive, int nonblocking) {
    int protocol = receive ? htons(ETH_P_ALL) : 0;
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), protocol);
    if (fd < 0) return -errno;
    if (receive) {
        int one = 1;
        if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)) < 0) {
            int err = errno;
            close(fd);
            return -err;
        }
    }
    struct sockaddr_ll address;
    memset(&address, 0, sizeof(address));
    address.sll_family = AF_PACKET;
    address.sll_protocol = (unsigned short)protocol;
    address.sll_ifindex = ifindex;
    if (bind(fd, (struct sockaddr *)&address, sizeof(address)) < 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    return fd;
}

int vx_packet_join_fanout(int fd, int group) {
    int value = (group & 0xffff) | (PACKET_FANOUT_HASH << 16);
    return setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &value, sizeof(value)) < 0 ? -errno : 0;
}

int vx_socket_path_mtu(int fd, int *mtu) {
    socklen_t length = sizeof(*mtu);
    return getsockopt(fd, IPPROTO_IP, IP_MTU, mtu, &length) < 0 ? -errno : 0;
}

int vx_packet_drops(int fd, unsigned int *drops) {
    struct tpacket_stats stats;
    socklen_t length = sizeof(stats);
    if (getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &stats, &length) < 0) return -errno;
    *drops = stats.tp_drops;
    return 0;
}

#include <linux/errqueue.h>
#include <netinet/in.h>
#include <sys/socket.h>

int vx_enable_error_queue(int fd, int ipv6) {
    int one = 1;
    int rc = ipv6 ? setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &one, sizeof(one))
                  : setsockopt(fd, IPPROTO_IP, IP_RECVERR, &one, sizeof(one));
    return rc < 0 ? -errno : 0;
}

int vx_take_queued_error(int fd) {
    char data[64];
    char control[512];
    struct iovec iov = { .iov_base = data, .iov_len = sizeof(data) };
    struct msghdr msg;
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    if (recvmsg(fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) return 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
        if ((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR) ||
            (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVERR)) {
            struct sock_extended_err *e = (struct sock_extended_err *)CMSG_DATA(c);
            return (int)e->ee_errno;
        }
    }
    return 0;
}
