#!/usr/bin/env bash
# Cluster mode at scale (a benchmark, not a test): a real etcd, vxcluster-sim playing N VTEPs
# (default 1,000 hosts x 2 VNIs x 20 MACs) and one real vxrouter joining that overlay, all in a
# network namespace of the script's own. Reports:
#   - the time for the router to converge after joining (full list → every entry programmed);
#   - the latency from an etcd change to the router's table (p50/p99, HdrHistogram; the sim moves
#     one MAC at a time and waits for the router's mac_moved event);
#   - router CPU and RSS with the overlay loaded; etcd requests/s the simulated cluster makes;
#   - flood fan-out per broadcast, and what ARP suppression saves (tunnel packets sent for one
#     broadcast, one ARP for a known address, one ARP for an unknown one).
# Everything it made is removed on exit, failure included.
#
#   sudo Tools/cluster-bench.sh [--hosts N] [--macs M] [--probes P] [--no-build]
#   (needs root, etcd-server, iproute2, curl, python3; builds vxrouter and vxcluster-sim in release)
set -euo pipefail
HOSTS=1000
MACS=20
PROBES=200
BUILD=1
while [ $# -gt 0 ]; do
    case "$1" in
        --hosts) HOSTS=$2; shift 2 ;;
        --macs) MACS=$2; shift 2 ;;
        --probes) PROBES=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        *) echo "usage: $0 [--hosts N] [--macs M] [--probes P] [--no-build]" >&2; exit 2 ;;
    esac
done
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NS="vxb-$$"
WORK=$(mktemp -d)
DATA=/dev/shm/vxb-etcd-$$
PIDS=()
cleanup() {
    set +e
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null; done
    for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
    ip netns del "$NS" 2>/dev/null
    rm -rf "$DATA"
    echo "logs were in $WORK"
}
trap cleanup EXIT

[ "$BUILD" = 0 ] || (cd "$ROOT" && swift build -c release --product vxrouter >/dev/null && swift build -c release --product vxcluster-sim >/dev/null)
BIN=$ROOT/.build/release/vxrouter
SIM=$ROOT/.build/release/vxcluster-sim
inns() { ip netns exec "$NS" "$@"; }

ip netns add "$NS"
ip -n "$NS" link set lo up
# The underlay: one end of a veth pair with ARP off, holding the simulated VTEPs' subnet, so the
# router's flood copies and unicasts are sent and counted, and vanish at the other end.
ip -n "$NS" link add ul0 type veth peer name ul1
ip -n "$NS" addr add 198.18.0.1/16 dev ul0
ip -n "$NS" link set ul0 arp off up
ip -n "$NS" link set ul1 up

ETCD=http://127.0.0.1:23790
# etcd's data on tmpfs: the figures are the router's and the protocol's, not this disk's fsync.
inns etcd --name bench --data-dir "$DATA" --listen-client-urls "$ETCD" --advertise-client-urls "$ETCD" \
    --listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 \
    --initial-cluster bench=http://127.0.0.1:23800 --quota-backend-bytes 4294967296 >"$WORK/etcd.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do inns curl -sf -X POST "$ETCD/v3/kv/range" -d '{"key":"AA=="}' >/dev/null && break; sleep 0.1; done

TOKEN=$WORK/token
printf 'bench-token' >"$TOKEN"
chmod 600 "$TOKEN"
ENTRIES=$((HOSTS * 2 * MACS))
# Long enough for the router to converge, then probe and measure (the sim revokes at the end).
DURATION=$((300 + HOSTS / 5))

echo "== loading $HOSTS simulated VTEPs x 2 VNIs x $MACS MACs into etcd"
inns stdbuf -oL "$SIM" --endpoints "$ETCD" --overlay bench --hosts "$HOSTS" --vnis 100,101 --macs "$MACS" --ttl 15 \
    --first-address 198.18.128.1 --duration "$DURATION" --parallel 8 \
    --probes "$PROBES" --router http://127.0.0.1:4790 --router-token-file "$TOKEN" >"$WORK/sim.log" 2>&1 &
SIM_PID=$!
PIDS+=($SIM_PID)
for _ in $(seq 6000); do grep -q '^loaded' "$WORK/sim.log" && break; sleep 0.1; done
grep '^loaded' "$WORK/sim.log" || { echo "the simulator did not load"; cat "$WORK/sim.log"; exit 1; }

cat >"$WORK/router.yaml" <<EOF
underlay:
  local: 198.18.0.1
networks:
  - { vni: 100, tap: vxb100, address: 10.200.100.1/24, max_entries: $((ENTRIES + 1024)) }
  - { vni: 101, tap: vxb101, address: 10.200.101.1/24, max_entries: $((ENTRIES + 1024)) }
cluster:
  endpoints: [$ETCD]
  name: bench
  lease_ttl: 15
control:
  listen: 127.0.0.1:4790
  token_file: $TOKEN
EOF
api() { inns curl -sf "http://127.0.0.1:4790$1"; }
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }

echo "== starting the router; waiting for $ENTRIES cluster entries"
START=$(date +%s.%N)
inns "$BIN" run --config "$WORK/router.yaml" >"$WORK/router.log" 2>&1 &
PIDS+=($!)
# $! is the subshell running `ip netns exec`, not the router: CPU and RSS are read from the
# router's own process (ip netns exec execs it, so its command line names the config).
ROUTER=""
for _ in $(seq 100); do
    ROUTER=$(pgrep -f -- "$BIN run --config $WORK/router.yaml" | head -1 || true)
    [ -n "$ROUTER" ] && break
    sleep 0.1
done
[ -n "$ROUTER" ] || { echo "the router did not start"; cat "$WORK/router.log"; exit 1; }
CONVERGED=""
for _ in $(seq 3000); do
    n=$(api /v1/cluster 2>/dev/null | field 'd["entries"]' 2>/dev/null || echo 0)
    if [ "$n" -ge "$ENTRIES" ]; then CONVERGED=$(date +%s.%N); break; fi
    sleep 0.1
done
[ -n "$CONVERGED" ] || { echo "the router did not converge"; tail -20 "$WORK/router.log"; api /v1/cluster; exit 1; }
printf 'converged: %d entries in %.2f s after start\n' "$ENTRIES" "$(echo "$CONVERGED - $START" | bc)"
api /v1/cluster | field '"flood members %d, entries %d, apply failures %d, relists %d" % (d["flood_members"], d["entries"], d["apply_failures"], d["relists"])'

echo "== loaded: router CPU and memory over 10 s (keepalives only)"
ticks() { awk '{print $14 + $15}' "/proc/$ROUTER/stat"; }
HZ=$(getconf CLK_TCK)
t0=$(ticks)
sleep 10
t1=$(ticks)
printf 'router CPU: %.1f%% of one core; RSS %s\n' "$(echo "($t1 - $t0) * 100 / $HZ / 10" | bc -l)" \
    "$(awk '/VmRSS/ {print $2 " " $3}' "/proc/$ROUTER/status")"

echo "== latency etcd change -> router table ($PROBES MAC moves, one at a time)"
# Each probe waits up to 5 s for the router's event: allow for all of them.
for _ in $(seq $((PROBES * 50 + 300))); do grep -q '^probe:' "$WORK/sim.log" && break; sleep 0.1; done
grep '^probe:' "$WORK/sim.log" || echo "no probe result (see $WORK/sim.log)"

echo "== flood fan-out (VNI 100: tunnel packets sent for one frame)"
tx() { api /v1/stats | field '[n for n in d["networks"] if n["vni"] == 100][0]["traffic"]["tunnel_tx_packets"]'; }
inns ip route add 198.19.0.0/16 dev vxb100
b0=$(tx)
inns python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.setsockopt(socket.SOL_SOCKET, 25, b'vxb100\0')
s.sendto(b'x', ('10.200.100.255', 9))"
sleep 1
b1=$(tx)
inns ping -c 1 -W 1 198.19.0.5 >/dev/null 2>&1 || true
sleep 1
b2=$(tx)
inns ping -c 1 -W 1 198.19.250.250 >/dev/null 2>&1 || true
sleep 2
b3=$(tx)
echo "one broadcast: $((b1 - b0)) tunnel packets (flood members: $(api /v1/networks/100/flood | field 'len(d["remotes"])'))"
echo "ARP for a cluster-known address + one echo: $((b2 - b1)) tunnel packets (ARP answered locally by suppression)"
echo "ARP for an unknown address (3 tries): $((b3 - b2)) tunnel packets"

echo "== etcd requests/s made by the simulated cluster (keepalives of $HOSTS leases, TTL 15 s)"
sleep 25  # the simulator reports every 10 s of its main loop, which the probes held up
grep 'requests/s' "$WORK/sim.log" | tail -3
printf 'router after all that: RSS %s, CPU time %.1f s\n' "$(awk '/VmRSS/ {print $2 " " $3}' "/proc/$ROUTER/status")" \
    "$(echo "$(ticks) / $HZ" | bc -l)"
