#!/usr/bin/env bash
# The overlay benchmark, one command: vxrouter against the Linux kernel's vxlan, Open vSwitch's
# userspace datapath and plain veth, each between two network namespaces over a veth underlay.
# Prints a markdown table (medians, min–max, ratios to the kernel) and writes it to
# Tools/bench/last-run.md. Full run ~13 minutes, --quick ~4.
#
#   sudo env "PATH=$PATH" Tools/bench/bench.sh [--quick] [--confine] [--repeat N] [--seconds S] [--only a,b] [--output FILE]
#
# Installs what it needs when missing (iperf3, openvswitch-switch, iputils-ping, procps,
# iproute2, kmod; apt-get update only then), builds the release router unless VXROUTER_BIN is
# set (SCRATCH_PATH picks the build directory), and removes every namespace, router and OVS
# daemon it started — on failure and Ctrl-C too. VXLOAD_BIN overrides where vxload is looked for
# (default: built here, release); without it, small packets are sent by iperf3 -u -l 64 and the
# latency percentiles are left out. --confine runs each host on a CPU of its own.
# The measuring and the table are Tools/bench/bench.py (Python 3 standard library).
set -euo pipefail
cd "$(dirname "$0")/../.."

for argument in "$@"; do
    case "$argument" in
        -h | --help) exec python3 Tools/bench/bench.py --help ;;
    esac
done
[[ $(id -u) -eq 0 ]] || { echo "needs root (network namespaces, TAP devices): sudo env \"PATH=\$PATH\" $0 $*" >&2; exit 1; }

say() { printf '== %s\n' "$*"; }

# 1. Tools, installed only when missing.
missing=()
for package in iproute2 iputils-ping procps kmod python3 iperf3 openvswitch-switch; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done
if ((${#missing[@]})); then
    say "installing ${missing[*]}"
    apt-get update
    # No service start: each benchmark host runs its own OVS daemons.
    DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y --no-install-recommends "${missing[@]}"
fi
if command -v modprobe >/dev/null; then
    for module in tun veth vxlan; do modprobe -q "$module" 2>/dev/null || true; done
fi

# 2. Leftovers of earlier runs that died without cleaning up: vxb-<pid>-... whose pid is gone.
for namespace in $(ip netns list 2>/dev/null | awk '$1 ~ /^vxb-/ {print $1}'); do
    owner=$(cut -d- -f2 <<<"$namespace")
    if [[ $owner =~ ^[0-9]+$ ]] && kill -0 "$owner" 2>/dev/null; then continue; fi
    for pid in $(timeout 5 ip netns pids "$namespace" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    timeout 10 ip netns del "$namespace" 2>/dev/null && say "removed stale namespace $namespace" || true
done

# 3. The router under test, and vxload (the 64 B rate and the latency percentiles).
scratch=()
if [[ -n ${SCRATCH_PATH:-} ]]; then scratch=(--scratch-path "$SCRATCH_PATH"); fi
if [[ -z ${VXROUTER_BIN:-} ]]; then
    say "building vxrouter (release)"
    swift build "${scratch[@]}" -c release --product vxrouter
    VXROUTER_BIN="$(swift build "${scratch[@]}" -c release --show-bin-path)/vxrouter"
fi
if [[ -z ${VXLOAD_BIN:-} ]]; then
    say "building vxload (release)"
    if swift build "${scratch[@]}" -c release --product vxload; then
        export VXLOAD_BIN="$(swift build "${scratch[@]}" -c release --show-bin-path)/vxload"
    else
        say "vxload did not build: small packets by iperf3, no latency percentiles"
    fi
fi
export VXROUTER_BIN

# 4. Measure. bench.py removes what it made; this trap is the backstop if it is killed outright.
export VXB_RUN_ID=$$
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    for namespace in $(ip netns list 2>/dev/null | awk -v prefix="vxb-$VXB_RUN_ID-" 'index($1, prefix) == 1 {print $1}'); do
        for pid in $(timeout 5 ip netns pids "$namespace" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
        timeout 10 ip netns del "$namespace" 2>/dev/null || true
    done
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
python3 Tools/bench/bench.py "$@"
