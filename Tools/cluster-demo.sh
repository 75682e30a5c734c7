#!/usr/bin/env bash
# Cluster mode demo: etcd + three vxrouter hosts in network namespaces, configured with no flood
# lists or static entries. Pings across every pair, shows `vxrouter cluster status`, then kills
# one router with SIGKILL and shows its entries leaving the others within the lease TTL.
# Everything it made is removed on exit, failure included.
#
#   sudo Tools/cluster-demo.sh [path/to/vxrouter]      (needs root, etcd-server, iproute2, curl)
set -euo pipefail
BIN=${1:-$(dirname "$0")/../.build/release/vxrouter}
BIN=$(readlink -f "$BIN")
TAG="vxd-$$"
WORK=$(mktemp -d)
TTL=4
NS=("$TAG-a" "$TAG-b" "$TAG-c")
SW="$TAG-sw"
PIDS=()

cleanup() {
    set +e
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null; done
    for ns in "${NS[@]}" "$SW"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
    done
    echo "logs were in $WORK"
}
trap cleanup EXIT

ip netns add "$SW"
ip -n "$SW" link set lo up
ip -n "$SW" link add br0 type bridge
ip -n "$SW" link set br0 up
for i in 0 1 2; do
    ns=${NS[$i]}
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip link add "vd$$$i" netns "$ns" type veth peer name "vs$$$i" netns "$SW"
    ip -n "$SW" link set "vs$$$i" master br0 up
    ip -n "$ns" addr add "198.18.0.$((i + 1))/24" dev "vd$$$i"
    ip -n "$ns" link set "vd$$$i" up
done

ETCD=http://198.18.0.1:2379
ip netns exec "${NS[0]}" etcd --name demo --data-dir "$WORK/etcd" \
    --listen-client-urls "$ETCD" --advertise-client-urls "$ETCD" \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster demo=http://127.0.0.1:2380 >"$WORK/etcd.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
    ip netns exec "${NS[1]}" curl -sf -X POST "$ETCD/v3/kv/range" -d '{"key":"AA=="}' >/dev/null && break
    sleep 0.1
done

for i in 0 1 2; do
    cat >"$WORK/r$i.yaml" <<EOF
underlay:
  local: 198.18.0.$((i + 1))
networks:
  - vni: 42
    tap: vxd$i
    address: 198.19.0.$((i + 1))/24
cluster:
  endpoints: [$ETCD]
  name: demo
  lease_ttl: $TTL
# Each router's control socket of its own (namespaces share /run/vxrouter/control.sock).
control:
  listen: unix:$WORK/r$i.sock
EOF
    ip netns exec "${NS[$i]}" "$BIN" run --config "$WORK/r$i.yaml" >"$WORK/r$i.log" 2>&1 &
    PIDS+=($!)
done

api() { curl -sf --unix-socket "$WORK/r$1.sock" "http://vxrouter$2" || true; }
flood() { api "$1" /v1/networks/42/flood; }
for i in 0 1 2; do
    for _ in $(seq 100); do
        n=$(flood "$i" | { grep -o '198\.18\.0\.[0-9]*' || true; } | sort -u | wc -l)
        [ "$n" -ge 2 ] && break
        sleep 0.2
    done
    echo "host $i flood list: $(flood "$i")"
done

for i in 0 1 2; do
    for j in 0 1 2; do
        [ "$i" = "$j" ] && continue
        ip netns exec "${NS[$i]}" ping -c 2 -W 2 "198.19.0.$((j + 1))" >/dev/null
        echo "ping ${NS[$i]} -> 198.19.0.$((j + 1)): ok"
    done
done

ip netns exec "${NS[1]}" "$BIN" cluster status --cluster "$ETCD" --cluster-name demo
echo "router b's own view (GET /v1/cluster):"
"$BIN" cluster status --endpoint "unix:$WORK/r1.sock"

echo "SIGKILL the router on host c"
kill -9 "${PIDS[3]}"
for _ in $(seq $(((TTL + 10) * 5))); do
    if ! flood 0 | grep -q '198\.18\.0\.3' && ! api 0 /v1/networks/42/fdb | grep -q '198\.18\.0\.3'; then
        echo "host c is gone from host a's flood list and FDB"
        break
    fi
    sleep 0.2
done
flood 0 | grep -q '198\.18\.0\.3' && { echo "FAIL: host c still on host a's flood list"; exit 1; }
ip netns exec "${NS[1]}" "$BIN" cluster status --cluster "$ETCD" --cluster-name demo
echo "demo passed"
