#!/usr/bin/env python3
"""Turn a device's transmit checksum offload on or off (what `ethtool -K DEV tx off` does).

    tx_checksum.py DEVICE off|on

What it does: between namespaces, a veth hands a packet over with its checksum still "to be
filled in by the hardware" (CHECKSUM_PARTIAL), and nothing ever fills it in. With tx checksum
offload off, the kernel computes checksums in software before the veth, as a NIC would on the wire.

The lab never uses it on a kernel VXLAN peer: users leave offloads on, and vxrouter must accept the
unfinished inner checksums such a peer sends (issue 13). It is used on the router's own underlay,
to run the router without offload on the way out (OffloadTests), and in front of Open vSwitch's
userspace datapath, which verifies outer UDP checksums in software (OpenVSwitchTests says why).

Uses the legacy ETHTOOL_STXCSUM ioctl (the kernel maps it onto the feature flags), stdlib only.
"""

import array
import fcntl
import socket
import struct
import sys

SIOCETHTOOL = 0x8946
ETHTOOL_GTXCSUM = 0x16
ETHTOOL_STXCSUM = 0x17


def ethtool_value(sock, device, command, value=0):
    data = array.array("B", struct.pack("II", command, value))
    address, _ = data.buffer_info()
    request = struct.pack("16sP", device.encode(), address).ljust(40, b"\0")  # struct ifreq
    fcntl.ioctl(sock, SIOCETHTOOL, request)
    return struct.unpack("II", data.tobytes())[1]


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in ("on", "off"):
        print(__doc__.splitlines()[2].strip(), file=sys.stderr)
        return 2
    device, state = sys.argv[1], sys.argv[2]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        ethtool_value(sock, device, ETHTOOL_STXCSUM, 1 if state == "on" else 0)
        now = ethtool_value(sock, device, ETHTOOL_GTXCSUM)
    if bool(now) != (state == "on"):
        print(f"{device}: tx checksum offload is still {'on' if now else 'off'}", file=sys.stderr)
        return 1
    print(f"{device}: tx checksum offload {state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
