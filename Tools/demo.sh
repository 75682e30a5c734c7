#!/usr/bin/env bash
# Run it: two hosts (network namespaces) joined by a veth underlay, vxrouter in each, one
# VXLAN overlay across them. Pings across, moves a checked TCP stream across, shows what the
# routers report (`vxrouter stats`, `vxrouter fdb list`), cleans everything up.
#
#   bash Tools/demo.sh           # ping, checked TCP, stats and FDB, clean up (root, or sudo asked for)
#   bash Tools/demo.sh --keep    # ... then leave it running until Ctrl-C
#
# On a fresh Debian machine it first installs what building and running need (Tools/setup.sh, the
# same install step the tests use).
#
#   host a: underlay 198.18.0.1/24 on ul0, TAP vx42 198.19.0.1/24
#   host b: underlay 198.18.0.2/24 on ul0, TAP vx42 198.19.0.2/24   (VNI 42, UDP 4789)
#
# VXROUTER_BIN skips the build and runs that binary instead.
set -euo pipefail
cd "$(dirname "$0")/.."

keep=false
case "${1:-}" in
    --keep) keep=true ;;
    "") ;;
    *) echo "usage: $0 [--keep]" >&2; exit 2 ;;
esac
source Tools/setup.sh
vxrouter_as_root "$(realpath "$0")" "$@"
vxrouter_setup

if [[ -z ${VXROUTER_BIN:-} ]]; then
    swift build -c release --product vxrouter
    VXROUTER_BIN="$(swift build -c release --show-bin-path)/vxrouter"
fi

# vxt-<pid>-...: Tools/test.sh removes these only once this shell is gone.
ns_a="vxt-$$-demo-a"
ns_b="vxt-$$-demo-b"
logs="$(mktemp -d "${TMPDIR:-/tmp}/vxt-demo.XXXXXX")"
pids=()

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        code=0; wait "$pid" 2>/dev/null || code=$?
        echo "vxrouter (pid $pid) exited $code"
    done
    for ns in "$ns_a" "$ns_b"; do ip netns del "$ns" 2>/dev/null || true; done
    echo "cleaned up; router logs in $logs"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

in_a() { ip netns exec "$ns_a" "$@"; }
in_b() { ip netns exec "$ns_b" "$@"; }

echo "== hosts $ns_a and $ns_b, underlay 198.18.0.1 <-> 198.18.0.2"
for ns in "$ns_a" "$ns_b"; do
    ip netns add "$ns"
    ip netns exec "$ns" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$ns" link set lo up
done
ip link add ul0 netns "$ns_a" type veth peer name ul0 netns "$ns_b"
ip -n "$ns_a" addr add 198.18.0.1/24 dev ul0
ip -n "$ns_b" addr add 198.18.0.2/24 dev ul0
ip -n "$ns_a" link set ul0 up
ip -n "$ns_b" link set ul0 up

echo "== vxrouter in each host"
# Not through in_a/in_b: a backgrounded function would make $! a subshell, not the router.
# Each router's control socket lives in the run's log directory: namespaces share the filesystem, so
# the default /run/vxrouter/control.sock would be one socket for both.
ip netns exec "$ns_a" "$VXROUTER_BIN" run --vni 42 --tap vx42 --local 198.18.0.1 --remote 198.18.0.2 --address 198.19.0.1/24 \
    --control "unix:$logs/a.sock" >"$logs/a.log" 2>&1 &
pids+=($!)
ip netns exec "$ns_b" "$VXROUTER_BIN" run --vni 42 --tap vx42 --local 198.18.0.2 --remote 198.18.0.1 --address 198.19.0.2/24 \
    --control "unix:$logs/b.sock" >"$logs/b.log" 2>&1 &
pids+=($!)
for host in a b; do
    for _ in $(seq 150); do grep -q "vxrouter ready" "$logs/$host.log" && break; sleep 0.1; done
    grep -q "vxrouter ready" "$logs/$host.log" || { echo "vxrouter in $host is not ready:"; cat "$logs/$host.log"; exit 1; }
done

echo "== ping a -> b over the overlay"
in_a timeout 15 ping -c 3 -i 0.2 198.19.0.2
echo "== ping b -> a"
in_b timeout 15 ping -c 3 -i 0.2 198.19.0.1

echo "== a checked TCP transfer b -> a (4 MB, every byte compared at the far end)"
check=(python3 Tools/lab/tcp_check.py)
common=(--port 5201 --bytes 4194304 --seed 42 --timeout 30)
ip netns exec "$ns_a" "${check[@]}" serve --listen 198.19.0.1 "${common[@]}" >"$logs/tcp-serve.log" 2>&1 &
server=$!
for _ in $(seq 100); do grep -q listening "$logs/tcp-serve.log" && break; sleep 0.1; done
in_b "${check[@]}" send --connect 198.19.0.1 "${common[@]}"
wait "$server"

for host in a b; do
    ns=$([[ $host == a ]] && echo "$ns_a" || echo "$ns_b")
    echo "== host $host: vxrouter stats"
    "$VXROUTER_BIN" stats --endpoint "unix:$logs/$host.sock"
    echo "== host $host: vxrouter fdb list"
    "$VXROUTER_BIN" fdb list --endpoint "unix:$logs/$host.sock"
done

if $keep; then
    echo "== running. Try: ip netns exec $ns_a ping 198.19.0.2"
    echo "   or: $VXROUTER_BIN stats --endpoint unix:$logs/a.sock   (Ctrl-C stops and cleans up)"
    wait
fi
