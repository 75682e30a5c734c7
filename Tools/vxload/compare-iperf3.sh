#!/usr/bin/env bash
# vxload against `iperf3 -u -l 64 -b 0` as a small-packet generator, on this machine: two network
# namespaces over a veth, with the kernel's vxlan on top, packets per second received at the far
# end, median of N runs (default 3). Needs root, iperf3, python3 and a vxload binary.
#
#   sudo env "PATH=$PATH" Tools/vxload/compare-iperf3.sh [seconds-per-run] [runs]
#
# VXLOAD_BIN picks the binary (default .build/release/vxload). Frames are the same size for
# both: iperf3's 64-byte UDP payload is a 106-byte Ethernet frame, so vxload sends --size 106;
# the 64-byte minimum frame is shown too. Namespaces are vxcmp-<pid>-a/b, removed on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-5}
runs=${2:-3}
vxload=${VXLOAD_BIN:-.build/release/vxload}
[[ -x $vxload ]] || { echo "no vxload at $vxload: swift build -c release --product vxload" >&2; exit 2; }
command -v iperf3 >/dev/null || { echo "iperf3 is not installed" >&2; exit 2; }

a=vxcmp-$$-a
b=vxcmp-$$-b
cleanup() {
    for ns in $a $b; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
    done
}
trap cleanup EXIT

for ns in $a $b; do
    ip netns add "$ns"
    ip netns exec "$ns" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$ns" link set lo up
done
ip link add cmpa$$ netns $a type veth peer name cmpb$$ netns $b
ip -n $a addr add 198.18.0.1/24 dev cmpa$$
ip -n $b addr add 198.18.0.2/24 dev cmpb$$
ip -n $a link set cmpa$$ up
ip -n $b link set cmpb$$ up
for side in "$a 198.18.0.1 198.18.0.2 cmpa$$ 198.19.0.1" "$b 198.18.0.2 198.18.0.1 cmpb$$ 198.19.0.2"; do
    read -r ns local peer dev overlay <<<"$side"
    ip -n "$ns" link add vxk type vxlan id 42 local "$local" dstport 4789 dev "$dev"
    ip netns exec "$ns" bridge fdb append 00:00:00:00:00:00 dev vxk dst "$peer"
    ip -n "$ns" addr add "$overlay/24" dev vxk
    ip -n "$ns" link set vxk up
done
ip netns exec $a ping -q -c 2 -w 5 198.19.0.2 >/dev/null

median() { python3 -c 'import sys, statistics; print(round(statistics.median(float(x) for x in sys.argv[1:])))' "$@"; }

# Received packets per second of one iperf3 run to ADDRESS in b.
iperf3_pps() {
    local address=$1 out
    out=$(mktemp)
    ip netns exec $b iperf3 -s -1 -J -p 5299 >"$out" 2>/dev/null &
    local server=$!
    sleep 0.5
    ip netns exec $a iperf3 -c "$address" -p 5299 -u -l 64 -b 0 -t "$seconds" >/dev/null 2>&1 || true
    wait $server || true
    python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))["end"]["sum"]
print((s["packets"] - s["lost_packets"]) / s["seconds"])' "$out"
    rm -f "$out"
}

# Delivered packets per second of one vxload run: iface TX in a, iface RX in b.
vxload_pps() {
    local tx=$1 rx=$2
    shift 2
    "$vxload" run --tx "iface:$tx" --tx-netns $a --rx "iface:$rx" --rx-netns $b --duration "$seconds" --json -q "$@" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["rate_pps"])'
}

printf '%-34s %14s %14s\n' "generator ($runs × ${seconds} s, median)" "veth pps" "vxlan pps"
# row LABEL FUNCTION [ARGS...]: FUNCTION PATH ARGS... prints one run's pps, PATH = veth | vxlan.
row() {
    local label=$1 fn=$2
    shift 2
    local veth=() vxlan=()
    for _ in $(seq "$runs"); do
        veth+=("$("$fn" veth "$@")")
        vxlan+=("$("$fn" vxlan "$@")")
    done
    printf '%-34s %14s %14s\n' "$label" "$(median "${veth[@]}")" "$(median "${vxlan[@]}")"
}
iperf3_path() { if [[ $1 == veth ]]; then iperf3_pps 198.18.0.2; else iperf3_pps 198.19.0.2; fi; }
vxload_path() {
    local path=$1
    shift
    if [[ $path == veth ]]; then vxload_pps cmpa$$ cmpb$$ "$@"; else vxload_pps vxk vxk "$@"; fi
}
row "iperf3 -u -l 64 -b 0" iperf3_path
row "vxload --size 106" vxload_path --size 106
row "vxload --size 106 --threads 2" vxload_path --size 106 --threads 2 --flows 2
row "vxload --size 64" vxload_path --size 64
