#!/usr/bin/env bash
# The one install step: what a fresh Debian machine (root) needs to build vxrouter and run it, and,
# with --tests, what the test suite needs besides. Tools/demo.sh, Tools/test.sh and Tools/install.sh
# source this file, so there is one list of packages, not one per script.
#
#   bash Tools/setup.sh            # build + run (the demo)
#   bash Tools/setup.sh --tests    # ... and everything the tests use
#
# Installs only what is missing (a warm machine downloads nothing), loads the kernel modules the lab
# uses, and never needs the network when nothing is missing.

# Build and run: libpcap-dev for the CPcap system library (capture, vxload); iproute2, kmod and
# procps to make TAPs, namespaces and veths and load their modules; iputils-ping and python3 for the
# demo's ping and checked TCP transfer (Tools/lab/tcp_check.py).
VXROUTER_RUN_PACKAGES=(libpcap-dev iproute2 iputils-ping kmod procps python3)
# The tests besides: tshark reads captures back; curl streams one live; prometheus gives promtool
# (checks /metrics); ethtool reads and sets device offloads; etcd-server and etcd-client run the
# cluster tests' store; openvswitch-switch is an interop peer; systemd gives systemd-analyze (checks
# the unit); util-linux gives runuser (the unprivileged-user tests).
VXROUTER_TEST_PACKAGES=(tshark curl prometheus ethtool etcd-server etcd-client openvswitch-switch systemd util-linux)

vxrouter_say() { printf '== %s\n' "$*"; }

# vxrouter_missing PACKAGE...: prints those not installed.
vxrouter_missing() {
    local package
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || printf '%s\n' "$package"
    done
}

# vxrouter_setup [--tests]: installs what is missing (root only) and loads the lab's modules.
vxrouter_setup() {
    local packages=("${VXROUTER_RUN_PACKAGES[@]}")
    [[ ${1:-} == --tests ]] && packages+=("${VXROUTER_TEST_PACKAGES[@]}")
    local missing
    mapfile -t missing < <(vxrouter_missing "${packages[@]}")
    if ((${#missing[@]})); then
        if [[ $(id -u) -ne 0 ]]; then
            vxrouter_say "missing ${missing[*]}; run as root (or with sudo) to install them"
            return 1
        fi
        vxrouter_say "installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    # schemathesis fuzzes the control endpoint against api/openapi.yaml (a test tool, from PyPI).
    if [[ ${1:-} == --tests && $(id -u) -eq 0 ]] && ! command -v schemathesis >/dev/null; then
        vxrouter_say "installing schemathesis (pip)"
        python3 -m pip --version >/dev/null 2>&1 ||
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
        local pip=(python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore schemathesis)
        # Debian's own python refuses system-wide installs (PEP 668) unless told this is intended.
        "${pip[@]}" 2>/dev/null || "${pip[@]}" --break-system-packages || vxrouter_say "schemathesis not installed"
    fi
    if [[ $(id -u) -eq 0 ]] && command -v modprobe >/dev/null; then
        local module
        for module in tun veth vxlan bridge openvswitch; do modprobe -q "$module" 2>/dev/null || true; done
    fi
}

# vxrouter_as_root "$0" "$@": re-runs the calling script as root — directly when already root, else
# through sudo with PATH kept (sudo resets it, which would hide the Swift toolchain).
vxrouter_as_root() {
    [[ $(id -u) -eq 0 ]] && return 0
    local script=$1
    shift
    if command -v sudo >/dev/null; then
        exec sudo env "PATH=$PATH" bash "$script" "$@"
    fi
    echo "$(basename "$script") needs root (network namespaces, TAP devices) and sudo is not installed: run it as root" >&2
    exit 1
}

# Run directly: install.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    set -euo pipefail
    vxrouter_as_root "$0" "$@"
    vxrouter_setup "$@"
fi
