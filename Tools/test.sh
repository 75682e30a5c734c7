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

# 1. Build and lab prerequisites: the one shared install step (Tools/setup.sh), which installs only
#    what is missing. Not root: the integration tests skip (unless CI=true, where they fail).
source Tools/setup.sh
# Not root: through sudo when there is one (keeping PATH, which holds the Swift toolchain).
if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null; then vxrouter_as_root "$(realpath "$0")" "$@"; fi
if [[ $(id -u) -eq 0 ]]; then
    vxrouter_setup --tests
else
    say "not root: nothing installed, integration tests will skip (unless CI=true)"
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

# 6. The service as installed: the unit's directives pass `systemd-analyze verify` (with ExecStart
#    pointing at the binary under test: verify checks that it exists), and Tools/install.sh stages
#    every file into a DESTDIR and removes them again. Full runs only (no arguments), like step 5.
if (($# == 0)); then
    say "systemd-analyze verify Config/vxrouter.service; Tools/install.sh into a staging directory"
    stage=$(mktemp -d "${TMPDIR:-/tmp}/vxt-install.XXXXXX")
    trap 'rm -rf "$stage"' EXIT
    sed "s|/usr/local/sbin/vxrouter|$VXROUTER_BIN|g" Config/vxrouter.service >"$stage/vxrouter.service"
    systemd-analyze verify --man=no "$stage/vxrouter.service"
    DESTDIR="$stage/root" VXROUTER_BIN="$VXROUTER_BIN" bash Tools/install.sh >/dev/null
    for file in usr/local/sbin/vxrouter etc/systemd/system/vxrouter.service etc/vxrouter/vxrouter.yaml \
        usr/local/share/man/man8/vxrouter.8 usr/share/bash-completion/completions/vxrouter; do
        [[ -s $stage/root/$file ]] || { say "install did not put $file in place"; exit 1; }
    done
    grep -q '^\.Dt VXROUTER 8' "$stage/root/usr/local/share/man/man8/vxrouter.8" || { say "man page is not vxrouter(8)"; exit 1; }
    "$stage/root/usr/local/sbin/vxrouter" check-config "$stage/root/etc/vxrouter/vxrouter.yaml" >/dev/null
    DESTDIR="$stage/root" bash Tools/install.sh --uninstall --purge >/dev/null
    left=$(find "$stage/root" -type f | head -5)
    [[ -z $left ]] || { say "uninstall left $left"; exit 1; }
    say "service unit and install step: ok"
fi

# 7. Fuzzing, briefly: every libFuzzer target (Tools/fuzz/, README "Fuzzing") built with ASan and
#    run for 15 s from its seed corpus (new inputs go to a scratch directory, the committed seeds
#    stay as they are). A property that fails or a crash is a failure; the input is kept in
#    .build-fuzz/campaign/findings/<target>/. Full runs only (no arguments), like step 5; long campaigns: Tools/fuzz.sh.
if (($# == 0)); then
    say "Tools/fuzz.sh all --seconds 15 (libFuzzer + ASan, seed corpora)"
    fuzz_corpus=$(mktemp -d "${TMPDIR:-/tmp}/vxt-fuzz.XXXXXX")
    status=0
    bash Tools/fuzz.sh all --seconds 15 --corpus "$fuzz_corpus" || status=$?
    rm -rf "$fuzz_corpus"
    ((status == 0)) || { say "fuzzing found something (see above and .build-fuzz/campaign/findings/)"; exit 1; }
fi
