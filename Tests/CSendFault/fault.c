// See CSendFault.h. Test-only: never linked into vxrouter.
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "CSendFault.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

static __thread int fail_gso;
static __thread unsigned long long gso_messages;

void vx_test_fail_gso_sends(int on) { fail_gso = on; }

unsigned long long vx_test_gso_messages(void) { return gso_messages; }

static int is_gso(struct msghdr *msg) {
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(msg); cm != NULL; cm = CMSG_NXTHDR(msg, cm)) {
        if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_SEGMENT) return 1;
    }
    return 0;
}

int sendmmsg(int fd, struct mmsghdr *msgs, unsigned int count, int flags) {
    unsigned int passed = count;
    for (unsigned int i = 0; i < count; i++) {
        if (!is_gso(&msgs[i].msg_hdr)) continue;
        gso_messages++;
        if (fail_gso && passed == count) passed = i;
    }
    if (passed == 0) {
        errno = EIO;
        return -1;
    }
    return (int)syscall(SYS_sendmmsg, fd, msgs, passed, flags);
}
