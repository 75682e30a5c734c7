#!/usr/bin/env python3
"""Send malformed (and, for contrast, valid) VXLAN packets at a VTEP's UDP port.

    vxlan_malformed.py --to 198.18.0.1 --port 4789 --vni 42 --kind truncated --count 5

Kinds, each meant to land on exactly one drop reason of the receiver (RFC 7348 header below):
  truncated    shorter than the 8-byte VXLAN header, or a header followed by less than an
               Ethernet header (sizes cycle through 1, 4, 7, 8, 8+13 bytes)
  bad-flags    a full packet for --vni whose flags byte has the I flag clear (0x00)
  unknown-vni  a full, well-flagged packet for --unknown-vni (a VNI the receiver doesn't serve)
  random       seeded random bytes, 1-200 long, never a well-flagged packet for --vni
  oversize     a well-flagged packet for --vni whose inner frame is --inner-size bytes
               (default 2014: 14 header + 2000 payload, above a 1450/1500 MTU)
  valid        a well-flagged packet for --vni carrying a 60-byte broadcast frame
               (ethertype 0x88B5, local experimental) from --inner-source

    0                   1                   2                   3
    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   |R|R|R|R|I|R|R|R|            Reserved                           |
   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   |                VXLAN Network Identifier (VNI) |   Reserved    |
   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

Prints one line "sent N KIND packets to ADDR port P"; exit status 0 unless sending fails.
"""

import argparse
import random
import socket
import struct
import sys
import time

BROADCAST = b"\xff" * 6
ETHERTYPE_EXPERIMENTAL = 0x88B5


def header(vni, flags=0x08):
    return struct.pack("!B3xI", flags, vni << 8)


def mac(text):
    parts = bytes(int(p, 16) for p in text.split(":"))
    if len(parts) != 6:
        raise argparse.ArgumentTypeError(f"{text} is not a MAC address")
    return parts


def frame(source, payload):
    return BROADCAST + source + struct.pack("!H", ETHERTYPE_EXPERIMENTAL) + payload


def packets(args):
    rng = random.Random(args.seed)
    small = frame(args.inner_source, b"vxlab".ljust(46, b"\0"))
    for i in range(args.count):
        if args.kind == "truncated":
            size = (1, 4, 7, 8, 8 + 13)[i % 5]
            yield (header(args.vni) + small)[:size]
        elif args.kind == "bad-flags":
            yield header(args.vni, flags=0x00) + small
        elif args.kind == "unknown-vni":
            yield header(args.unknown_vni) + small
        elif args.kind == "random":
            data = bytearray(rng.randbytes(rng.randint(1, 200)))
            if len(data) >= 8 and data[0] & 0x08 and int.from_bytes(data[4:7], "big") == args.vni:
                data[4] ^= 0x80  # never a well-flagged packet for the served VNI
            yield bytes(data)
        elif args.kind == "oversize":
            payload = bytes(rng.randbytes(max(0, args.inner_size - 14)))
            yield header(args.vni) + frame(args.inner_source, payload)
        elif args.kind == "valid":
            yield header(args.vni) + frame(args.inner_source, f"vxlab valid {i}".encode().ljust(46, b"\0"))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--to", required=True, help="the VTEP's underlay address")
    parser.add_argument("--port", type=int, default=4789)
    parser.add_argument("--kind", required=True,
                        choices=["truncated", "bad-flags", "unknown-vni", "random", "oversize", "valid"])
    parser.add_argument("--count", type=int, default=5)
    parser.add_argument("--vni", type=int, default=42, help="a VNI the receiver serves")
    parser.add_argument("--unknown-vni", type=int, default=4242)
    parser.add_argument("--inner-size", type=int, default=2014, help="inner frame bytes for --kind oversize")
    parser.add_argument("--inner-source", type=mac, default=mac("02:00:00:00:0a:01"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--interval", type=float, default=0.01, help="seconds between packets")
    args = parser.parse_args()

    family = socket.AF_INET6 if ":" in args.to else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sent = 0
    for packet in packets(args):
        sock.sendto(packet, (args.to, args.port))
        sent += 1
        time.sleep(args.interval)
    print(f"sent {sent} {args.kind} packets to {args.to} port {args.port}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
