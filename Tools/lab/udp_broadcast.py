#!/usr/bin/env python3
"""Broadcast datagrams across the overlay and count who got them, and how often.

    udp_broadcast.py listen --port 5300 --token T --window 3
        prints "listening" once bound, then after WINDOW seconds one line
        "distinct=N total=M" (datagrams carrying TOKEN: distinct sequence numbers, and all
        copies — total > distinct means something was delivered twice).
    udp_broadcast.py send --to 198.19.0.255 --port 5300 --token T --count 5
        sends COUNT datagrams "TOKEN SEQ" with SO_BROADCAST, a little apart.

Exit status 0 unless a socket call fails.
"""

import argparse
import socket
import sys
import time


def listen(args):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.bind((args.bind, args.port))
    print("listening", flush=True)
    prefix = args.token.encode() + b" "
    seen = set()
    total = 0
    deadline = time.monotonic() + args.window
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        sock.settimeout(remaining)
        try:
            data, _ = sock.recvfrom(65535)
        except socket.timeout:
            break
        if data.startswith(prefix):
            total += 1
            seen.add(data[len(prefix):])
    print(f"distinct={len(seen)} total={total}", flush=True)
    return 0


def send(args):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    for seq in range(args.count):
        sock.sendto(f"{args.token} {seq}".encode(), (args.to, args.port))
        time.sleep(args.interval)
    print(f"sent {args.count} to {args.to} port {args.port}", flush=True)
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("listen")
    p.add_argument("--bind", default="0.0.0.0")
    p.add_argument("--port", type=int, default=5300)
    p.add_argument("--token", required=True)
    p.add_argument("--window", type=float, default=3.0, help="seconds to listen")
    p = sub.add_parser("send")
    p.add_argument("--to", required=True)
    p.add_argument("--port", type=int, default=5300)
    p.add_argument("--token", required=True)
    p.add_argument("--count", type=int, default=5)
    p.add_argument("--interval", type=float, default=0.05, help="seconds between datagrams")
    args = parser.parse_args()
    return listen(args) if args.mode == "listen" else send(args)


if __name__ == "__main__":
    sys.exit(main())
