// CPU steering (README "CPU steering"): a packet stays on the CPU where it arrived. Two small BPF
// programs, written out as instructions here so nothing but the kernel is needed at run time:
//
// - on a TAP (TUNSETSTEERINGEBPF, eBPF socket filter): the queue a frame the host sends is put on
//   is the one of the worker pinned to the sending CPU, so that worker is woken on the CPU that is
//   already running, not across CPUs. A flow keeps its queue while it is busy (packets less than
//   `sticky_ns` apart) and only then follows its sender to another CPU, so it is never reordered
//   by two workers holding parts of it at once.
// - on the UDP receive sockets' SO_REUSEPORT group (classic BPF): the socket a datagram goes to is
//   the one of the worker pinned to the CPU that received it (the NIC queue's CPU; over veth the
//   sending CPU). A CPU without a worker falls back to the kernel's usual pick (by hash).
#define _GNU_SOURCE
#include "CVXLinux.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <linux/bpf.h>
#include <linux/filter.h>
#include <linux/if_tun.h>

static int bpf_call(int cmd, union bpf_attr *attr) {
    long r = syscall(__NR_bpf, cmd, attr, sizeof(*attr));
    return r < 0 ? -errno : (int)r;
}

static int map_create(uint32_t type, uint32_t key_size, uint32_t value_size, uint32_t entries) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.map_type = type;
    attr.key_size = key_size;
    attr.value_size = value_size;
    attr.max_entries = entries;
    return bpf_call(BPF_MAP_CREATE, &attr);
}

// The instruction forms the program uses (as the kernel's own samples spell them).
#define INSN(c, d, s, o, i) ((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })
#define MOV64_REG(d, s) INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define MOV64_IMM(d, i) INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define ADD64_IMM(d, i) INSN(BPF_ALU64 | BPF_ADD | BPF_K, d, 0, 0, i)
#define SUB64_IMM(d, i) INSN(BPF_ALU64 | BPF_SUB | BPF_K, d, 0, 0, i)
#define SUB64_REG(d, s) INSN(BPF_ALU64 | BPF_SUB | BPF_X, d, s, 0, 0)
#define LDX(size, d, s, o) INSN(BPF_LDX | BPF_MEM | (size), d, s, o, 0)
#define STX(size, d, s, o) INSN(BPF_STX | BPF_MEM | (size), d, s, o, 0)
#define ST_IMM(size, d, o, i) INSN(BPF_ST | BPF_MEM | (size), d, 0, o, i)
#define JEQ_IMM(d, i, o) INSN(BPF_JMP | BPF_JEQ | BPF_K, d, 0, o, i)
#define JNE_IMM(d, i, o) INSN(BPF_JMP | BPF_JNE | BPF_K, d, 0, o, i)
#define XOR64_REG(d, s) INSN(BPF_ALU64 | BPF_XOR | BPF_X, d, s, 0, 0)
#define LD_ABS_W(offset) INSN(BPF_LD | BPF_ABS | BPF_W, 0, 0, 0, offset)
#define MOD64_IMM(d, i) INSN(BPF_ALU64 | BPF_MOD | BPF_K, d, 0, 0, i)
#define JSGT_IMM(d, i, o) INSN(BPF_JMP | BPF_JSGT | BPF_K, d, 0, o, i)
#define JA(o) INSN(BPF_JMP | BPF_JA, 0, 0, o, 0)
#define CALL(f) INSN(BPF_JMP | BPF_CALL, 0, 0, 0, f)
#define EXIT() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
#define LD_MAP_FD(d, fd) INSN(BPF_LD | BPF_DW | BPF_IMM, d, BPF_PSEUDO_MAP_FD, 0, fd), INSN(0, 0, 0, 0, 0)

enum { HASH = offsetof(struct __sk_buff, hash) };

int vx_tap_steering_program(const int *worker_cpus, int workers, uint32_t sticky_ns) {
    if (workers <= 0 || workers > 1024 || sticky_ns > INT32_MAX) return -EINVAL;
    int max_cpu = 0;
    for (int w = 0; w < workers; w++) {
        if (worker_cpus[w] < 0) return -EINVAL;
        if (worker_cpus[w] > max_cpu) max_cpu = worker_cpus[w];
    }
    // CPU → queue + 1 (an array map reads 0 for a CPU no worker is pinned to).
    int cpu_map = map_create(BPF_MAP_TYPE_ARRAY, 4, 4, (uint32_t)max_cpu + 1);
    if (cpu_map < 0) return cpu_map;
    for (int w = 0; w < workers; w++) {
        uint32_t key = (uint32_t)worker_cpus[w], value = (uint32_t)w + 1;
        union bpf_attr attr;
        memset(&attr, 0, sizeof(attr));
        attr.map_fd = (uint32_t)cpu_map;
        attr.key = (uint64_t)(uintptr_t)&key;
        attr.value = (uint64_t)(uintptr_t)&value;
        int rc = bpf_call(BPF_MAP_UPDATE_ELEM, &attr);
        if (rc < 0) { close(cpu_map); return rc; }
    }
    // Flow hash → { queue, pad, last packet's time in ns }; the least recently used flows go first.
    int flow_map = map_create(BPF_MAP_TYPE_LRU_HASH, 4, 16, 16384);
    if (flow_map < 0) { close(cpu_map); return flow_map; }

    // r6 ctx, r8 the flow's key, r7 the sending CPU's queue, r9 now.
    struct bpf_insn program[] = {
        /*  0 */ MOV64_REG(BPF_REG_6, BPF_REG_1),
        // The flow's key: the socket's flow hash; frames without one (a packet socket's, an ICMP
        // socket's) are keyed by the words where IPv4 keeps its addresses and ports — for other
        // frames just more header bytes, as good a key. A frame too short for them ends the
        // program (LD_ABS) with 0: queue 0, always the same, never reordered.
        /*  1 */ LDX(BPF_W, BPF_REG_8, BPF_REG_6, HASH),
        /*  2 */ JNE_IMM(BPF_REG_8, 0, 6),                // → 9
        /*  3 */ LD_ABS_W(26),
        /*  4 */ MOV64_REG(BPF_REG_8, BPF_REG_0),
        /*  5 */ LD_ABS_W(30),
        /*  6 */ XOR64_REG(BPF_REG_8, BPF_REG_0),
        /*  7 */ LD_ABS_W(34),
        /*  8 */ XOR64_REG(BPF_REG_8, BPF_REG_0),
        /*  9 */ CALL(BPF_FUNC_get_smp_processor_id),
        /* 10 */ STX(BPF_W, BPF_REG_10, BPF_REG_0, -4),
        /* 11 */ LD_MAP_FD(BPF_REG_1, cpu_map),
        /* 13 */ MOV64_REG(BPF_REG_2, BPF_REG_10),
        /* 14 */ ADD64_IMM(BPF_REG_2, -4),
        /* 15 */ CALL(BPF_FUNC_map_lookup_elem),
        /* 16 */ JEQ_IMM(BPF_REG_0, 0, 4),                // → 21: CPU beyond the map
        /* 17 */ LDX(BPF_W, BPF_REG_7, BPF_REG_0, 0),
        /* 18 */ JEQ_IMM(BPF_REG_7, 0, 2),                // → 21: no worker on this CPU
        /* 19 */ SUB64_IMM(BPF_REG_7, 1),
        /* 20 */ JA(2),                                   // → 23
        // A CPU without a worker: a queue by the flow's key, kept like any other (the flow may
        // move between such a CPU and one with a worker).
        /* 21 */ MOV64_REG(BPF_REG_7, BPF_REG_8),
        /* 22 */ MOD64_IMM(BPF_REG_7, workers),
        /* 23 */ CALL(BPF_FUNC_ktime_get_ns),
        /* 24 */ MOV64_REG(BPF_REG_9, BPF_REG_0),
        /* 25 */ STX(BPF_W, BPF_REG_10, BPF_REG_8, -8),
        /* 26 */ LD_MAP_FD(BPF_REG_1, flow_map),
        /* 28 */ MOV64_REG(BPF_REG_2, BPF_REG_10),
        /* 29 */ ADD64_IMM(BPF_REG_2, -8),
        /* 30 */ CALL(BPF_FUNC_map_lookup_elem),
        /* 31 */ JEQ_IMM(BPF_REG_0, 0, 9),                // → 41: a new flow
        /* 32 */ LDX(BPF_DW, BPF_REG_1, BPF_REG_0, 8),
        /* 33 */ STX(BPF_DW, BPF_REG_0, BPF_REG_9, 8),
        /* 34 */ MOV64_REG(BPF_REG_2, BPF_REG_9),
        /* 35 */ SUB64_REG(BPF_REG_2, BPF_REG_1),
        /* 36 */ JSGT_IMM(BPF_REG_2, (int32_t)sticky_ns, 2), // → 39: idle long enough to move (signed:
        //          another CPU may just have stored a later time)
        /* 37 */ LDX(BPF_W, BPF_REG_0, BPF_REG_0, 0),    // busy: the queue it had
        /* 38 */ EXIT(),
        /* 39 */ STX(BPF_W, BPF_REG_0, BPF_REG_7, 0),
        /* 40 */ JA(11),                                  // → 52
        /* 41 */ STX(BPF_W, BPF_REG_10, BPF_REG_7, -24),
        /* 42 */ ST_IMM(BPF_W, BPF_REG_10, -20, 0),
        /* 43 */ STX(BPF_DW, BPF_REG_10, BPF_REG_9, -16),
        /* 44 */ LD_MAP_FD(BPF_REG_1, flow_map),
        /* 46 */ MOV64_REG(BPF_REG_2, BPF_REG_10),
        /* 47 */ ADD64_IMM(BPF_REG_2, -8),
        /* 48 */ MOV64_REG(BPF_REG_3, BPF_REG_10),
        /* 49 */ ADD64_IMM(BPF_REG_3, -24),
        /* 50 */ MOV64_IMM(BPF_REG_4, BPF_ANY),
        /* 51 */ CALL(BPF_FUNC_map_update_elem),
        /* 52 */ MOV64_REG(BPF_REG_0, BPF_REG_7),
        /* 53 */ EXIT(),
    };
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
    attr.insns = (uint64_t)(uintptr_t)program;
    attr.insn_cnt = sizeof(program) / sizeof(program[0]);
    attr.license = (uint64_t)(uintptr_t)"GPL";
    int prog = bpf_call(BPF_PROG_LOAD, &attr);
    // The program holds its maps: their fds are not needed afterwards.
    close(cpu_map);
    close(flow_map);
    return prog;
}

int vx_tap_set_steering(int tap_fd, int prog_fd) {
    // The TAP holds the program (-1 takes it away).
    return ioctl(tap_fd, TUNSETSTEERINGEBPF, &prog_fd) < 0 ? -errno : 0;
}

int vx_bpf_test_run(int prog_fd, const void *frame, uint32_t length, uint32_t *result) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.test.prog_fd = (uint32_t)prog_fd;
    attr.test.data_in = (uint64_t)(uintptr_t)frame;
    attr.test.data_size_in = length;
    attr.test.repeat = 1;
    int rc = bpf_call(BPF_PROG_TEST_RUN, &attr);
    if (rc < 0) return rc;
    *result = attr.test.retval;
    return 0;
}

int vx_reuseport_steer_by_cpu(int socket_fd, const int *worker_cpus, int workers) {
    if (workers <= 0 || workers > 1024) return -EINVAL;
    // ld cpu; then per worker: jeq cpu_w → ret w; else an index past the group (the kernel then
    // picks by hash).
    struct sock_filter code[2 + 2 * 1024];
    int n = 0;
    code[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_AD_OFF + SKF_AD_CPU));
    for (int w = 0; w < workers; w++) {
        code[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)worker_cpus[w], 0, 1);
        code[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, (uint32_t)w);
    }
    code[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0xffffffffu);
    struct sock_fprog program = { .len = (unsigned short)n, .filter = code };
    return setsockopt(socket_fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &program, sizeof(program)) < 0 ? -errno : 0;
}
