// CVXLoadLinux: what the load generator (Tools/vxload) needs from Linux and Swift cannot see:
// namespaces and packet sockets, to drive interfaces from the host side. Kept out of CVXLinux so
// the router's shim carries only what the router calls. Each declaration says why it is here.
#pragma once

// setns() is a _GNU_SOURCE declaration and CLONE_NEWNET a <sched.h> macro under it. Moves the
// calling thread into the network namespace `fd` refers to. Returns 0 or -errno.
int vx_setns_net(int fd);

// AF_PACKET: struct sockaddr_ll and the PACKET_* options live in <linux/if_packet.h>, which the
// Glibc module does not import. Opens a SOCK_RAW packet socket bound to interface `ifindex`
// (close-on-exec; non-blocking when `nonblocking`). With `receive` it takes every frame the
// interface receives (ETH_P_ALL) but not the ones this host sends on it (PACKET_IGNORE_OUTGOING);
// without, it is bound to protocol 0 and so queues nothing: a send-only socket. Returns the fd,
// or -errno.
int vx_packet_socket_open(int ifindex, int receive, int nonblocking);

// PACKET_FANOUT (hash mode): sockets that join one group share an interface's frames by flow.
int vx_packet_join_fanout(int fd, int group);

// Kernel drops on a packet socket since the last call (PACKET_STATISTICS resets on read).
int vx_packet_drops(int fd, unsigned int *drops);
