// The underlay socket's path MTU and its queued ICMP errors (<linux/errqueue.h>): declared in
// CVXLinux.h, used by VXPlatform's DatagramSocket.
#define _GNU_SOURCE
#include "CVXLinux.h"

#include <errno.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <linux/errqueue.h>

int vx_socket_path_mtu(int fd, int *mtu) {
    socklen_t length = sizeof(*mtu);
    return getsockopt(fd, IPPROTO_IP, IP_MTU, mtu, &length) < 0 ? -errno : 0;
}

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
