#!/usr/bin/env bash
# The test command: make a (fresh Debian, root) machine able to run the lab, build the release
# router the end-to-end tests drive, then run every suite. Exits non-zero on any failure.
#
#   bash Tools/test.sh [extra swift test arguments, e.g. --filter EndToEnd]
#
# Without arguments it also runs the allocation tests built for release (step 5).
#
# Environment: SCRATCH_PATH (a swift build --scratch-path, default .build),
# VXROUTER_BIN (skip the release build and test this binary instead).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '== %s\n' "$*"; }

# 1. Build and lab prerequisites, installed only when missing (a warm machine downloads nothing).
#    libpcap-dev: the CPcap system library (vxload replays captures; capture writes them).
#    tshark reads captures back in the packet capture tests; curl streams one live.
#    kmod gives the kernel a modprobe to auto-load vxlan/veth/tun/bridge modules.
missing=()
for package in iproute2 iputils-ping python3 procps kmod prometheus libpcap-dev tshark curl; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        say "missing ${missing[*]} and not root: integration tests will skip (unless CI=true)"
    else
        say "installing ${missing[*]}"
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
    fi
fi
# prometheus gives promtool, which checks /metrics; schemathesis fuzzes the control endpoint
# against api/openapi.yaml (both used by the control endpoint's end-to-end tests).
if [[ $(id -u) -eq 0 ]] && ! command -v schemathesis >/dev/null && command -v python3 >/dev/null; then
    say "installing schemathesis (pip)"
    if ! python3 -m pip --version >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
    fi
    pip=(python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore schemathesis)
    # Debian's own python refuses system-wide installs (PEP 668) unless told this is intended.
    "${pip[@]}" 2>/dev/null || "${pip[@]}" --break-system-packages || say "schemathesis not installed"
fi
if [[ $(id -u) -eq 0 ]] && command -v modprobe >/dev/null; then
    for module in tun veth vxlan bridge; do modprobe -q "$module" 2>/dev/null || true; done
fi

# 2. Stale lab namespaces: vxt-<pid>-... whose test process is gone (a crashed or killed run).
#    Namespaces of a run still in progress (its pid alive) are left alone.
if [[ $(id -u) -eq 0 ]] && command -v ip >/dev/null; then
    for namespace in $(ip netns list 2>/dev/null | awk '$1 ~ /^vxt-/ {print $1}'); do
        owner=$(cut -d- -f2 <<<"$namespace")
        if [[ $owner =~ ^[0-9]+$ ]] && kill -0 "$owner" 2>/dev/null; then continue; fi
        for pid in $(timeout 5 ip netns pids "$namespace" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
        timeout 10 ip netns del "$namespace" 2>/dev/null && say "removed stale namespace $namespace" || true
    done
    for logs in "${TMPDIR:-/tmp}"/vxt-logs/*; do
        [[ -d $logs ]] || continue
        owner=$(basename "$logs" | cut -d- -f1)
        if [[ $owner =~ ^[0-9]+$ ]] && ! kill -0 "$owner" 2>/dev/null; then rm -rf "$logs"; fi
    done
fi

scratch=()
if [[ -n ${SCRATCH_PATH:-} ]]; then scratch=(--scratch-path "$SCRATCH_PATH"); fi

# 3. The router the end-to-end tests run.
if [[ -z ${VXROUTER_BIN:-} ]]; then
    say "building vxrouter (release)"
    swift build "${scratch[@]}" -c release --product vxrouter
    VXROUTER_BIN="$(swift build "${scratch[@]}" -c release --show-bin-path)/vxrouter"
fi
export VXROUTER_BIN
say "VXROUTER_BIN=$VXROUTER_BIN"

# 4. Every suite: unit tests and the end-to-end lab.
say "swift test"
swift test "${scratch[@]}" "$@"

# 5. The zero-allocation check in the configuration that ships: a debug build only bounds the
#    allocations per packet (the optimiser removes the rest), so a full run (no arguments) runs
#    AllocationTests again built for release (-enable-testing for its @testable imports), in a
#    scratch directory of its own so the release router build above stays as it is (~5 min).
if (($# == 0)); then
    say "swift test -c release --filter AllocationTests (zero allocations per packet, as shipped)"
    swift test --scratch-path "${SCRATCH_PATH:-.build}/release-testing" -c release -Xswiftc -enable-testing \
        --filter AllocationTests
fi
