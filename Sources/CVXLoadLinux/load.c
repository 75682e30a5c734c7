// Namespaces and packet sockets for tools that drive interfaces from the host side (vxload):
// the pieces of <sched.h> and <linux/if_packet.h> that Swift cannot see. Declared in
// CVXLoadLinux.h.
#define _GNU_SOURCE
#include "CVXLoadLinux.h"

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

int vx_packet_drops(int fd, unsigned int *drops) {
    struct tpacket_stats stats;
    socklen_t length = sizeof(stats);
    if (getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &stats, &length) < 0) return -errno;
    *drops = stats.tp_drops;
    return 0;
}
