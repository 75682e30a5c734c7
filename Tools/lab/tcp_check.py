#!/usr/bin/env python3
"""Checked TCP transfer across the lab: every byte is compared at the far end.

The client sends N bytes of a deterministic pseudo-random stream (seeded); the server
regenerates the same stream, compares as it receives, reports the first differing offset,
and answers the client with a one-line verdict. Both exit 0 only when all N bytes arrived
intact, so either side's exit status says pass/fail.

    tcp_check.py serve --listen 198.19.0.2 --port 5201 --bytes 52428800 --seed 7 --timeout 120
    tcp_check.py send --connect 198.19.0.2 --port 5201 --bytes 52428800 --seed 7 --timeout 120

Exit status: 0 pass, 1 data mismatch or short transfer, 2 timeout or socket error.
The server prints "listening" (flushed) once it accepts connections, for the harness to wait on.
"""

import argparse
import hashlib
import random
import socket
import sys
import time

CHUNK = 64 * 1024


class Stream:
    """The deterministic byte stream: the same seed gives the same bytes, chunk by chunk."""

    def __init__(self, seed, total):
        self.random = random.Random(seed)
        self.left = total
        self.buffer = b""

    def take(self, n):
        """The next n bytes (fewer only at the end of the stream)."""
        while len(self.buffer) < n and self.left > len(self.buffer):
            self.buffer += self.random.randbytes(CHUNK)
        n = min(n, self.left)
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        self.left -= n
        return out


def log(message):
    print(message, flush=True)


def serve(args):
    deadline = time.monotonic() + args.timeout
    family = socket.AF_INET6 if ":" in args.listen else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((args.listen, args.port))
    listener.listen(1)
    listener.settimeout(max(0.1, deadline - time.monotonic()))
    log(f"listening {args.listen} port {args.port}")
    try:
        conn, peer = listener.accept()
    except socket.timeout:
        log("FAIL timeout waiting for a connection")
        return 2
    expected = Stream(args.seed, args.bytes)
    digest_expected = hashlib.sha256()
    digest_received = hashlib.sha256()
    received = 0
    mismatch = None
    started = time.monotonic()
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout()
            conn.settimeout(remaining)
            data = conn.recv(CHUNK * 4)
            if not data:
                break
            want = expected.take(len(data))
            digest_received.update(data)
            digest_expected.update(want)
            if mismatch is None and data != want:
                for i in range(min(len(data), len(want))):
                    if data[i] != want[i]:
                        mismatch = received + i
                        break
                else:
                    mismatch = received + min(len(data), len(want))
            received += len(data)
    except socket.timeout:
        log(f"FAIL timeout after {received} of {args.bytes} bytes from {peer[0]}")
        return 2
    except OSError as error:
        log(f"FAIL socket error after {received} of {args.bytes} bytes: {error}")
        return 2
    elapsed = max(time.monotonic() - started, 1e-6)
    rate = received * 8 / elapsed / 1e6
    ok = mismatch is None and received == args.bytes
    if ok:
        verdict = f"PASS bytes={received} sha256={digest_received.hexdigest()} seconds={elapsed:.2f} mbit_s={rate:.0f}"
    elif mismatch is not None:
        verdict = f"FAIL mismatch at offset {mismatch}; received {received} of {args.bytes} bytes"
    else:
        verdict = (f"FAIL short transfer: received {received} of {args.bytes} bytes "
                   f"sha256={digest_received.hexdigest()} expected_prefix_sha256={digest_expected.hexdigest()}")
    log(verdict)
    try:
        conn.settimeout(5)
        conn.sendall((verdict + "\n").encode())
        conn.close()
    except OSError:
        pass
    return 0 if ok else 1


def send(args):
    deadline = time.monotonic() + args.timeout
    family = socket.AF_INET6 if ":" in args.connect else socket.AF_INET
    # The server may still be starting (or ARP still resolving): retry refused connections.
    while True:
        conn = socket.socket(family, socket.SOCK_STREAM)
        conn.settimeout(max(0.1, min(5.0, deadline - time.monotonic())))
        try:
            conn.connect((args.connect, args.port))
            break
        except (ConnectionRefusedError, socket.timeout, OSError) as error:
            conn.close()
            if time.monotonic() + 0.2 >= deadline:
                log(f"FAIL cannot connect to {args.connect} port {args.port}: {error}")
                return 2
            time.sleep(0.2)
    stream = Stream(args.seed, args.bytes)
    sent = 0
    digest = hashlib.sha256()
    started = time.monotonic()
    try:
        while sent < args.bytes:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout()
            conn.settimeout(remaining)
            data = stream.take(CHUNK)
            conn.sendall(data)
            digest.update(data)
            sent += len(data)
        conn.shutdown(socket.SHUT_WR)
        reply = b""
        while not reply.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout()
            conn.settimeout(remaining)
            data = conn.recv(4096)
            if not data:
                break
            reply += data
    except socket.timeout:
        log(f"FAIL timeout after sending {sent} of {args.bytes} bytes")
        return 2
    except OSError as error:
        log(f"FAIL socket error after sending {sent} of {args.bytes} bytes: {error}")
        return 2
    elapsed = max(time.monotonic() - started, 1e-6)
    verdict = reply.decode(errors="replace").strip() or "FAIL no verdict from the server"
    log(f"sent bytes={sent} sha256={digest.hexdigest()} seconds={elapsed:.2f}; server says: {verdict}")
    return 0 if verdict.startswith("PASS") else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    for name, address in (("serve", "--listen"), ("send", "--connect")):
        p = sub.add_parser(name)
        p.add_argument(address, required=True)
        p.add_argument("--port", type=int, default=5201)
        p.add_argument("--bytes", type=int, default=50 * 1024 * 1024)
        p.add_argument("--seed", type=int, default=1)
        p.add_argument("--timeout", type=float, default=120.0, help="seconds for the whole run")
    args = parser.parse_args()
    return serve(args) if args.mode == "serve" else send(args)


if __name__ == "__main__":
    sys.exit(main())
