#!/usr/bin/env bash
# Soak: hours of mixed load on two vxrouter hosts, sampled every minute, failing on growth or loss.
#
#   bash Tools/soak.sh [--minutes N] [--csv FILE] [--rate PPS] [--interval S] [--warmup M]
#                      [--rss-bound-mib M] [--fd-bound N] [--max-loss RATIO] [--allow-drop REASON]...
#
# Two hosts (network namespaces vxsoak-<pid>-a and -b, joined by a veth underlay 198.18.0.1 <-> .2),
# vxrouter (release build) in each serving VNI 42 on TAP vx42 (198.19.0.1/24, 198.19.0.2/24). While
# it runs, at once and all the time:
#   - load: vxload a -> b through the routers at a fixed rate (--rate, default 2000 pps, sizes
#     64/512/1400), in runs of 30 s whose flow and source-MAC counts change from run to run, so flows
#     come and go and b keeps learning and ageing MACs;
#   - transfers: every minute a checked TCP transfer (8 MiB, every byte compared), alternately a->b
#     and b->a;
#   - MAC churn: cycles of 256 static FDB entries added through the control endpoint (spread over
#     five remotes), read back, deleted and checked gone, plus a flood-list add and delete;
#   - captures: every two minutes a capture started and stopped in turn: `vxrouter capture` for 10 s
#     into a file (must record packets), a live stream abandoned by its client after 3 s, and a file
#     capture in the router (POST, then DELETE /v1/capture);
#   - polling: every 2 s health, stats, remotes, networks, FDB, config, metrics of both routers, and
#     an event stream opened and abandoned every 10 s.
# Every --interval seconds (default 60) each router's RSS, open fds, threads, FDB size, remotes and
# drops per reason, the kernel's drops before the router (TAP queue full, UDP receive buffer full),
# with the load, transfer, churn, capture and API tallies so far, become a row of the
# CSV (--csv, default in the run's directory).
#
# Verdict (exit 0 pass, 1 fail with the reasons, 2 bad usage):
#   - growth: after the warm-up (--warmup minutes, default 10, or a sixth of the run if shorter), the
#     lowest RSS of the last quarter of the samples must not exceed the highest of the first quarter by
#     more than --rss-bound-mib (default 16 MiB) or 10 % of it, whichever is larger; the same for open
#     fds with --fd-bound (default 4). Comparing the last quarter's floor with the first quarter's
#     ceiling ignores spikes (a capture or a request in flight at the sample) and catches a baseline
#     that keeps rising. Needs 8 samples after the warm-up; shorter runs are not judged on growth.
#   - loss: any failed transfer; vxload losing more than --max-loss of what it sent (default 0.001,
#     summed over the runs) or a run it could not complete; any drop reason not allowed with
#     --allow-drop (none by default: nothing in this load should be dropped); any API or capture
#     call that failed; a router that exited.
# A summary of the curve (start/min/max/end of RSS, fds, FDB, drops) is printed either way.
#
# This is a growth/loss check, not a speed figure: the rate is modest on purpose and other work on
# the machine does not change the verdict. Everything it made (namespaces, routers, loops) is removed
# by a trap, also on failure or Ctrl-C; logs stay in the run's directory (printed).
#
# VXROUTER_BIN / VXLOAD_BIN skip the release build and run those binaries.
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=120
interval=60
rate=2000
csv=""
warmup=""
rss_bound_mib=16
fd_bound=4
max_loss=0.001
allowed_drops=()
usage() { sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while (($#)); do
    case "$1" in
        --minutes) minutes=${2:?}; shift 2 ;;
        --interval) interval=${2:?}; shift 2 ;;
        --rate) rate=${2:?}; shift 2 ;;
        --csv) csv=${2:?}; shift 2 ;;
        --warmup) warmup=${2:?}; shift 2 ;;
        --rss-bound-mib) rss_bound_mib=${2:?}; shift 2 ;;
        --fd-bound) fd_bound=${2:?}; shift 2 ;;
        --max-loss) max_loss=${2:?}; shift 2 ;;
        --allow-drop) allowed_drops+=("${2:?}"); shift 2 ;;
        -h|--help) usage ;;
        *) echo "soak.sh: unknown argument $1" >&2; usage ;;
    esac
done
[[ $minutes =~ ^[0-9]+$ && $minutes -ge 1 ]] || { echo "soak.sh: --minutes must be a whole number >= 1" >&2; exit 2; }
[[ $interval =~ ^[0-9]+$ && $interval -ge 5 ]] || { echo "soak.sh: --interval must be a whole number >= 5" >&2; exit 2; }
[[ -z $warmup ]] && warmup=$(( minutes / 6 < 10 ? minutes / 6 : 10 ))

source Tools/setup.sh
vxrouter_as_root "$(realpath "$0")" "$@"
vxrouter_setup

if [[ -z ${VXROUTER_BIN:-} || -z ${VXLOAD_BIN:-} ]]; then
    swift build -c release --product vxrouter
    swift build -c release --product vxload
    bin="$(swift build -c release --show-bin-path)"
    VXROUTER_BIN=${VXROUTER_BIN:-$bin/vxrouter}
    VXLOAD_BIN=${VXLOAD_BIN:-$bin/vxload}
fi

tag="vxsoak-$$"
ns_a="$tag-a"
ns_b="$tag-b"
work="$(mktemp -d "${TMPDIR:-/tmp}/vxsoak.XXXXXX")"
[[ -n $csv ]] || csv="$work/soak.csv"
declare -A router_pid=()
loops=()

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    touch "$work/stop"
    # Each loop runs in a process group of its own (set -m): its vxload, curl or tcp_check goes with it.
    for pid in "${loops[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
    for pid in "${loops[@]}"; do wait "$pid" 2>/dev/null || true; done
    for host in "${!router_pid[@]}"; do kill -TERM "${router_pid[$host]}" 2>/dev/null || true; done
    for host in "${!router_pid[@]}"; do
        local pid=${router_pid[$host]}
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    for ns in "$ns_a" "$ns_b"; do ip netns del "$ns" 2>/dev/null || true; done
    echo "soak: cleaned up ($ns_a, $ns_b); logs in $work, samples in $csv"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '%s soak: %s\n' "$(date -u +%H:%M:%S)" "$*"; }
stopping() { [[ -e $work/stop ]]; }
# nap S: sleeps S seconds, waking early when the run stops.
nap() { local i; for ((i = 0; i < $1; i++)); do stopping && return 0; sleep 1; done; }

# The API client: stdlib Python over the Unix socket (one connection per request, as the CLI makes).
cat >"$work/api.py" <<'PY'
import http.client, json, socket, sys, time

class Unix(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.path_ = path
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path_)

def call(sock, method, path, body=None, timeout=15):
    c = Unix(sock, timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        c.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()

def expect(sock, method, path, statuses, body=None):
    try:
        status, data = call(sock, method, path, body)
    except Exception as e:  # a timeout or a refused connection is a failure of the run
        raise SystemExit(f"{method} {path}: {e}")
    if status not in statuses:
        raise SystemExit(f"{method} {path}: {status} {data[:200]!r}")
    return data

def churn(sock, cycle, count, remotes):
    # MACs 02:5e:CC:CC:II:II: the cycle number and the index, never a MAC the load uses.
    macs = [f"02:5e:{(cycle >> 8) & 255:02x}:{cycle & 255:02x}:{i >> 8:02x}:{i & 255:02x}" for i in range(count)]
    for i, mac in enumerate(macs):
        expect(sock, "POST", "/v1/networks/42/fdb", (200, 201), {"mac": mac, "remote": remotes[i % len(remotes)]})
    listed = {e["mac"] for e in json.loads(expect(sock, "GET", "/v1/networks/42/fdb", (200,)))["entries"]}
    missing = [m for m in macs if m not in listed]
    if missing: raise SystemExit(f"cycle {cycle}: {len(missing)} added entries not listed, e.g. {missing[0]}")
    expect(sock, "POST", "/v1/networks/42/flood", (200, 201), {"remote": "198.18.0.77"})
    for mac in macs:
        expect(sock, "DELETE", f"/v1/networks/42/fdb/{mac}", (200, 204))
    expect(sock, "DELETE", "/v1/networks/42/flood/198.18.0.77", (200, 204))
    listed = {e["mac"] for e in json.loads(expect(sock, "GET", "/v1/networks/42/fdb", (200,)))["entries"]}
    left = [m for m in macs if m in listed]
    if left: raise SystemExit(f"cycle {cycle}: {len(left)} deleted entries still listed, e.g. {left[0]}")
    return 2 * count + 4

def poll(sock):
    n = 0
    for path in ("/v1/health", "/v1/stats", "/v1/remotes", "/v1/networks", "/v1/networks/42/fdb",
                 "/v1/networks/42/flood", "/v1/config", "/v1/capture", "/metrics", "/v1/version"):
        expect(sock, "GET", path, (200,)); n += 1
    return n

def abandon_events(sock, seconds):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(seconds)
    s.connect(sock)
    s.sendall(b"GET /v1/events HTTP/1.1\r\nHost: localhost\r\n\r\n")
    head = s.recv(4096)
    if not head.startswith(b"HTTP/1.1 200"): raise SystemExit(f"events: {head[:100]!r}")
    time.sleep(seconds)
    s.close()  # abandoned, mid-stream
    return 1

def sample(sock):
    s = json.loads(expect(sock, "GET", "/v1/stats", (200,)))
    drops = s["totals"]["drops"]
    named = ";".join(f"{k}:{v}" for k, v in sorted(drops.items()) if v)
    # Traffic counters are keys of the totals object beside "drops" (the API's Traffic model).
    print(sum(n["fdb_entries"] for n in s["networks"]), len(s["remotes"]), sum(drops.values()), named or "-",
          s["totals"].get("tunnel_rx_packets", 0))

cmd, sock = sys.argv[1], sys.argv[2]
if cmd == "churn": print(churn(sock, int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]))
elif cmd == "poll": print(poll(sock))
elif cmd == "events": print(abandon_events(sock, float(sys.argv[3])))
elif cmd == "sample": sample(sock)
elif cmd == "call":
    status, data = call(sock, sys.argv[3], sys.argv[4], json.loads(sys.argv[5]) if len(sys.argv) > 5 else None)
    print(status, data.decode(errors="replace"))
PY
api() { python3 "$work/api.py" "$@"; }
sock() { echo "$work/$1.sock"; }
netns() { [[ $1 == a ]] && echo "$ns_a" || echo "$ns_b"; }

say "hosts $ns_a and $ns_b, $minutes min, sample every ${interval}s, load ${rate} pps; logs in $work"
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

start_router() {
    local host=$1 local=$2 remote=$3 address=$4
    # Not through a function in the background: $! must be the router itself.
    ip netns exec "$(netns "$host")" "$VXROUTER_BIN" run --vni 42 --tap vx42 --local "$local" --remote "$remote" \
        --address "$address" --control "unix:$(sock "$host")" >"$work/router-$host.log" 2>&1 &
    router_pid[$host]=$!
}
start_router a 198.18.0.1 198.18.0.2 198.19.0.1/24
start_router b 198.18.0.2 198.18.0.1 198.19.0.2/24
for host in a b; do
    for _ in $(seq 300); do grep -q "vxrouter ready" "$work/router-$host.log" && break; sleep 0.1; done
    grep -q "vxrouter ready" "$work/router-$host.log" || { echo "vxrouter in $host is not ready:"; cat "$work/router-$host.log"; exit 1; }
done
ip netns exec "$ns_a" ping -q -c 3 -i 0.2 -W 2 198.19.0.2 >/dev/null || { echo "soak: no ping across the overlay at the start"; exit 1; }

# --- the loops; each appends one line per event to its own log, the sampler counts them ---
load_loop() {
    local flows=(8 64 256 1024 16 512) macs=(4 32 128 512 8 256) i=0
    while ! stopping; do
        local k=$((i % ${#flows[@]}))
        "$VXLOAD_BIN" run --tx iface:vx42 --tx-netns "$ns_a" --rx iface:vx42 --rx-netns "$ns_b" --rate "$rate" \
            --duration 30 --size 64,512,1400 --flows "${flows[$k]}" --src-macs "${macs[$k]}" --dst-macs 16 \
            --json -q >"$work/load-last.json" 2>"$work/load-last.err" || true
        # One line per run; a run that printed nothing (vxload failed before its report) is a failure too.
        python3 - "$work/load-last.json" "$work/load-last.err" >>"$work/load.log" <<'PY' || true
import json, sys
try:
    r = json.load(open(sys.argv[1]))
    print(r.get("sent") or 0, r.get("lost") or 0, "ok" if r.get("complete") and not r.get("errors") else
          "FAIL " + "; ".join(r.get("errors") or ["incomplete"]).replace("\n", " "))
except Exception as e:
    print(0, 0, "FAIL no report: " + open(sys.argv[2]).read().strip().replace("\n", " ")[:300])
PY
        i=$((i + 1))
        nap 2
    done
}

transfer_loop() {
    local i=0
    while ! stopping; do
        local from=a to=b address=198.19.0.2
        ((i % 2)) && { from=b; to=a; address=198.19.0.1; }
        local port=$((5300 + i % 100)) out="$work/transfer-$i"
        local common=(--port "$port" --bytes 8388608 --seed "$i" --timeout 120)
        ip netns exec "$(netns "$to")" python3 Tools/lab/tcp_check.py serve --listen "$address" "${common[@]}" >"$out.serve" 2>&1 &
        local server=$!
        for _ in $(seq 100); do grep -qs listening "$out.serve" && break; sleep 0.1; done
        local started=$SECONDS sent=0 served=0
        ip netns exec "$(netns "$from")" python3 Tools/lab/tcp_check.py send --connect "$address" "${common[@]}" >"$out.send" 2>&1 || sent=$?
        wait "$server" || served=$?
        if ((sent == 0 && served == 0)); then
            echo "ok $from->$to $((SECONDS - started))s" >>"$work/transfer.log"
            rm -f "$out.serve" "$out.send"
        else
            echo "FAIL $from->$to send=$sent serve=$served ($out.*)" >>"$work/transfer.log"
        fi
        i=$((i + 1))
        nap 60
    done
}

churn_loop() {
    local cycle=0 out
    while ! stopping; do
        for host in a b; do
            local peer=198.18.0.2
            [[ $host == b ]] && peer=198.18.0.1
            if out=$(api churn "$(sock "$host")" "$cycle" 256 "$peer" 198.18.0.50 198.18.0.51 198.18.0.52 198.18.0.53 2>&1); then
                echo "ok $host $out" >>"$work/churn.log"
            else
                echo "FAIL $host cycle $cycle: $out" >>"$work/churn.log"
            fi
        done
        cycle=$((cycle + 1))
        nap 5
    done
}

capture_loop() {
    local i=0 out
    while ! stopping; do
        local host=a
        ((i % 2)) && host=b
        case $((i % 3)) in
        0)  # the CLI: 10 s into a file; the load crosses both TAPs, so it must record packets
            if out=$("$VXROUTER_BIN" capture --endpoint "unix:$(sock "$host")" --point inner --point outer \
                --duration 10 -w "$work/capture.pcap" 2>&1) && [[ $(stat -c %s "$work/capture.pcap") -gt 24 ]]; then
                echo "ok $host cli $(echo "$out" | tr '\n' ' ')" >>"$work/capture.log"
            else
                echo "FAIL $host cli: $(echo "$out" | tr '\n' ' ')" >>"$work/capture.log"
            fi
            rm -f "$work/capture.pcap" ;;
        1)  # a live stream whose client goes away after 3 s; the capture must end with it
            timeout 3 curl -sN --unix-socket "$(sock "$host")" "http://localhost/v1/capture/stream?points=inner,outer" \
                >/dev/null 2>&1 || true
            local ended=false
            for _ in $(seq 50); do
                api call "$(sock "$host")" GET /v1/capture | grep -q '"running":false' && { ended=true; break; }
                sleep 0.2
            done
            if $ended; then echo "ok $host stream abandoned" >>"$work/capture.log"
            else echo "FAIL $host: the capture still runs 10 s after its stream client left" >>"$work/capture.log"; fi ;;
        2)  # a file capture in the router, stopped through the API
            local name="soak-$$-$i.pcap" started stopped
            started=$(api call "$(sock "$host")" POST /v1/capture "{\"file\":\"$name\",\"points\":[\"outer\"],\"snaplen\":128}")
            sleep 5
            stopped=$(api call "$(sock "$host")" DELETE /v1/capture)
            if [[ $started == 20[01]* && $stopped == 200* ]]; then
                echo "ok $host router file" >>"$work/capture.log"
            else
                echo "FAIL $host router file: start ${started:0:200} stop ${stopped:0:200}" >>"$work/capture.log"
            fi
            rm -f "/var/lib/vxrouter/captures/$name" "/var/lib/vxrouter/captures/$name.idx" ;;
        esac
        i=$((i + 1))
        nap 40
    done
}

poll_loop() {
    local i=0 out
    while ! stopping; do
        for host in a b; do
            if out=$(api poll "$(sock "$host")" 2>&1); then echo "ok $out" >>"$work/poll.log"
            else echo "FAIL $host: $out" >>"$work/poll.log"; fi
        done
        if ((i % 5 == 0)); then
            for host in a b; do
                if out=$(api events "$(sock "$host")" 1 2>&1); then echo "ok $out" >>"$work/poll.log"
                else echo "FAIL $host events: $out" >>"$work/poll.log"; fi
            done
        fi
        i=$((i + 1))
        nap 2
    done
}

touch "$work"/{load,transfer,churn,capture,poll}.log
set -m  # each loop in a process group of its own, so cleanup ends it with everything it started
for loop in load_loop transfer_loop churn_loop capture_loop poll_loop; do
    { "$loop"; touch "$work/done.$loop"; } &
    loops+=($!)
done
set +m

# --- sampling ---
header="time_utc,second,load1,host,rss_kib,fds,threads,fdb_entries,remotes,drops_total,drops,tunnel_rx_packets"
header+=",kernel_tap_drops,kernel_udp_rcvbuf_errors"
header+=",load_runs,load_sent,load_lost,load_failed,transfers_ok,transfers_failed,churn_ok,churn_failed"
header+=",captures_ok,captures_failed,api_ok,api_failed"
echo "$header" >"$csv"
count() { grep -c "^$1" "$2" || true; }
sample() {
    local second=$1 host
    local load_runs load_sent load_lost load_failed
    load_runs=$(wc -l <"$work/load.log")
    read -r load_sent load_lost < <(awk '{s += $1; l += $2} END {print s + 0, l + 0}' "$work/load.log")
    load_failed=$(count "[0-9]* [0-9]* FAIL" "$work/load.log")
    local tallies
    tallies="$load_runs,$load_sent,$load_lost,$load_failed"
    tallies+=",$(count ok "$work/transfer.log"),$(count FAIL "$work/transfer.log")"
    tallies+=",$(count ok "$work/churn.log"),$(count FAIL "$work/churn.log")"
    tallies+=",$(count ok "$work/capture.log"),$(count FAIL "$work/capture.log")"
    tallies+=",$(count ok "$work/poll.log"),$(count FAIL "$work/poll.log")"
    for host in a b; do
        local pid=${router_pid[$host]}
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "router $host (pid $pid) exited" >>"$work/fatal"
            return 1
        fi
        local rss fds threads stats
        rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
        threads=$(awk '/^Threads:/ {print $2}' "/proc/$pid/status")
        fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 | wc -l)
        if ! stats=$(api sample "$(sock "$host")" 2>&1); then
            echo "router $host: /v1/stats failed: $stats" >>"$work/fatal"
            return 1
        fi
        local fdb remotes drops_total drops tunnel_rx
        read -r fdb remotes drops_total drops tunnel_rx <<<"$stats"
        # Losses the router never sees: frames the kernel dropped because the TAP's queue to the
        # router was full, and datagrams it dropped because a worker socket's receive buffer was full.
        local ns=$ns_a tap_drops udp_rcvbuf
        [[ $host == b ]] && ns=$ns_b
        tap_drops=$(ip netns exec "$ns" cat /sys/class/net/vx42/statistics/tx_dropped 2>/dev/null || echo 0)
        udp_rcvbuf=$(ip netns exec "$ns" awk '/^Udp:/ {if (!n) {for (i = 1; i <= NF; i++) if ($i == "RcvbufErrors") c = i; n = 1} else print $c}' /proc/net/snmp 2>/dev/null || echo 0)
        echo "$(date -u +%FT%TZ),$second,$(cut -d' ' -f1 /proc/loadavg),$host,$rss,$fds,$threads,$fdb,$remotes,$drops_total,$drops,$tunnel_rx,${tap_drops:-0},${udp_rcvbuf:-0},$tallies" >>"$csv"
    done
}

begin=$SECONDS
total=$((minutes * 60))
sample 0
next=$interval
while ((SECONDS - begin < total)); do
    sleep 1
    [[ -e $work/fatal ]] && break
    if ((SECONDS - begin >= next)); then
        sample "$next" || break
        tail -n 2 "$csv" | cut -d, -f2-11 | sed 's/^/    /'
        next=$((next + interval))
    fi
done

say "stopping the load (letting each loop finish what it is doing)"
touch "$work/stop"
for _ in $(seq 90); do
    [[ $(find "$work" -maxdepth 1 -name 'done.*' | wc -l) -ge ${#loops[@]} ]] && break
    sleep 1
done
[[ -e $work/fatal ]] || sample $((SECONDS - begin)) || true

# --- verdict ---
export SOAK_WARMUP=$warmup SOAK_RSS_BOUND_MIB=$rss_bound_mib SOAK_FD_BOUND=$fd_bound SOAK_MAX_LOSS=$max_loss
export SOAK_ALLOWED_DROPS="${allowed_drops[*]:-}" SOAK_WORK=$work
python3 - "$csv" <<'PY'
import csv, os, sys
rows = list(csv.DictReader(open(sys.argv[1])))
work = os.environ["SOAK_WORK"]
warmup_s = int(os.environ["SOAK_WARMUP"]) * 60
rss_bound = int(os.environ["SOAK_RSS_BOUND_MIB"]) * 1024
fd_bound = int(os.environ["SOAK_FD_BOUND"])
max_loss = float(os.environ["SOAK_MAX_LOSS"])
allowed = set(os.environ["SOAK_ALLOWED_DROPS"].split())
failures = []
if os.path.exists(f"{work}/fatal"):
    failures += [l.strip() for l in open(f"{work}/fatal")]
if not rows:
    print("no samples"); sys.exit(1)

def curve(values, unit=1, suffix=""):
    v = [x / unit for x in values]
    f = (lambda x: f"{x:.1f}") if unit != 1 else (lambda x: f"{x:.0f}")
    return f"start {f(v[0])}{suffix}, min {f(min(v))}, max {f(max(v))}, end {f(v[-1])}{suffix}"

print(f"\n== soak summary: {int(rows[-1]['second']) // 60} min {int(rows[-1]['second']) % 60} s, "
      f"{len(rows) // 2} samples per router, warm-up {warmup_s // 60} min; machine load (1 min) "
      f"{min(float(r['load1']) for r in rows):.1f}-{max(float(r['load1']) for r in rows):.1f}")
for host in ("a", "b"):
    h = [r for r in rows if r["host"] == host]
    if not h: continue
    rss = [int(r["rss_kib"]) for r in h]; fds = [int(r["fds"]) for r in h]
    print(f"router {host}: RSS (MiB) {curve(rss, 1024)}")
    print(f"          fds {curve(fds)}; threads {curve([int(r['threads']) for r in h])}")
    print(f"          FDB entries {curve([int(r['fdb_entries']) for r in h])}; remotes {curve([int(r['remotes']) for r in h])}")
    print(f"          drops {curve([int(r['drops_total']) for r in h])} (at the end: {h[-1]['drops']}); "
          f"tunnel_rx at the end {h[-1]['tunnel_rx_packets']}")
    print(f"          kernel drops outside the router at the end: TAP queue full {h[-1]['kernel_tap_drops']}, "
          f"UDP receive buffer full {h[-1]['kernel_udp_rcvbuf_errors']}")
    for pair in h[-1]["drops"].split(";"):
        if ":" in pair:
            reason, n = pair.split(":")
            if reason not in allowed:
                failures.append(f"router {host}: {n} packets dropped as {reason} (not an expected drop reason here)")
    post = [r for r in h if int(r["second"]) >= warmup_s]
    if len(post) < 8:
        print(f"          growth: not judged ({len(post)} samples after the warm-up, 8 needed)")
        continue
    q = max(2, len(post) // 4)
    first, last = post[:q], post[-q:]
    for name, key, bound_of, unit in (("RSS", "rss_kib", lambda top: max(rss_bound, top // 10), "KiB"),
                                       ("open fds", "fds", lambda top: fd_bound, "fds")):
        top = max(int(r[key]) for r in first); floor = min(int(r[key]) for r in last)
        xs = [int(r["second"]) / 60 for r in post]; ys = [int(r[key]) for r in post]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / max(1e-9, sum((x - mx) ** 2 for x in xs))
        verdict = "ok" if floor - top <= bound_of(top) else "GREW"
        print(f"          {name} after warm-up: first-quarter max {top} {unit}, last-quarter min {floor} {unit}, "
              f"bound +{bound_of(top)} {unit}, trend {slope:+.1f} {unit}/min: {verdict}")
        if verdict != "ok":
            failures.append(f"router {host}: {name} grew: the last quarter's lowest {floor} {unit} is over the first "
                            f"quarter's highest {top} {unit} + {bound_of(top)} {unit} (trend {slope:+.1f} {unit}/min)")

end = rows[-1]
runs, sent, lost, load_failed = int(end["load_runs"]), int(end["load_sent"]), int(end["load_lost"]), int(end["load_failed"])
ratio = lost / sent if sent else 0
print(f"load: {runs} vxload runs, {sent} packets sent, {lost} lost ({ratio * 100:.4f} %, bound {max_loss * 100:g} %), "
      f"{load_failed} runs not complete")
if runs == 0 or sent == 0: failures.append("load: no vxload run completed")
if ratio > max_loss: failures.append(f"load: vxload lost {ratio * 100:.4f} % of {sent} packets (bound {max_loss * 100:g} %)")
print(f"checked TCP transfers: {end['transfers_ok']} ok, {end['transfers_failed']} failed; MAC churn cycles (256 "
      f"static entries added, read back, deleted): {end['churn_ok']} ok, {end['churn_failed']} failed")
print(f"captures started and stopped: {end['captures_ok']} ok, {end['captures_failed']} failed; API polls: "
      f"{end['api_ok']} ok, {end['api_failed']} failed")
for log in ("load", "transfer", "churn", "capture", "poll"):
    for line in open(f"{work}/{log}.log"):
        if "FAIL" in line: failures.append(f"{log}: {line.strip()}")
if int(end["transfers_ok"]) == 0: failures.append("transfers: none completed")
if failures:
    print("\nFAIL")
    for f in failures[:40]: print("  - " + f)
    if len(failures) > 40: print(f"  ... and {len(failures) - 40} more")
    sys.exit(1)
print("\nPASS: no growth beyond the bounds after the warm-up, no loss")
PY
