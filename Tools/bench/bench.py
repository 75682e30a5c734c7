#!/usr/bin/env python3
"""The overlay benchmark: two hosts (network namespaces) over a veth underlay, one topology at a
time, every figure compared with the Linux kernel's own vxlan device measured in the same run.

Run it through Tools/bench/bench.sh (which installs what is missing and builds the router):

    sudo env "PATH=$PATH" Tools/bench/bench.sh [--quick] [--repeat N] [--only veth,kernel,...]

Topologies (underlay 198.18.0.1 <-> 198.18.0.2 on a veth pair, overlay 198.19.0.1 <-> .2, VNI 42,
UDP 4789, overlay MTU 1450):
  veth          plain veth, no overlay: the ceiling (measured on the underlay addresses)
  kernel        the kernel's vxlan device in each host: the anchor every ratio is taken against
  vxr-offloads  vxrouter in each host with TAP offloads (n/a until `vxrouter run --help` shows
                --no-offloads, i.e. until the router has them)
  vxr-plain     vxrouter in each host without TAP offloads (--no-offloads when the flag exists)
  vxr-trust     (only with --only) vxr-offloads with --trust-udp-checksum true: the coalescer
                merges segments without summing them, trusting the verified outer checksum (an
                A/B against vxr-offloads in the same run)
  vxr-flow      (only with --only) vxr-offloads with --steering flow: the kernel picks each
                packet's worker by flow instead of by CPU (an A/B against vxr-offloads)
  ovs           Open vSwitch's userspace datapath (datapath_type=netdev): its own ovsdb-server and
                ovs-vswitchd per host, br-int (overlay address, vxlan port) + br-phy (underlay veth)

Measured for each, repeated --repeat times (medians, min-max spread):
  TCP Gbit/s       iperf3, 4 streams and 1 stream, receiver's figure
  64 B pps         small-packet rate delivered: vxload when built (.build/release/vxload; 64-byte
                   frames into host a's overlay device, counted out of host b's), else
                   iperf3 -u -l 64 -b 0 (one sending thread; the receiver's count)
  ping RTT         median of 100 pings 10 ms apart, µs
  CPU s/GB         during the 4-stream TCP test, CPU time per GB delivered of the benchmark's own
                   processes (iperf3 both ends, the VTEP daemons) and ksoftirqd; for userspace VTEPs
                   also their processes alone (utime+stime from /proc/PID/stat).
  latency          one-way latency of 64-byte frames from host a's overlay device to host b's, by
                   `vxload run` at a fixed 1 kpps and 20 kpps (p50, p99, p99.9 in µs; one clock,
                   both ends in one process): the tail an application notices, which a median RTT
                   hides. Needs vxload.

--confine: each host's processes (iperf3, ping, the VTEP daemons) run on a CPU of their own (host a
on the first CPU this run may use, host b on the second; taskset), closer to two real machines than
the default where everything shares every CPU. The kernel's softirq work runs where the kernel puts
it (for veth and the kernel's vxlan: mostly the sender's CPU), and vxload (both ends in one process)
is not confined. A router started under taskset uses exactly the CPUs it was given.
"""

import argparse
import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CLK_TCK = os.sysconf("SC_CLK_TCK")

UNDERLAY = ("198.18.0.1", "198.18.0.2")
OVERLAY = ("198.19.0.1", "198.19.0.2")
VNI = 42
PORT = 4789
OVERLAY_MTU = 1450

TOPOLOGIES = ["veth", "kernel", "vxr-offloads", "vxr-trust", "vxr-flow", "vxr-plain", "ovs"]
# What a run without --only measures (vxr-trust and vxr-flow are A/B variants, asked for by name).
DEFAULT_TOPOLOGIES = ["veth", "kernel", "vxr-offloads", "vxr-plain", "ovs"]
TITLES = {
    "veth": "plain veth (ceiling)",
    "kernel": "Linux kernel vxlan (anchor)",
    "vxr-offloads": "vxrouter, TAP offloads on",
    "vxr-trust": "vxrouter, offloads on, outer checksums trusted",
    "vxr-flow": "vxrouter, offloads on, steered by flow not CPU",
    "vxr-plain": "vxrouter, TAP offloads off",
    "ovs": "Open vSwitch userspace (netdev)",
}
# (key, column title, unit, higher is better)
METRICS = [
    ("tcp4", "TCP 4 streams", "Gbit/s", True),
    ("tcp1", "TCP 1 stream", "Gbit/s", True),
    ("pps", "64 B pps", "kpps", True),
    ("rtt", "ping RTT", "µs", False),
    ("cpu", "CPU s/GB", "s/GB", False),
    ("vtep_cpu", "CPU s/GB, VTEP processes", "s/GB", False),
]
# One-way latency by vxload at fixed rates: (packets per second, label).
LATENCY_RATES = [(1000, "1 kpps"), (20000, "20 kpps")]
LATENCY_METRICS = [(f"lat{rate}_{p}", f"{label} {title}", "µs", False)
                   for rate, label in LATENCY_RATES for p, title in (("p50", "p50"), ("p99", "p99"), ("p999", "p99.9"))]


def log(message):
    print(f"== {message}", flush=True)


class Failure(Exception):
    pass


def run(args, check=True, timeout=60, capture=True, env=None):
    """Runs a command; returns its stdout. Raises Failure with the command's output on error."""
    try:
        result = subprocess.run(
            args, check=False, timeout=timeout, env=env, text=True,
            stdout=subprocess.PIPE if capture else None, stderr=subprocess.STDOUT if capture else None)
    except subprocess.TimeoutExpired as error:
        raise Failure(f"timed out after {timeout}s: {' '.join(args)}\n{error.output or ''}")
    if check and result.returncode != 0:
        raise Failure(f"exit {result.returncode}: {' '.join(args)}\n{result.stdout or ''}")
    return result.stdout or ""


def cpu_busy_seconds():
    """Busy CPU time of the whole machine so far (all CPUs), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    user, nice, system, idle, iowait, irq, softirq = (int(x) for x in fields[1:8])
    return (user + nice + system + irq + softirq) / CLK_TCK


def process_cpu_seconds(pids):
    """utime + stime of the given processes (all their threads), from /proc/PID/stat."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                after_name = f.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        # Fields 14 and 15 of the line; after the ")" the list starts at field 3.
        total += int(after_name[11]) + int(after_name[12])
    return total / CLK_TCK


class Host:
    """One network namespace; with `cpu`, everything started in it runs on that CPU (--confine)."""

    def __init__(self, name, cpu=None):
        self.name = name
        self.cpu = cpu

    def cmd(self, *args):
        pin = ["taskset", "-c", str(self.cpu)] if self.cpu is not None else []
        return ["ip", "netns", "exec", self.name, *pin, *args]

    def run(self, *args, **kwargs):
        return run(self.cmd(*args), **kwargs)


class Lab:
    """Namespaces and processes of one topology; `close` removes every one of them."""

    def __init__(self, run_id, topology, logs, cpus=(None, None)):
        self.hosts = [Host(f"vxb-{run_id}-{topology[:8]}-{side}", cpu) for side, cpu in zip("ab", cpus)]
        self.processes = []  # (description, Popen)
        self.pidfiles = []  # daemons that detach (OVS): their pid files
        self.logs = logs
        self.vtep_pids = []
        for host in self.hosts:
            run(["ip", "netns", "del", host.name], check=False)
            run(["ip", "netns", "add", host.name])
            host.run("sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1",
                     "net.ipv6.conf.default.disable_ipv6=1")
            host.run("ip", "link", "set", "lo", "up")
        a, b = self.hosts
        run(["ip", "link", "add", "ul0", "netns", a.name, "type", "veth", "peer", "name", "ul0", "netns", b.name])
        for host, address in zip(self.hosts, UNDERLAY):
            host.run("ip", "addr", "add", f"{address}/24", "dev", "ul0")
            host.run("ip", "link", "set", "ul0", "up")

    def spawn(self, host, args, name):
        log_path = os.path.join(self.logs, f"{name}.log")
        out = open(log_path, "w")
        process = subprocess.Popen(host.cmd(*args), stdout=out, stderr=subprocess.STDOUT)
        out.close()
        self.processes.append((name, process, log_path))
        return process

    def close(self):
        for _, process, _ in self.processes:
            if process.poll() is None:
                process.terminate()
        for pidfile in self.pidfiles:
            try:
                with open(pidfile) as f:
                    os.kill(int(f.read().strip()), signal.SIGTERM)
            except (FileNotFoundError, ValueError, ProcessLookupError):
                pass
        deadline = time.time() + 5
        for _, process, _ in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for pidfile in self.pidfiles:
            try:
                with open(pidfile) as f:
                    pid = int(f.read().strip())
            except (FileNotFoundError, ValueError):
                continue
            for _ in range(50):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for host in self.hosts:
            # Anything still inside (nothing should be) goes with the namespace.
            for pid in run(["ip", "netns", "pids", host.name], check=False, timeout=10).split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ValueError, ProcessLookupError):
                    pass
            run(["ip", "netns", "del", host.name], check=False, timeout=20)


# MARK: Topologies

def setup_veth(lab, context):
    return UNDERLAY[1]


def setup_kernel(lab, context):
    for host, local, remote, overlay in zip(lab.hosts, UNDERLAY, reversed(UNDERLAY), OVERLAY):
        host.run("ip", "link", "add", "vx42", "type", "vxlan", "id", str(VNI), "local", local, "remote", remote,
                 "dstport", str(PORT), "dev", "ul0")
        host.run("ip", "link", "set", "vx42", "mtu", str(OVERLAY_MTU), "up")
        host.run("ip", "addr", "add", f"{overlay}/24", "dev", "vx42")
    return OVERLAY[1]


def setup_vxrouter(lab, context, offloads, variant=()):
    """`variant`: extra `run` flags of an A/B row, e.g. ("--steering", "flow")."""
    flags = []
    if context["has_offload_flag"] and not offloads:
        flags = ["--no-offloads"]
    if variant:
        if variant[0] not in context["help_text"]:
            raise Failure(f"this router has no {variant[0]}")
        flags += list(variant)
    if context.get("has_no_control_flag"):
        flags.append("--no-control")
    for side, host, local, remote, overlay in zip("ab", lab.hosts, UNDERLAY, reversed(UNDERLAY), OVERLAY):
        process = lab.spawn(host, [context["vxrouter"], "run", "--vni", str(VNI), "--tap", "vx42", "--local", local,
                                   "--remote", remote, "--address", f"{overlay}/24", "--port", str(PORT), *flags],
                            f"vxrouter-{side}")
        lab.vtep_pids.append(process.pid)
    for name, process, log_path in lab.processes:
        for _ in range(150):
            with open(log_path) as f:
                if "vxrouter ready" in f.read():
                    break
            if process.poll() is not None:
                break
            time.sleep(0.1)
        with open(log_path) as f:
            text = f.read()
        if "vxrouter ready" not in text:
            raise Failure(f"{name} did not become ready:\n{text}")
    return OVERLAY[1]


OVS_SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"


def setup_ovs(lab, context):
    for side, host, local, remote, overlay in zip("ab", lab.hosts, UNDERLAY, reversed(UNDERLAY), OVERLAY):
        state = os.path.join(lab.logs, f"ovs-{side}")
        os.makedirs(state, exist_ok=True)
        env = dict(os.environ, OVS_RUNDIR=state, OVS_DBDIR=state, OVS_LOGDIR=state, OVS_SYSCONFDIR=state)
        db_sock = f"unix:{state}/db.sock"
        run(["ovsdb-tool", "create", f"{state}/conf.db", OVS_SCHEMA], env=env)
        for daemon, first in (("ovsdb-server", [f"{state}/conf.db", f"--remote=punix:{state}/db.sock"]),
                              ("ovs-vswitchd", [db_sock])):
            pidfile = f"{state}/{daemon}.pid"
            lab.pidfiles.append(pidfile)
            run(host.cmd(daemon, *first, f"--pidfile={pidfile}", f"--unixctl={state}/{daemon}.ctl",
                         f"--log-file={state}/{daemon}.log", "--detach", "--no-chdir"), env=env, timeout=30)
            if daemon == "ovsdb-server":
                run(["ovs-vsctl", f"--db={db_sock}", "--no-wait", "init"], env=env)
        with open(f"{state}/ovs-vswitchd.pid") as f:
            lab.vtep_pids.append(int(f.read().strip()))
        with open(f"{state}/ovsdb-server.pid") as f:
            lab.vtep_pids.append(int(f.read().strip()))

        def vsctl(*args):
            run(["ovs-vsctl", f"--db={db_sock}", "--timeout=20", *args], env=env, timeout=30)

        mac = host.run("cat", "/sys/class/net/ul0/address").strip()
        # br-phy owns the underlay address, so OVS's userspace tunnel code can route and ARP for the
        # remote VTEP (its tunnel routing table mirrors the kernel's routes on its own ports).
        vsctl("add-br", "br-phy", "--", "set", "bridge", "br-phy", "datapath_type=netdev",
              f"other_config:hwaddr={mac}")
        vsctl("add-port", "br-phy", "ul0")
        host.run("ip", "addr", "flush", "dev", "ul0")
        host.run("ip", "addr", "add", f"{local}/24", "dev", "br-phy")
        host.run("ip", "link", "set", "br-phy", "up")
        vsctl("add-br", "br-int", "--", "set", "bridge", "br-int", "datapath_type=netdev")
        vsctl("add-port", "br-int", "vx0", "--", "set", "interface", "vx0", "type=vxlan",
              f"options:remote_ip={remote}", f"options:key={VNI}", f"options:dst_port={PORT}")
        host.run("ip", "link", "set", "br-int", "mtu", str(OVERLAY_MTU), "up")
        host.run("ip", "addr", "add", f"{overlay}/24", "dev", "br-int")
        context.setdefault("ovs_ctl", []).append(f"{state}/ovs-vswitchd.ctl")
    return OVERLAY[1]


# MARK: Measurements

def wait_for_ping(lab, target):
    a = lab.hosts[0]
    deadline = time.time() + 15
    last = ""
    while time.time() < deadline:
        result = subprocess.run(a.cmd("ping", "-c", "1", "-W", "1", target), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if result.returncode == 0:
            return
        last = result.stdout
        time.sleep(0.3)
    raise Failure(f"no ping from {a.name} to {target} within 15 s:\n{last}")


def ping_rtt_us(lab, target):
    out = lab.hosts[0].run("ping", "-c", "100", "-i", "0.01", "-W", "1", target, check=False, timeout=30)
    times = [float(t) for t in re.findall(r"time=([0-9.]+) ms", out)]
    if len(times) < 50:
        raise Failure(f"ping lost too much ({len(times)}/100 replies):\n{out[-2000:]}")
    return statistics.median(times) * 1000


def iperf3(lab, args, seconds):
    out = lab.hosts[0].run("iperf3", "-J", "-t", str(seconds), *args, check=False, timeout=seconds + 40)
    try:
        data = json.loads(out)
    except json.JSONDecodeError:
        raise Failure(f"iperf3 {' '.join(args)} printed no JSON:\n{out[-2000:]}")
    if "error" in data:
        raise Failure(f"iperf3 {' '.join(args)}: {data['error']}")
    return data


def ksoftirqd_pids():
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().startswith("ksoftirqd/"):
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


def children_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def tcp(lab, target, streams, seconds, vtep_pids, resident_pids):
    """One iperf3 TCP test; with `vtep_pids`/`resident_pids`, also the CPU it cost per GB.

    Ours: the iperf3 client (a child, by getrusage once reaped), the iperf3 server, the VTEP
    daemons and the kernel's ksoftirqd threads (/proc/PID/stat). The tick-based accounting of this
    kernel charges softirq work (veth, vxlan, TCP receive) to whichever task was running, which on
    an otherwise idle path is one of these. Machine: every CPU's busy time (/proc/stat), which also
    holds whatever else the machine is doing.
    """
    tracked = resident_pids + vtep_pids + ksoftirqd_pids()
    machine_before = cpu_busy_seconds()
    ours_before = process_cpu_seconds(tracked) + children_cpu_seconds()
    vtep_before = process_cpu_seconds(vtep_pids)
    data = iperf3(lab, ["-c", target, "-P", str(streams), "-O", "1"], seconds + 1)
    machine = cpu_busy_seconds() - machine_before
    ours = process_cpu_seconds(tracked) + children_cpu_seconds() - ours_before
    vtep = process_cpu_seconds(vtep_pids) - vtep_before
    received = data["end"]["sum_received"]
    gbytes = received["bytes"] / 1e9
    # The omitted first second is in the CPU figures but not in the bytes: scale CPU to the
    # measured interval so slow start does not count.
    scale = seconds / (seconds + 1)

    def per_gb(cpu):
        return cpu * scale / gbytes if gbytes > 0 else float("nan")

    return {
        "gbits": received["bits_per_second"] / 1e9,
        "cpu": per_gb(ours),
        "machine_cpu": per_gb(machine),
        "vtep_cpu": per_gb(vtep) if vtep_pids else None,
    }


def small_packets_iperf3(lab, target, seconds):
    data = iperf3(lab, ["-c", target, "-u", "-l", "64", "-b", "0"], seconds)
    end = data["end"]
    summary = end.get("sum_received") or end["sum"]
    packets = summary["packets"] - summary.get("lost_packets", 0)
    return packets / summary["seconds"] / 1000


def find_vxload():
    candidate = os.environ.get("VXLOAD_BIN") or os.path.join(ROOT, ".build", "release", "vxload")
    if not (os.path.isfile(candidate) and os.access(candidate, os.X_OK)):
        return None, "not built"
    help_text = run([candidate, "--help"], check=False, timeout=10)
    help_text += run([candidate, "run", "--help"], check=False, timeout=10)
    return candidate, help_text


def small_packets_vxload(lab, device, seconds, vxload):
    """64-byte frames from vxload in host a's overlay device to host b's: `vxload run` drives both
    ends (AF_PACKET on each device) and counts what came out (its `rate_pps`: delivered/s)."""
    a, b = lab.hosts
    out = run([vxload, "run", "--tx", f"iface:{device}", "--tx-netns", a.name, "--rx", f"iface:{device}",
               "--rx-netns", b.name, "--size", "64", "--duration", str(seconds), "--json", "--quiet"],
              check=False, timeout=seconds + 60)
    data = json.loads(out.strip().splitlines()[-1])
    if data.get("rate_pps") is None:
        raise Failure(f"vxload gave no rate: {out[-1000:]}")
    return float(data["rate_pps"]) / 1000


def latency_vxload(lab, device, rate, seconds, vxload):
    """One-way latency of 64-byte frames at a fixed rate, host a's overlay device to host b's
    (`vxload run`: both ends in one process, one clock). Percentiles in µs, and the loss."""
    a, b = lab.hosts
    out = run([vxload, "run", "--tx", f"iface:{device}", "--tx-netns", a.name, "--rx", f"iface:{device}",
               "--rx-netns", b.name, "--size", "64", "--rate", str(rate), "--duration", str(seconds),
               "--json", "--quiet"], check=False, timeout=seconds + 60)
    data = json.loads(out.strip().splitlines()[-1])
    latency = data.get("latency_us")
    if not latency:
        raise Failure(f"vxload gave no latency at {rate} pps: {out[-1000:]}")
    return latency


def measure(lab, topology, target, context, args, results):
    a, b = lab.hosts
    server = lab.spawn(b, ["iperf3", "-s", "-B", target], "iperf3-server")
    time.sleep(0.3)
    if server.poll() is not None:
        raise Failure("iperf3 server exited at start")
    seconds = args.seconds
    samples = {key: [] for key, *_ in METRICS + LATENCY_METRICS}
    machine = []
    background = []
    for repeat in range(args.repeat):
        # What the machine does without us (other builds on a shared VM), for the footnote.
        before = cpu_busy_seconds()
        time.sleep(0.5)
        background.append((cpu_busy_seconds() - before) / 0.5)
        t4 = tcp(lab, target, 4, seconds, lab.vtep_pids, [server.pid])
        t1 = tcp(lab, target, 1, seconds, [], [server.pid])
        pps = None
        if context["vxload"]:
            try:
                pps = small_packets_vxload(lab, context["device"], seconds, context["vxload"])
            except (Failure, OSError, ValueError, KeyError, IndexError, subprocess.TimeoutExpired) as error:
                log(f"vxload failed ({str(error).splitlines()[0] if str(error) else type(error).__name__}); "
                    "small packets by iperf3 from here on")
                context["vxload"] = None
        if pps is None:
            pps = small_packets_iperf3(lab, target, seconds)
        rtt = ping_rtt_us(lab, target)
        latencies = []
        if context["vxload"] and not args.no_latency:
            for rate, _ in LATENCY_RATES:
                # At least 5,000 samples at 1 kpps, so p99.9 rests on a handful of frames, not one.
                duration = max(seconds, 5) if rate <= 1000 else seconds
                try:
                    latency = latency_vxload(lab, context["device"], rate, duration, context["vxload"])
                except (Failure, OSError, ValueError, KeyError, IndexError, subprocess.TimeoutExpired) as error:
                    log(f"vxload latency at {rate} pps failed: {str(error).splitlines()[0] if str(error) else error!r}")
                    continue
                for p in ("p50", "p99", "p999"):
                    samples[f"lat{rate}_{p}"].append(float(latency[p]))
                latencies.append(f"{rate // 1000}k p50/p99/p99.9 {latency['p50']:.0f}/{latency['p99']:.0f}/"
                                 f"{latency['p999']:.0f} µs")
        samples["tcp4"].append(t4["gbits"])
        samples["tcp1"].append(t1["gbits"])
        samples["pps"].append(pps)
        samples["rtt"].append(rtt)
        samples["cpu"].append(t4["cpu"])
        machine.append(t4["machine_cpu"])
        if t4["vtep_cpu"] is not None:
            samples["vtep_cpu"].append(t4["vtep_cpu"])
        print(f"   {topology} run {repeat + 1}/{args.repeat}: TCP×4 {t4['gbits']:.2f} Gbit/s, "
              f"TCP×1 {t1['gbits']:.2f} Gbit/s, {pps:.1f} kpps, RTT {rtt:.0f} µs, "
              f"{t4['cpu']:.2f} CPU s/GB ({t4['machine_cpu']:.2f} machine-wide)" + (f" ({t4['vtep_cpu']:.2f} in the VTEPs)"
                                             if t4["vtep_cpu"] is not None else "")
              + (("; " + ", ".join(latencies)) if latencies else ""), flush=True)
    results[topology] = {"samples": samples, "background": statistics.median(background),
                         "machine_cpu": statistics.median(machine)}


# MARK: Report

def machine_description():
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    return (f"{os.cpu_count()} vCPU, {model}, {mem_kb / 1048576:.0f} GiB RAM, Linux {platform.release()}, "
            f"{time.strftime('%Y-%m-%d %H:%M %Z')}")


def fmt(value):
    if value is None:
        return "n/a"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def report(results, failures, context, args):
    kernel = results.get("kernel", {}).get("samples", {})
    lines = []
    lines.append(f"Machine: {machine_description()}.  ")
    lines.append(f"Each figure: median of {args.repeat} runs of {args.seconds} s (min–max), and ×ratio to the "
                 f"kernel's vxlan in this run (higher is better for TCP and pps, lower for RTT and CPU). "
                 f"Small packets by {'vxload' if context['vxload'] else 'iperf3 -u -l 64 -b 0'}.")
    if args.confine:
        lines.append(f"Confined: host a's processes on CPU {context['cpus'][0]}, host b's on CPU {context['cpus'][1]} "
                     "(taskset; kernel softirq work and vxload unconfined).")
    medians = {}

    def table(metrics):
        lines.append("")
        lines.append("| path | " + " | ".join(f"{title} ({unit})" for _, title, unit, _ in metrics) + " |")
        lines.append("|---|" + "---:|" * len(metrics))
        for topology in TOPOLOGIES:
            if topology not in context["selected"]:
                continue
            title = TITLES[topology]
            if topology in failures:
                lines.append(f"| {title} | " + " | ".join(["failed"] * len(metrics)) + " |")
                continue
            if topology not in results:
                lines.append(f"| {title} | " + " | ".join(["n/a"] * len(metrics)) + " |")
                continue
            cells = []
            for key, _, _, _ in metrics:
                samples = results[topology]["samples"][key]
                if not samples:
                    cells.append("—")
                    continue
                median = statistics.median(samples)
                medians[(topology, key)] = median
                cell = f"{fmt(median)} ({fmt(min(samples))}–{fmt(max(samples))})"
                if kernel.get(key):
                    cell += f" ×{median / statistics.median(kernel[key]):.2f}"
                cells.append(cell)
            lines.append(f"| {title} | " + " | ".join(cells) + " |")

    table(METRICS)
    if any(results[t]["samples"][key] for t in results for key, *_ in LATENCY_METRICS):
        lines.append("")
        lines.append("One-way latency of 64-byte frames, overlay device to overlay device, by `vxload run` at a fixed "
                     "rate (µs; median over the runs of each run's percentile):")
        table(LATENCY_METRICS)
    lines.append("")
    for topology, reason in failures.items():
        lines.append(f"- **{TITLES[topology]} failed**: {reason}")
    if "vxr-offloads" in context["selected"] and "vxr-offloads" not in results and "vxr-offloads" not in failures:
        lines.append("- vxrouter with TAP offloads: n/a — `vxrouter run --help` has no `--no-offloads` yet, "
                     "so this router has no offloads; the \"offloads off\" row is the router as it is.")
    if results:
        lines.append("- Other load on the machine, in busy CPUs (sampled 0.5 s before each repeat, median), and the "
                     "machine-wide busy CPU s/GB of the TCP test (/proc/stat): "
                     + ", ".join(f"{t} {r['background']:.2f} / {fmt(r['machine_cpu'])}" for t, r in results.items())
                     + ". Where the machine was otherwise idle the machine-wide figure and the CPU s/GB column "
                       "should agree; where it was not, the difference is other people's work, and the "
                       "throughput figures of that row were measured on a busier machine.")
    lines.append("- CPU s/GB: CPU time per GB delivered during the 4-stream TCP test, of the benchmark's own "
                 "processes — the iperf3 client and server, the VTEP daemons if any — plus the kernel's "
                 "ksoftirqd threads (getrusage and /proc/PID/stat). This kernel's tick-based accounting "
                 "charges softirq work (veth, the kernel's vxlan, TCP) to the task that was running, so the "
                 "kernel's VXLAN work lands in these figures too; the comparison across rows is fair, the "
                 "absolute figure is a tick-sampled estimate. The machine-wide /proc/stat busy time (above) "
                 "is not the column because on a shared VM it carries other people's builds. "
                 "CPU s/GB, VTEP processes: utime+stime of vxrouter (both hosts) or ovsdb-server + "
                 "ovs-vswitchd; the kernel's vxlan has no process.")
    if context["vxload"]:
        lines.append("- 64 B pps: 64-byte frames per second delivered, by `vxload run` (AF_PACKET into host a's "
                     "overlay device, counted out of host b's; the veth row sends on the veth itself).")
    else:
        lines.append("- 64 B pps: the iperf3 receiver's count of 64-byte UDP payloads (106-byte inner frames) "
                     "per second; iperf3's one sending thread limits the fast paths, so it shows relative cost.")

    # Targets for the router (offloads on when it has them, else the router as it is).
    row = "vxr-offloads" if "vxr-offloads" in results else "vxr-plain"
    if row in results and "kernel" in results:
        def ratio(key):
            k = medians.get(("kernel", key))
            v = medians.get((row, key))
            return v / k if k and v is not None else None

        checks = []
        goals = [("tcp4", "TCP (4 streams) ≥ 0.8×", 0.8, True),
                 ("tcp1", "TCP (1 stream) ≥ 0.7×", 0.7, True),
                 ("pps", "64 B pps ≥ 1.2×", 1.2, True),
                 ("rtt", "ping RTT ≤ 2.5×", 2.5, False),
                 ("cpu", "CPU s/GB ≤ 1.5×", 1.5, False)]
        for rate, label in LATENCY_RATES:
            goals += [(f"lat{rate}_p50", f"{label} p50 ≤ 2×", 2.0, False),
                      (f"lat{rate}_p99", f"{label} p99 ≤ 3×", 3.0, False),
                      (f"lat{rate}_p999", f"{label} p99.9 ≤ 5×", 5.0, False)]
        for key, label, goal, higher in goals:
            r = ratio(key)
            if r is None:
                continue
            ok = r >= goal if higher else r <= goal
            checks.append(f"{label}: ×{r:.2f} {'met' if ok else 'NOT met'}")
        if "ovs" in results:
            behind = []
            for key, title, _, higher in METRICS + LATENCY_METRICS:
                mine, theirs = medians.get((row, key)), medians.get(("ovs", key))
                if mine is None or theirs is None:
                    continue
                if (mine <= theirs) if higher else (mine >= theirs):
                    behind.append(title)
            checks.append("ahead of OVS userspace on every figure: "
                          + ("met" if not behind else "NOT met (" + ", ".join(behind) + ")"))
        lines.append("")
        lines.append(f"Targets ({TITLES[row]}, ratios to the kernel's vxlan): " + "; ".join(checks) + ".")
    return "\n".join(lines) + "\n"


# MARK: Main

def main():
    parser = argparse.ArgumentParser(description="vxrouter overlay benchmark (see Tools/bench/bench.sh)")
    parser.add_argument("--quick", action="store_true", help="short runs (~3 minutes in all)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement (default 3)")
    parser.add_argument("--seconds", type=int, help="seconds per iperf3 run (default 5, --quick 2)")
    parser.add_argument("--only", help="comma-separated topologies: " + ",".join(TOPOLOGIES))
    parser.add_argument("--confine", action="store_true",
                        help="run each host's processes on a CPU of its own (taskset): closer to two machines")
    parser.add_argument("--no-latency", action="store_true", help="skip the vxload latency runs")
    parser.add_argument("--output", default=os.path.join(ROOT, "Tools", "bench", "last-run.md"),
                        help="where the markdown table is written (default Tools/bench/last-run.md)")
    args = parser.parse_args()
    if args.seconds is None:
        args.seconds = 2 if args.quick else 5
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    selected = DEFAULT_TOPOLOGIES if not args.only else [t.strip() for t in args.only.split(",") if t.strip()]
    for t in selected:
        if t not in TOPOLOGIES:
            parser.error(f"unknown topology {t!r}; known: {', '.join(TOPOLOGIES)}")
    if os.geteuid() != 0:
        sys.exit("needs root (network namespaces, TAP devices): sudo Tools/bench/bench.sh")
    cpus = (None, None)
    if args.confine:
        allowed = sorted(os.sched_getaffinity(0))
        if len(allowed) < 2 or not shutil.which("taskset"):
            parser.error("--confine needs two CPUs and taskset (util-linux)")
        cpus = (allowed[0], allowed[1])

    vxrouter = os.environ.get("VXROUTER_BIN") or os.path.join(ROOT, ".build", "release", "vxrouter")
    help_text = run([vxrouter, "run", "--help"], check=False, timeout=20) if os.path.exists(vxrouter) else ""
    vxload, vxload_help = find_vxload()
    # Use vxload only if it offers the interface small_packets_vxload drives.
    if vxload and not all(word in vxload_help for word in ("run", "--tx-netns", "--rx-netns", "--json")):
        log(f"vxload at {vxload} does not offer run --tx-netns/--rx-netns/--json; using iperf3 for small packets")
        vxload = None
    context = {
        "vxrouter": vxrouter,
        "has_offload_flag": "--no-offloads" in help_text,
        "help_text": help_text,
        # The default control socket is one path for every namespace: the benchmark needs no control.
        "has_no_control_flag": "--no-control" in help_text,
        "vxload": vxload,
        "selected": selected,
        "cpus": cpus,
    }
    run_id = os.environ.get("VXB_RUN_ID", str(os.getpid()))
    logs = tempfile.mkdtemp(prefix=f"vxb-{run_id}-", dir=os.environ.get("TMPDIR", "/tmp"))
    log(f"vxrouter {vxrouter} (TAP offloads: {'yes' if context['has_offload_flag'] else 'not in this build'}); "
        f"small packets by {vxload or 'iperf3'}; logs in {logs}")

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    results, failures = {}, {}
    interrupted = False
    try:
        for topology in selected:
            if topology == "vxr-offloads" and not context["has_offload_flag"]:
                log(f"{topology}: n/a (no --no-offloads in `vxrouter run --help`)")
                continue
            if topology.startswith("vxr") and not os.path.exists(vxrouter):
                failures[topology] = f"no router binary at {vxrouter}"
                continue
            if topology == "ovs" and not shutil.which("ovs-vswitchd"):
                failures[topology] = "ovs-vswitchd not installed (openvswitch-switch)"
                continue
            log(f"{topology}: {TITLES[topology]}")
            lab_logs = os.path.join(logs, topology)
            os.makedirs(lab_logs)
            lab = Lab(run_id, topology, lab_logs, cpus)
            try:
                context["device"] = {"veth": "ul0", "ovs": "br-int"}.get(topology, "vx42")
                if topology == "veth":
                    target = setup_veth(lab, context)
                elif topology == "kernel":
                    target = setup_kernel(lab, context)
                elif topology == "vxr-offloads":
                    target = setup_vxrouter(lab, context, offloads=True)
                elif topology == "vxr-trust":
                    target = setup_vxrouter(lab, context, offloads=True, variant=("--trust-udp-checksum", "true"))
                elif topology == "vxr-flow":
                    target = setup_vxrouter(lab, context, offloads=True, variant=("--steering", "flow"))
                elif topology == "vxr-plain":
                    target = setup_vxrouter(lab, context, offloads=False)
                else:
                    target = setup_ovs(lab, context)
                wait_for_ping(lab, target)
                measure(lab, topology, target, context, args, results)
            except Failure as error:
                print(f"!! {topology} FAILED: {error}", file=sys.stderr, flush=True)
                failures[topology] = str(error).splitlines()[0]
            finally:
                lab.close()
    except KeyboardInterrupt:
        interrupted = True
        print("\n!! interrupted; cleaned up", file=sys.stderr)

    table = report(results, failures, context, args)
    print()
    print(table)
    if not interrupted and results:
        with open(args.output, "w") as f:
            f.write(table)
        log(f"table written to {args.output}")
    if interrupted:
        sys.exit(130)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
